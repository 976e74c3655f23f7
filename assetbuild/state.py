"""The project's state folder (``.assetbuild/`` beside the manifest).

It holds what can be rebuilt but is costly to recompute: the stat cache of output
digests, the task journal (see :mod:`assetbuild.journal`) and the build lock. It is
local to one checkout and should be ignored by git.

Every store here holds plain data only (:mod:`assetbuild.memo`): the diskcache
:class:`Disk` below refuses to pickle on write and refuses to unpickle on read, and a
state folder that git tracks or another user owns is not used at all
(:func:`choose_state_dir`): it came from a checkout, not from a build of ours.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import stat as stat_module
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from assetbuild import memo
from assetbuild._types import STATE_DIR_NAME
from assetbuild.errors import StateError
from assetbuild.hashing import CHUNK_SIZE, sha256_file, stat_key

T = TypeVar("T")
_DIGESTS_KEY = f"file-digests-v{memo.MEMO_FORMAT}"
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")
"""The only file names diskcache gives the values it keeps in files."""


class UnsafeRow(OSError):
    """A cache row that would need unpickling, or names a file outside its cache.

    An OSError because diskcache treats an OSError from reading a value as "no such
    value": the row is then simply absent.
    """


@functools.cache
def plain_disk() -> type[Any]:
    """diskcache's Disk that stores and reads only str keys and bytes, str or number
    values: no pickle either way, and no value file outside the cache's folder."""
    import diskcache

    class PlainDisk(diskcache.Disk):  # type: ignore[misc]
        def put(self, key: Any) -> Any:
            if not isinstance(key, str):
                raise TypeError("cache keys are strings")
            return super().put(key)

        def get(self, key: Any, raw: bool) -> Any:
            if not raw:
                raise UnsafeRow("a pickled cache key")
            return super().get(key, raw)

        def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
            if not read and type(value) not in (bytes, str, int, float):
                raise TypeError("cache values are bytes, str or numbers (see assetbuild.memo)")
            return super().store(value, read, key)

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode == diskcache.core.MODE_PICKLE:
                raise UnsafeRow("a pickled cache value")
            if filename is not None and not _VALUE_FILE.fullmatch(filename):
                raise UnsafeRow("a cache value outside the cache's folder")
            return super().fetch(mode, filename, value, read)

        def remove(self, file_path: str) -> None:
            if _VALUE_FILE.fullmatch(file_path):
                super().remove(file_path)

    return PlainDisk


def open_cache(folder: Path, *, holds_tasks: bool = False, **settings: Any) -> Any:
    """Open a diskcache.Cache at ``folder`` that holds plain data only (:func:`plain_disk`);
    a corrupt one is a StateError naming it (``holds_tasks``: the journal, whose task ids
    must not be deleted with it)."""
    import sqlite3

    import diskcache

    try:
        return diskcache.Cache(str(folder), disk=plain_disk(), **settings)
    except (sqlite3.DatabaseError, OSError, KeyError, ValueError, TypeError) as exc:
        if holds_tasks:
            advice = (f"It holds the ids of tasks already paid for: do not delete it. Move "
                      f"it aside (mv {folder} {folder}.broken) and run again; the task ids "
                      f"stay readable there: the keys of the Cache table in "
                      f"{folder}.broken/cache.db.")
        else:
            advice = ("It holds no data that cannot be recovered by a build; delete the "
                      "folder to start it afresh.")
        raise StateError(f"{folder}: cannot open this cache ({exc}). {advice}") from None


def choose_state_dir(root: Path, environ: Mapping[str, str] | None = None
                     ) -> tuple[Path, str | None]:
    """The state folder to use for the project at ``root`` and, if the one beside the
    manifest cannot be trusted, a warning saying why it is not used.

    ``.assetbuild/`` is ours only if it is a real folder (not a symlink), owned by this
    user and not tracked by git: a checkout can carry a crafted one (a pull request
    that force-adds it), and its journal, memos and lock must not steer a build. In
    that case a private folder in the user cache stands in for it.
    """
    local = root / STATE_DIR_NAME
    reason = _untrusted_reason(root, local)
    if reason is None:
        return local, None
    from assetbuild.cache import default_cache_dir

    private = default_cache_dir(environ) / "state" / hashlib.sha256(
        str(root).encode()).hexdigest()[:24]
    return private, (f"{local} is not used: {reason}. A state folder comes from "
                     f"builds on this machine, never from a checkout; using {private} instead.")


