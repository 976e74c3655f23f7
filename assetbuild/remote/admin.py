"""Looking after a remote store: what is there (``remote info``), and removing what no
lockfile on the given git refs references (``remote gc --keep-locked``)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

from assetbuild.errors import LockfileError, UsageError
from assetbuild.lockfile import Lockfile
from assetbuild.lockread import parse_lockfile_bytes
from assetbuild.remote.store import RemoteDown, RemoteStore


async def remote_info(store: RemoteStore) -> dict[str, Any]:
    """The store's URL, whether it answered, and its objects by kind (count, bytes)."""
    kinds: dict[str, dict[str, int]] = {}
    try:
        async for meta in store.objects():
            kind = str(meta["path"]).split("/")[1] if "/" in str(meta["path"]) else "other"
            counted = kinds.setdefault(kind, {"objects": 0, "bytes": 0})
            counted["objects"] += 1
            counted["bytes"] += int(meta["size"])
    except RemoteDown as exc:
        return {"url": store.url, "reachable": False, "error": str(exc), "objects": 0,
                "bytes": 0, "kinds": {}}
    return {"url": store.url, "reachable": True, "readonly": store.readonly,
            "objects": sum(k["objects"] for k in kinds.values()),
            "bytes": sum(k["bytes"] for k in kinds.values()), "kinds": kinds}


async def published(store: RemoteStore, spec_hashes: list[str]) -> set[str]:
    """Those of ``spec_hashes`` the remote holds an entry for (many lookups at once)."""
    found = await asyncio.gather(*(store.entry(digest) for digest in spec_hashes))
    return {digest for digest, entry in zip(spec_hashes, found, strict=True) if entry}


def locked_keep_set(lockfiles: list[Lockfile]) -> tuple[set[str], set[str]]:
    """(spec hashes, blob digests) the lockfiles reference."""
    specs: set[str] = set()
    blobs: set[str] = set()
    for lockfile in lockfiles:
        for entry in lockfile.entries.values():
            specs.add(entry.spec_hash)
            blobs.update(record.sha256 for record in (*entry.outputs, *entry.derived))
    return specs, blobs


def lockfiles_at(root: Path, lockfile: Path, refs: tuple[str, ...]) -> list[Lockfile]:
    """The lockfile as each git ref holds it (a ref without it holds none)."""
    git = shutil.which("git")
    if git is None:
        raise UsageError("remote gc --keep-locked needs git on PATH")
    relative = lockfile.resolve().relative_to(root.resolve()).as_posix()
    found = []
    for ref in refs:
        shown = subprocess.run([git, "-C", str(root), "show", f"{ref}:./{relative}"],
                               capture_output=True, timeout=120, check=False)
        if shown.returncode != 0:
            continue
        try:
            found.append(parse_lockfile_bytes(shown.stdout, Path(f"{ref}:{relative}")))
        except LockfileError as exc:
            raise UsageError(f"{ref}:{relative} cannot be read ({exc}); nothing was "
                             "deleted") from None
    if not found:
        raise UsageError(f"none of {', '.join(refs)} holds {relative}; nothing was deleted")
    return found


async def remote_gc(store: RemoteStore, keep_specs: set[str], keep_blobs: set[str], *,
                    dry_run: bool) -> dict[str, Any]:
    """Delete the entries and blobs not kept (leases are left: a task may be running)."""
    if store.readonly and not dry_run:
        raise UsageError(f"the remote {store.url} is read-only here; nothing was deleted")
    doomed: list[tuple[str, int]] = []
    kept = 0
    try:
        async for meta in store.objects():
            path = str(meta["path"])
            kind, name = path.split("/")[1], path.rsplit("/", 1)[-1]
            keep = (kind == "entries" and name in keep_specs) or (
                kind == "blobs" and name in keep_blobs) or kind not in ("entries", "blobs")
            if keep:
                kept += 1
            else:
                doomed.append((path, int(meta["size"])))
        if not dry_run:
            for path, _ in doomed:
                await store.delete(path)
    except RemoteDown as exc:
        raise UsageError(f"the remote {store.url} failed ({exc}); run gc again") from None
    return {"url": store.url, "deleted": len(doomed), "bytes_freed": sum(s for _, s in doomed),
            "kept": kept, "dry_run": dry_run}
