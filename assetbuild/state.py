"""The project's state folder (``.assetbuild/`` beside the manifest).

It holds what can be rebuilt but is costly to recompute: the stat cache of output
digests, the task journal (see :mod:`assetbuild.journal`) and the build lock. It is
local to one checkout and should be ignored by git.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from assetbuild.errors import StateError
from assetbuild.hashing import sha256_file, stat_key

STATE_FORMAT = 1
_DIGESTS_KEY = f"file-digests-v{STATE_FORMAT}"


def open_cache(folder: Path, **settings: Any) -> Any:
    """Open a diskcache.Cache at ``folder``; a corrupt one is a StateError naming it."""
    import sqlite3

    import diskcache

    try:
        return diskcache.Cache(str(folder), **settings)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StateError(
            f"{folder}: cannot open this cache ({exc}). It holds no data that cannot be "
            f"recovered by a build; delete the folder to start it afresh."
        ) from None


class StateStore:
    """The state folder's key-value store (diskcache), opened on first use."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._cache: Any = None

    def _open(self, create: bool) -> Any:
        if self._cache is None and (create or (self.state_dir / "state").is_dir()):
            if create:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            self._cache = open_cache(self.state_dir / "state")
        return self._cache

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        cache = self._open(create=False)
        return None if cache is None else cache.get(key)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (creates the state folder if needed)."""
        self._open(create=True).set(key, value)

    def close(self) -> None:
        """Release the store."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class FileDigests:
    """sha256 of files, re-read only when size, mtime or inode changed.

    The whole table is loaded once and saved once (at :meth:`save`), so checking
    10,000 outputs costs 10,000 ``stat`` calls and no reads of unchanged files.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._table: dict[str, tuple[int, int, int, str]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, tuple[int, int, int, str]]:
        if self._table is None:
            stored = self.store.get(_DIGESTS_KEY)
            self._table = stored if isinstance(stored, dict) else {}
        return self._table

    def digest(self, path: Path | str) -> str | None:
        """The file's sha256, or None if there is no such file.

        Takes a plain string too: a no-op check of 10,000 outputs spends more time
        building Path objects than calling stat.
        """
        key = str(path)
        try:
            stat = os.stat(key)  # noqa: PTH116 - the string form is the fast path
        except (FileNotFoundError, NotADirectoryError):
            return None
        table = self._load()
        known = table.get(key)
        current = stat_key(stat)
        if known is not None and known[:3] == current:
            return known[3]
        digest = sha256_file(Path(key))
        table[key] = (*current, digest)
        self._dirty = True
        return digest

    def remember(self, path: Path | str, digest: str,
                 stat: os.stat_result | None = None) -> None:
        """Record the digest of a file that was just written (saves re-reading it);
        ``stat`` is its stat if the caller has it (saves a system call)."""
        table = self._load()
        key = str(path)
        table[key] = (*stat_key(stat or os.stat(key)), digest)  # noqa: PTH116 - the string form
        self._dirty = True

    def save(self) -> None:
        """Store the table if anything changed (creates the state folder if needed)."""
        if not self._dirty or self._table is None:
            return
        self.store.set(_DIGESTS_KEY, self._table)
        self._dirty = False