def _untrusted_reason(root: Path, local: Path) -> str | None:
    try:
        stat = os.lstat(local)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if stat_module.S_ISLNK(stat.st_mode):
        return "it is a symbolic link"
    if hasattr(os, "getuid") and stat.st_uid != os.getuid():
        return "another user owns it"
    if _tracked_by_git(root, local):
        return "git tracks files in it (remove them with `git rm -r --cached .assetbuild`)"
    return None


def _tracked_by_git(root: Path, folder: Path) -> bool:
    """Whether git tracks any file under ``folder`` (False outside a repository)."""
    if not any((parent / ".git").exists() for parent in (root, *root.parents)):
        return False
    git = shutil.which("git")
    if git is None:
        return False
    try:
        found = subprocess.run(
            [git, "-C", str(root), "ls-files", "-z", "--", folder.name],
            capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return found.returncode == 0 and bool(found.stdout)


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

    def get(self, key: str, kind: type[T]) -> T | None:
        """The memo of type ``kind`` stored under ``key``, or None (also for a row
        that is not one)."""
        cache = self._open(create=False)
        return None if cache is None else memo.decode(cache.get(key), kind)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (plain data, :func:`assetbuild.memo.encode`) under ``key``
        (creates the state folder if needed); a value JSON cannot carry is not kept."""
        data = memo.encode(value)
        cache = self._open(create=True)
        if data is None:
            cache.delete(key)
        else:
            cache.set(key, data)

    def close(self) -> None:
        """Release the store."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None


THREADED_FROM_BYTES = 8 * 1024
"""Files of this size on average are hashed in two threads: hashlib lets go of the GIL
for more than 2 KiB at once, but for small files the threads' hand-offs cost more than
they save (10,000 files of 670 bytes: 0.07 s in one thread, 0.10 s in two; of 28 KB:
0.24 s and 0.17 s)."""


def stat_and_hash(path: str) -> tuple[int, int, int, str] | None:
    """The file's stat key and sha256, or None if it cannot be read: one ``open``, one
    ``fstat`` and its reads, no file object. The stat is taken first: a file changed
    while it is hashed is hashed again by the next check."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        current = stat_key(os.fstat(handle))
        digest = hashlib.sha256()
        while chunk := os.read(handle, CHUNK_SIZE):
            digest.update(chunk)
        return (*current, digest.hexdigest())
    except OSError:
        return None
    finally:
        os.close(handle)


def _stat_and_hash_all(paths: list[str]) -> list[tuple[int, int, int, str] | None]:
    return [stat_and_hash(path) for path in paths]


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
            stored = self.store.get(_DIGESTS_KEY, dict[str, tuple[int, int, int, str]])
            self._table = stored or {}
        return self._table

    def digest(self, path: Path | str) -> str | None:
        """The file's sha256, or None if there is no such file.

        Takes a plain string too: a no-op check of 10,000 outputs spends more time
        building Path objects than calling stat (and this is asked once per output, so
        the stat key is compared field by field rather than built).
        """
        key = path if type(path) is str else str(path)
        try:
            stat = os.stat(key)  # noqa: PTH116 - the string form is the fast path
        except (FileNotFoundError, NotADirectoryError):
            return None
        known = (self._table if self._table is not None else self._load()).get(key)
        if (known is not None and known[0] == stat.st_size
                and known[1] == stat.st_mtime_ns and known[2] == stat.st_ino):
            return known[3]
        digest = sha256_file(Path(key))
        self._load()[key] = (*stat_key(stat), digest)
        self._dirty = True
        return digest

    def prefetch(self, files: Iterable[tuple[str, int]]) -> None:
        """Hash those of ``files`` ((path, expected size) each) the table has never seen
        (a fresh clone: every output), so the :meth:`digest` calls that follow find them;
        in two threads when they are large (:data:`THREADED_FROM_BYTES`). Files the
        table knows are left to :meth:`digest` (no extra ``stat`` on a warm check)."""
        table = self._load()
        unseen = [(path, size) for path, size in files if path not in table]
        if not unseen:
            return
        paths = [path for path, _ in unseen]
        if sum(size for _, size in unseen) < THREADED_FROM_BYTES * len(unseen):
            found = _stat_and_hash_all(paths)
        else:
            from concurrent.futures import ThreadPoolExecutor

            # A task per slice, not per file: a future costs more than hashing a file.
            size = len(paths) // 8 + 1
            slices = [paths[start:start + size] for start in range(0, len(paths), size)]
            with ThreadPoolExecutor(2, thread_name_prefix="assetbuild-hash") as pool:
                found = [known for part in pool.map(_stat_and_hash_all, slices)
                         for known in part]
        for path, known in zip(paths, found, strict=True):
            if known is not None:
                table[path] = known
                self._dirty = True

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
