"""Atomic writes and path containment: every file assetbuild owns goes through here.

Every write is a temporary file beside its target (named with :data:`TEMP_PREFIX`, so
the next build removes a killed write's leftovers), renamed over the target by
:func:`place` only once it is whole: a reader sees the old file or the new one, never
half of one. The fsync policy: what records money (the lockfile, memos, anything
through :func:`atomic_writer`) is flushed to disk before its rename; outputs and cache
files are not, since an output lost to a power cut is restored from the cache, the
locked URL or the journal, and fsyncing 10,000 small files would cost more than the
build.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMP_PREFIX = ".assetbuild-tmp-"
"""Temporary files are named with this prefix so that leftovers can be found and removed."""


MAX_NAME_BYTES = 255
"""The longest file or folder name most filesystems take (ext4, APFS, NTFS)."""
MAX_PATH_BYTES = 1024

_TEMP_NUMBERS = itertools.count()


def _make_temp(folder: Path | str) -> tuple[int, Path]:
    fd, path = open_temp_in(str(folder))
    return fd, Path(path)


def open_temp_in(folder: str) -> tuple[int, str]:
    """Create a temporary file in the existing ``folder``; return it open for writing
    (a file descriptor the caller closes) and its path (the caller renames or removes
    it). The name is unused (pid and a counter, created exclusively) and the mode is
    that of any new file (0o666 less the umask), not mkstemp's 0600; one system call,
    cheaper than mkstemp, which matters restoring 10,000 files."""
    while True:
        path = f"{folder}/{TEMP_PREFIX}{os.getpid()}-{next(_TEMP_NUMBERS)}"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:  # left by an earlier process with the same pid
            continue


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a file descriptor (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` only when the block ends without error.

    The data goes to a temporary file in the same folder, is flushed to disk, then
    ``os.replace``d over ``path``: readers see the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _make_temp(path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        place(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def place(tmp: Path | str, destination: Path | str) -> None:
    """Rename a finished temporary file over ``destination`` (the one rename into
    place: atomic on one filesystem, which a temporary file beside its target is on)."""
    os.replace(tmp, destination)  # noqa: PTH105 - strings on the hot path (cache restores)


@contextlib.contextmanager
def replacing(destination: Path) -> Iterator[Path]:
    """Yield an empty temporary file beside ``destination`` to write (a library that
    saves to a path: Pillow); it replaces ``destination`` when the block ends without
    error, and is removed otherwise."""
    tmp = temp_path_beside(destination)
    try:
        yield tmp
        place(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)


def temp_path_beside(path: Path) -> Path:
    """Create and return an empty temporary file in ``path``'s folder (caller renames it)."""
    fd, tmp = open_temp_beside(path)
    os.close(fd)
    return tmp


def open_temp_beside(path: Path) -> tuple[int, Path]:
    """Create a temporary file in ``path``'s folder (made if missing); return it open
    for writing (a file descriptor the caller closes) and its path."""
    try:
        return _make_temp(path.parent)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _make_temp(path.parent)


def relative_path_problem(value: str) -> str | None:
    """Say why ``value`` is not a plain relative path that stays where it is put, or None."""
    if not value or not value.strip():
        return "is empty"
    if "\\" in value:
        return "uses a backslash; write paths with '/'"
    if "\x00" in value:
        return "contains a NUL character"
    parts = value.split("/")  # strings, not PurePosixPath: it runs once per output
    if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        return "is an absolute path; paths must be relative to the manifest's folder"
    if ".." in parts:
        return "contains '..'; paths must stay inside the manifest's folder"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        return f"has a file or folder name longer than {MAX_NAME_BYTES} bytes"
    if len(value.encode("utf-8")) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    return None


def resolve_inside(root: Path, relative: str) -> Path:
    """Join ``relative`` to ``root`` and return it, or raise ValueError if it escapes.

    Symlinks are followed: a link inside the folder that points outside it escapes too.
    ``root`` must already be resolved.
    """
    problem = relative_path_problem(relative)
    if problem:
        raise ValueError(problem)
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise ValueError("leads outside the manifest's folder (through a symlink)")
    return candidate


def remove_stale_temp_files(folder: Path, *, recursive: bool = True) -> int:
    """Delete temporary files a killed run left in ``folder`` (and below); return the count.

    Call it only while holding the build lock: a running build's own temporary files
    look the same.
    """
    removed = 0
    if not folder.is_dir():
        return 0
    found = folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*")
    for tmp in found:
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed
