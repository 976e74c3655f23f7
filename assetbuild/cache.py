"""The result cache: spec hash -> lock entry, and output digest -> image bytes.

It lives in the user's cache folder (or ``ASSETBUILD_CACHE_DIR``), is shared by all
projects, is bounded in size with least-recently-stored eviction, and makes
reverting a prompt, switching branches, renaming or deleting an output free: no
API call. Every blob is verified against its sha256 when restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assetbuild.fsutil import open_temp_in, write_all
from assetbuild.state import open_cache

CACHE_FORMAT = 1
DEFAULT_SIZE_LIMIT = 2 * 1024**3
SMALL_FILE = 1 << 20
UPLOAD_TTL = 24 * 3600
"""Seconds an uploaded reference URL is reused (how long the API keeps uploads is not
documented; a day is a guess on the safe side)."""


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
        value = self._cache.get(f"spec:{spec_hash}")
        return value if isinstance(value, dict) else None

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
            self._cache.set(f"spec:{spec_hash}", lock_entry)

    def restore(self, sha256: str, destination: str) -> os.stat_result | None:
        """Write the cached bytes of ``sha256`` to the file ``destination`` (a path
        string; its folder must exist) atomically; return the written file's stat
        (for the digest table), or None if the bytes are not cached or no longer match
        their digest. Strings and file descriptors: it runs once per restored file.
        """
        stored = self._cache.get(f"blob:{sha256}", read=True)
        if stored is None:
            return None
        # Small blobs live in the database and come back as bytes, others as a file.
        handle = io.BytesIO(stored) if isinstance(stored, bytes) else stored
        fd, tmp = open_temp_in(os.path.dirname(destination))  # noqa: PTH120 - hot path
        try:
            digest = hashlib.sha256()
            with handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    write_all(fd, chunk)
            stat = os.fstat(fd)
            os.close(fd)
            fd = -1
            if digest.hexdigest() != sha256:
                self._cache.delete(f"blob:{sha256}")
                os.unlink(tmp)  # noqa: PTH108 - strings on the hot path
                return None
            os.replace(tmp, destination)  # noqa: PTH105 - strings on the hot path
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # noqa: PTH108
            raise
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
        for key in self._cache.iterkeys():
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
