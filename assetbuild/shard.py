"""Sharding a build across CI jobs, and merging the partial lockfiles they write.

Images that reference each other (``image:NAME``) always land in the same shard, so
every shard can build its share without waiting for another. A shard writes a
complete lockfile beside the main one (``assetbuild.lock.shard-K-of-N``); ``lock
merge`` overlays what each shard changed onto the main lockfile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from assetbuild.errors import LockfileError, UsageError
from assetbuild.lockfile import LockEntry, LockfileWriter
from assetbuild.lockread import read_lockfile
from assetbuild.plan import Plan


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` as (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard takes K/N, like 1/4, not {text!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be from 1 to N")
    return k, n


def shard_path(lockfile: Path, shard: tuple[int, int]) -> Path:
    """Where shard K of N writes its lockfile."""
    return lockfile.with_name(f"{lockfile.name}.shard-{shard[0]}-of-{shard[1]}")


def shard_of_plan(plan: Plan, shard: tuple[int, int]) -> Plan:
    """The part of ``plan`` that shard K of N builds (a group of linked images at a time)."""
    parent = {item.name: item.name for item in plan.images}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for item in plan.images:
        for dep in item.image.dependencies:
            if dep in parent:
                parent[root(dep)] = root(item.name)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    mine: set[str] = set()
    for names in groups.values():
        digest = hashlib.sha256(min(names).encode()).digest()
        if int.from_bytes(digest[:8], "big") % shard[1] == shard[0] - 1:
            mine.update(names)
    return replace(plan, images=tuple(i for i in plan.images if i.name in mine))


def merge_lockfiles(main: Path, partials: Sequence[Path]) -> list[str]:
    """Overlay what each partial lockfile changed onto ``main``; return the names taken.

    Two partials that change the same image differently are a LockfileError.
    """
    base = dict(read_lockfile(main).entries)
    changes: dict[str, tuple[LockEntry, Path]] = {}
    for partial in partials:
        for name, entry in read_lockfile(partial).entries.items():
            if base.get(name) == entry:
                continue
            known = changes.get(name)
            if known is not None and known[0] != entry:
                raise LockfileError(partial, f"changes image '{name}', which {known[1].name} "
                                             "also changes differently; build it once more")
            changes[name] = (entry, partial)
    if changes:
        LockfileWriter().write(main, base | {name: e for name, (e, _) in changes.items()})
    return sorted(changes)


def find_partials(main: Path) -> list[Path]:
    """The shard lockfiles beside ``main``."""
    return sorted(main.parent.glob(f"{main.name}.shard-*-of-*"))
