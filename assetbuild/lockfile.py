"""The lockfile: what was built, from which spec, by which task, into which files.

TOML written with tomli-w, deterministic (sorted tables, stable key order, newline at
the end) so it diffs cleanly in git, and replaced atomically. A lockfile that cannot
be parsed, or that a newer assetbuild wrote, is an error: it is never overwritten.
Reading, and the checks of what was read, are in :mod:`assetbuild.lockread`; the
field-by-field checks live here, beside the records they build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from assetbuild.fsutil import atomic_write_bytes
from assetbuild.hashing import sha256_bytes, stat_key

if TYPE_CHECKING:
    from assetbuild.state import StateStore

LOCKFILE_VERSION = 2
"""2 adds takes; a lockfile without takes is still written as version 1, so an older
assetbuild reads it, and one with takes is refused by an older one, never rewritten
without them."""


@dataclass(frozen=True)
class OutputRecord:
    """One written output file: where, its digest and its size."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Take:
    """One paid task of an image's spec: its result, kept whether or not it is chosen."""

    task_id: str
    result_urls: tuple[str, ...]
    sha256: tuple[str, ...]
    """The digest of each result (the outputs it makes, in order)."""
    bytes: tuple[int, ...]
    cost_points: int | None = None

    def to_toml(self) -> dict[str, Any]:
        """The take as a TOML table."""
        table = {"task_id": self.task_id, "result_urls": list(self.result_urls),
                 "sha256": list(self.sha256), "bytes": list(self.bytes),
                 "cost_points": self.cost_points}
        return {k: v for k, v in table.items() if v is not None}

    @classmethod
    def from_toml(cls, table: Any) -> Take:
        """Read a take (ValueError naming the field that is wrong)."""
        sizes = _typed(table, "bytes", list)
        if not all(type(n) is int and n >= 0 for n in sizes):
            raise ValueError("has a take whose 'bytes' are not sizes")
        take = cls(_typed(table, "task_id", str), _strings(table, "result_urls", required=True),
                   _strings(table, "sha256", required=True), tuple(sizes),
                   _count(table, "cost_points"))
        if not len(take.result_urls) == len(take.sha256) == len(take.bytes) >= 1:
            raise ValueError("has a take whose result_urls, sha256 and bytes disagree")
        return take

    @classmethod
    def of(cls, entry: LockEntry) -> Take:
        """The take an entry's own task made."""
        return cls(entry.task_id, entry.result_urls, tuple(o.sha256 for o in entry.outputs),
                   tuple(o.bytes for o in entry.outputs), entry.cost_points)


@dataclass(frozen=True)
class LockEntry:
    """The lockfile's record of one built image."""

    spec_hash: str
    provider: str
    task_id: str
    state: str
    model: str
    result_urls: tuple[str, ...]
    request: Mapping[str, Any]
    outputs: tuple[OutputRecord, ...]
    spec: Mapping[str, Any] = field(default_factory=dict)
    cost_points: int | None = None
    cost_time: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    warnings: tuple[str, ...] = ()
    derived: tuple[OutputRecord, ...] = ()
    """Files derived locally from the first output (sizes, formats)."""
    takes: tuple[Take, ...] = ()
    """Every take of the spec, in the order paid for, when there is more than one."""
    take: int = 1
    """Which take (from 1) the entry's task, URLs and outputs are."""

    @property
    def take_count(self) -> int:
        """How many takes of its spec the entry keeps (one, when it lists none)."""
        return max(1, len(self.takes))

    def all_takes(self) -> tuple[Take, ...]:
        """Every take, numbered from 1 by position (the entry's own, when it lists none)."""
        return self.takes or (Take.of(self),)

    @property
    def first_url(self) -> str | None:
        """The first result URL (what ``image:NAME`` references send), if any."""
        return self.result_urls[0] if self.result_urls else None

    def to_toml(self) -> dict[str, Any]:
        """The entry as a TOML table (None values are left out: TOML has no null)."""
        table: dict[str, Any] = {
            "spec_hash": self.spec_hash,
            "provider": self.provider,
            "task_id": self.task_id,
            "state": self.state,
            "model": self.model,
            "result_urls": list(self.result_urls),
            "cost_points": self.cost_points,
            "cost_time": self.cost_time,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "warnings": list(self.warnings),
            "outputs": [
                {"path": o.path, "sha256": o.sha256, "bytes": o.bytes} for o in self.outputs
            ],
            "request": dict(self.request),
            "spec": dict(self.spec),
        }
        if self.derived:
            table["derived"] = [
                {"path": o.path, "sha256": o.sha256, "bytes": o.bytes} for o in self.derived
            ]
        if self.takes:
            table["take"] = self.take
            table["takes"] = [take.to_toml() for take in self.takes]
        cleaned: dict[str, Any] = _without_none(table)
        return cleaned

    @classmethod
    def from_toml(cls, table: Mapping[str, Any]) -> LockEntry:
        """Read an entry; raise ValueError naming the field that is wrong (every field
        is checked: a hand edit must be an error, never a crash later)."""
        return cls(
            spec_hash=_typed(table, "spec_hash", str),
            provider=_typed(table, "provider", str),
            task_id=_typed(table, "task_id", str),
            state=_typed(table, "state", str),
            model=_optional(table, "model", str, ""),
            result_urls=_strings(table, "result_urls", required=True),
            request=_typed(table, "request", dict),
            outputs=_records(table, "outputs", required=True),
            spec=_optional(table, "spec", dict, {}),
            cost_points=_count(table, "cost_points"),
            cost_time=_count(table, "cost_time"),
            input_tokens=_count(table, "input_tokens") or 0,
            output_tokens=_count(table, "output_tokens") or 0,
            total_tokens=_count(table, "total_tokens") or 0,
            warnings=_strings(table, "warnings"),
            derived=_records(table, "derived"),
            **_takes(table),
        )


