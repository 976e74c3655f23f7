"""The result cache: spec hash -> lock entry, and output digest -> image bytes.

It lives in the user's cache folder (or ``ASSETBUILD_CACHE_DIR``), is shared by all
projects, is bounded in size with least-recently-stored eviction, and makes
reverting a prompt, switching branches, renaming or deleting an output free: no
API call. Every blob is verified against its sha256 when restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from assetbuild import memo
from assetbuild.fsutil import open_temp_in, place, write_all
from assetbuild.state import UnsafeRow, open_cache

CACHE_FORMAT = 2
"""2: lock entries as JSON (1 was pickled dicts)."""
DEFAULT_SIZE_LIMIT = 2 * 1024**3
SMALL_FILE = 1 << 20
UPLOAD_TTL = 24 * 3600
"""Seconds an uploaded reference URL is reused (how long the API keeps uploads is not
documented; a day is a guess on the safe side)."""
_KEYS_PER_QUERY = 500  # SQLite builds before 3.32 allow 999 parameters per statement
_MODE_RAW = 1  # diskcache's mode for bytes stored in the database itself


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``ASSETBUILD_CACHE_DIR`` if set, else the user cache folder."""
    env = os.environ if environ is None else environ
    if env.get("ASSETBUILD_CACHE_DIR"):
        return Path(env["ASSETBUILD_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("assetbuild"))


class ResultCache:
    """Finished results by spec hash, image bytes by digest, uploads by file digest."""

    def __init__(self, folder: Path, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.folder = folder
        self._cache: Any = open_cache(
            folder / f"results-v{CACHE_FORMAT}", size_limit=size_limit,
            eviction_policy="least-recently-stored")

    def entry(self, spec_hash: str) -> dict[str, Any] | None:
        """The lock entry recorded for a spec hash, if cached."""
        return memo.decode(self._cache.get(f"spec:{spec_hash}"), dict[str, Any])

    def has_blob(self, sha256: str) -> bool:
        """Whether the bytes of a digest are cached."""
        return f"blob:{sha256}" in self._cache

    def put(self, spec_hash: str, lock_entry: dict[str, Any],
            files: list[tuple[Path, str, int]]) -> None:
        """Cache a finished image: its lock entry and each output file (path, sha256,
        size), in one transaction. Files up to 1 MB are passed as bytes (diskcache keeps
        those under 32 KB in its database: no file to create or open again); larger
        ones are streamed."""
        with self._cache.transact():
            for path, digest, size in files:
                if self.has_blob(digest):
                    continue
                if size <= SMALL_FILE:
                    self._cache.set(f"blob:{digest}", path.read_bytes())
                else:
                    with path.open("rb") as handle:
                        self._cache.set(f"blob:{digest}", handle, read=True)
            encoded = memo.encode(lock_entry)
            if encoded is not None:
                self._cache.set(f"spec:{spec_hash}", encoded)

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Cache bytes the caller has verified against ``sha256`` (from the remote)."""
        if not self.has_blob(sha256):
            self._cache.set(f"blob:{sha256}", data)

    def inline_blobs(self, digests: Collection[str]) -> dict[str, bytes]:
        """The cached bytes of those ``digests`` that the database holds itself (every
        blob under 32 KB), read with one query per 500; a digest left out may still be
        cached as a file, which :meth:`restore` reads.

        One query instead of one ``get`` each: ``pull`` of 10,000 small outputs. It
        reads diskcache's ``Cache`` table directly (unchanged since diskcache 3.0);
        should that ever fail, it returns nothing and every blob is read one by one.
        """
        keys = [f"blob:{digest}" for digest in digests]
        found: dict[str, bytes] = {}
        try:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                batch = keys[start:start + _KEYS_PER_QUERY]
                marks = ",".join("?" * len(batch))  # placeholders only: no text from outside
                query = ("SELECT key, value FROM Cache WHERE raw = 1 AND mode = ? "  # noqa: S608
                         f"AND value IS NOT NULL AND key IN ({marks})")
                # The connection diskcache keeps for this process.
                rows = self._cache._sql(query, (_MODE_RAW, *batch)).fetchall()
                found.update((key[5:], bytes(value)) for key, value in rows)
        except sqlite3.Error:
            return {}
        return found

    def read_blob(self, sha256: str, limit: int = 64 * 1024 * 1024) -> bytes | None:
        """The cached bytes of ``sha256`` if cached, no larger than ``limit`` and still
        matching their digest."""
        stored = self._cache.get(f"blob:{sha256}", read=True)
        if stored is None:
            return None
        if not isinstance(stored, bytes):
            with stored:
                stored = stored.read(limit + 1)
        if len(stored) > limit or hashlib.sha256(stored).hexdigest() != sha256:
            return None
        return bytes(stored)

    def restore(self, sha256: str, destination: str,
                data: bytes | None = None) -> os.stat_result | None:
        """Write the cached bytes of ``sha256`` to the file ``destination`` (a path
        string; its folder must exist) atomically; return the written file's stat
        (for the digest table), or None if the bytes are not cached or no longer match
        their digest. ``data`` is those bytes if the caller read them already
        (:meth:`inline_blobs`). Strings and file descriptors: it runs once per file.
        """
        stored = data if data is not None else self._cache.get(f"blob:{sha256}", read=True)
        if stored is None:
            return None
        if isinstance(stored, bytes):  # small blobs live in the database
            if hashlib.sha256(stored).hexdigest() != sha256:
                self._cache.delete(f"blob:{sha256}")
                return None
            return _write_new(destination, (stored,))
        digest = hashlib.sha256()
        with stored:
            stat = _write_new(destination, _chunks(stored, digest), verify=(digest, sha256))
        if stat is None:
            self._cache.delete(f"blob:{sha256}")
        return stat

    def upload_url(self, scope: str, sha256: str) -> str | None:
        """A reference already uploaded under ``scope`` (API and key), if still fresh."""
        value = self._cache.get(f"upload:{scope}:{sha256}")
        return value if isinstance(value, str) else None

    def remember_upload(self, scope: str, sha256: str, url: str) -> None:
        """Remember the hosted URL of an uploaded reference for a day."""
        self._cache.set(f"upload:{scope}:{sha256}", url, expire=UPLOAD_TTL)

    def info(self) -> dict[str, Any]:
        """Where the cache is, how many results and blobs it holds, and its size."""
        specs = blobs = 0
        keys = self._cache.iterkeys()
        while True:
            try:
                key = next(keys)
            except StopIteration:
                break
            except UnsafeRow:
                continue
            specs += str(key).startswith("spec:")
            blobs += str(key).startswith("blob:")
        return {"path": str(self.folder), "results": specs, "blobs": blobs,
                "bytes": int(self._cache.volume()), "size_limit": int(self._cache.size_limit)}

    def clear(self) -> int:
        """Remove everything; return how many items were removed."""
        count = int(self._cache.clear())
        return count

    def close(self) -> None:
        """Release the cache's database."""
        self._cache.close()


def _chunks(handle: BinaryIO, digest: Any) -> Iterator[bytes]:
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
        yield chunk


def _write_new(destination: str, chunks: Iterable[bytes],
               verify: tuple[Any, str] | None = None) -> os.stat_result | None:
    """Write ``chunks`` to a temporary file beside ``destination`` and rename it into
    place; return its stat. With ``verify`` (a running hash and the digest it must end
    at), put nothing in place and return None if it does not."""
    fd, tmp = open_temp_in(os.path.dirname(destination))  # noqa: PTH120 - hot path
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        stat = os.fstat(fd)
        os.close(fd)
        fd = -1
        if verify is not None and verify[0].hexdigest() != verify[1]:
            os.unlink(tmp)  # noqa: PTH108 - strings on the hot path
            return None
        place(tmp, destination)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # noqa: PTH108
        raise
    return stat