@dataclass(frozen=True)
class Lockfile:
    """All entries of a lockfile, keyed by image name."""

    entries: Mapping[str, LockEntry] = field(default_factory=dict)

    def get(self, name: str) -> LockEntry | None:
        """The entry of image ``name``, if any."""
        return self.entries.get(name)

    def locked_tasks(self) -> set[tuple[str, str]]:
        """(take key, task id) of every take the lockfile holds: tasks paid and kept."""
        from assetbuild.hashing import take_key

        return {(take_key(entry.spec_hash, number), take.task_id)
                for entry in self.entries.values()
                for number, take in enumerate(entry.all_takes(), start=1)}


@dataclass(frozen=True)
class ParsedLockfile:
    """A parsed lockfile kept in the state folder, with what says it is still current
    (:func:`assetbuild.lockread.read_lockfile` reads it)."""

    stat: tuple[int, int, int]
    sha256: str
    lockfile: Lockfile


def parsed_copy_key(path: Path) -> str:
    """The state folder's key of the parsed copy of the lockfile at ``path``."""
    from assetbuild.memo import MEMO_FORMAT

    return f"lockfile-v{MEMO_FORMAT}:{path}"


HEADER = "# Written by assetbuild. Commit it; do not edit by hand.\n"


class LockfileWriter:
    """Serialises lockfiles, each entry once: rewriting 10,000 entries to add one
    costs one tomli-w call, not 10,000. The bytes are exactly those of tomli-w
    dumping the whole document (a table per image, sorted by name). Each entry's
    fragment is kept encoded, so a write of 100,000 entries (100 MB) holds one more
    copy of the file, not four."""

    def __init__(self) -> None:
        self._fragments: dict[str, tuple[LockEntry, bytes]] = {}

    def render(self, entries: Mapping[str, LockEntry]) -> bytes:
        """The lockfile's bytes: the same entries always give the same bytes."""
        version = LOCKFILE_VERSION if any(e.takes for e in entries.values()) else 1
        parts = [f"{HEADER}version = {version}\n".encode()]
        for name in sorted(entries):
            entry = entries[name]
            known = self._fragments.get(name)
            if known is None or known[0] is not entry:
                fragment = tomli_w.dumps({"images": {name: entry.to_toml()}}).encode("utf-8")
                known = self._fragments[name] = (entry, fragment)
            parts.append(known[1])
        return b"\n".join(parts)

    def write(
        self, path: Path, entries: Mapping[str, LockEntry], store: StateStore | None = None
    ) -> None:
        """Replace the lockfile atomically (and refresh its parsed copy in ``store``)."""
        data = self.render(entries)
        atomic_write_bytes(path, data)
        if store is not None:
            digest = sha256_bytes(data)
            del data  # the parsed copy's encoding is as large: not both at once
            store.set(parsed_copy_key(path), ParsedLockfile(stat_key(path.stat()), digest,
                                                        Lockfile(dict(entries))))


def dump_lockfile(entries: Mapping[str, LockEntry]) -> bytes:
    """The lockfile's bytes: the same entries always give the same bytes."""
    return LockfileWriter().render(entries)


def write_lockfile(
    path: Path, entries: Mapping[str, LockEntry], store: StateStore | None = None
) -> None:
    """Replace the lockfile at ``path`` atomically (and refresh its parsed copy in ``store``)."""
    LockfileWriter().write(path, entries, store)


def _typed(table: Mapping[str, Any], key: str, kind: type) -> Any:
    if not isinstance(table, Mapping):
        raise ValueError(f"has a malformed value where '{key}' was expected")
    value = table.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        found = "nothing" if value is None else f"{str(value)[:40]!r}"
        raise ValueError(f"has no valid '{key}' ({kind.__name__} expected, found {found})")
    return value


def _optional(table: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    return default if key not in table else _typed(table, key, kind)


def _count(table: Mapping[str, Any], key: str) -> int | None:
    """A non-negative integer field, or None if absent."""
    if key not in table:
        return None
    value = _typed(table, key, int)
    if not 0 <= value < 2**63:
        raise ValueError(f"has an out-of-range '{key}' ({value})")
    return int(value)


def _strings(table: Mapping[str, Any], key: str, *, required: bool = False
             ) -> tuple[str, ...]:
    if key not in table and not required:
        return ()
    values = _typed(table, key, list)
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"has a '{key}' that is not a list of strings")
    return tuple(values)


def _records(table: Mapping[str, Any], key: str, *, required: bool = False
             ) -> tuple[OutputRecord, ...]:
    if key not in table and not required:
        return ()
    records = []
    for item in _typed(table, key, list):
        if not isinstance(item, Mapping):
            raise ValueError(f"has a '{key}' item that is not a table")
        size = _typed(item, "bytes", int)
        if size < 0:
            raise ValueError(f"has a negative '{key}' size")
        records.append(OutputRecord(_typed(item, "path", str), _typed(item, "sha256", str),
                                    size))
    return tuple(records)


def _takes(table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``takes`` and ``take`` fields, checked against each other and the entry."""
    if "takes" not in table:
        if "take" in table and table["take"] != 1:
            raise ValueError("chooses a take but lists none")
        return {}
    takes = tuple(Take.from_toml(item) for item in _typed(table, "takes", list))
    chosen = _count(table, "take") or 0
    if not 1 <= chosen <= len(takes):
        raise ValueError(f"chooses take {chosen} of {len(takes)}")
    if takes[chosen - 1].task_id != table.get("task_id"):
        raise ValueError(f"has a task_id that is not take {chosen}'s")
    return {"takes": takes, "take": chosen}


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value if v is not None]
    return value
