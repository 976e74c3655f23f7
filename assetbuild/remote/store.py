"""The team's remote result store: results, by spec hash and by content, on storage the
team already runs (a shared folder, S3 or an S3-compatible server, GCS, Azure), through
obstore.

Layout under the URL's prefix (format :data:`REMOTE_FORMAT`)::

    v1/blobs/ab/abcdef...       an output's bytes, named by their sha256
    v1/entries/<spec hash>      the lock entry that spec made (JSON)
    v1/leases/<spec hash>       who is generating that spec: task id, key fingerprint, time

Blobs and entries are written create-only (the first writer wins; a second writer of
the same spec finds it there); a blob is verified against its name before a byte of it
reaches the local cache. Every failure of the store is a :class:`RemoteDown`: the
caller warns once and builds as if there were no remote.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from assetbuild import memo
from assetbuild.errors import UsageError

if TYPE_CHECKING:
    from obstore import ObjectMeta

REMOTE_FORMAT = 1
SCHEMES = ("file", "s3", "s3a", "gs", "az", "azure", "abfs", "abfss")
REQUEST_TIMEOUT = 15.0
"""Seconds a store request may take, retries included, unless the remote's config says."""


class RemoteDown(Exception):
    """The remote store could not be read or written (down, slow, refusing, garbage)."""


@dataclass(frozen=True)
class Lease:
    """A spec being generated: by which task, under which account, since when."""

    task_id: str
    """Empty while the holder's submit has not answered yet."""
    key_fingerprint: str
    taken_at: float
    holder: str = ""

    def age(self) -> float:
        """Seconds since the lease was taken or last renewed."""
        return time.time() - self.taken_at


def open_store(url: str, timeout: float = REQUEST_TIMEOUT) -> Any:
    """An obstore store for ``url`` (credentials and endpoint from the cloud's own
    environment variables) whose requests give up after ``timeout`` seconds; a
    UsageError naming the problem otherwise."""
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in SCHEMES:
        raise UsageError(f"remote {url[:200]!r} is not a store URL assetbuild knows; use "
                         "file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix or "
                         "az://account/container/prefix")
    try:
        from obstore.store import from_url
    except ImportError:
        raise UsageError("the remote store needs obstore: pip install 'assetbuild[remote]'"
                         ) from None
    options: dict[str, Any] = {}
    if scheme == "file":
        options["mkdir"] = True
    else:
        # Client options replace the environment's: a plain-http endpoint stays allowed.
        allow_http = any(os.environ.get(name, "").strip().lower() in ("1", "true")
                         for name in ("AWS_ALLOW_HTTP", "ALLOW_HTTP"))
        options["client_options"] = {"timeout": f"{timeout:g}s",
                                     "connect_timeout": f"{min(timeout, 5.0):g}s",
                                     "allow_http": allow_http}
        options["retry_config"] = {"max_retries": 2, "retry_timeout": timedelta(seconds=timeout),
                                   "backoff": {"init_backoff": timedelta(milliseconds=100),
                                               "max_backoff": timedelta(seconds=2),
                                               "base": 2}}
    try:
        return from_url(url, **options)
    except Exception as exc:  # noqa: BLE001 - obstore's configuration errors vary
        raise UsageError(f"remote {url[:200]!r} cannot be opened: {exc}") from None


class RemoteStore:
    """One remote store as a build reads and writes it."""

    def __init__(self, store: Any, url: str, *, readonly: bool,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        self._store = store
        self.url = url
        self.readonly = readonly
        self.timeout = timeout

    async def entry(self, spec_hash: str) -> dict[str, Any] | None:
        """The lock entry published for ``spec_hash``, if any."""
        data = await self._get(f"v{REMOTE_FORMAT}/entries/{spec_hash}")
        if data is None:
            return None
        entry = memo.decode(data, dict[str, Any])
        if entry is None:
            raise RemoteDown(f"the entry for {spec_hash[:12]}... is not a lock entry")
        return entry

    async def blob(self, sha256: str) -> bytes | None:
        """The bytes named ``sha256``, verified; None if the store lacks them. A blob
        whose bytes do not match its name is refused (RemoteDown)."""
        data = await self._get(_blob_key(sha256))
        if data is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise RemoteDown(f"blob {sha256[:12]}... does not hold the bytes it is named for "
                             "(corrupt or planted); it was not used")
        return data

    async def publish(self, spec_hash: str, entry: Mapping[str, Any],
                      blobs: Mapping[str, bytes]) -> None:
        """Publish a paid result: its blobs, then its entry (both create-only)."""
        if self.readonly:
            return
        await asyncio.gather(*(self._create(_blob_key(sha), data) for sha, data in blobs.items()))
        encoded = memo.encode(dict(entry))
        if encoded is None:
            raise TypeError("a lock entry that is not JSON")
        await self._create(f"v{REMOTE_FORMAT}/entries/{spec_hash}", encoded)

    async def lease(self, spec_hash: str) -> Lease | None:
        """The lease on ``spec_hash``, if one is held."""
        data = await self._get(_lease_key(spec_hash))
        return memo.decode(data, Lease) if data is not None else None

    async def claim(self, spec_hash: str, lease: Lease) -> Lease | None:
        """Take the lease on ``spec_hash`` (create-only); None when taken, else the
        lease someone else holds."""
        encoded = memo.encode(lease)
        assert encoded is not None
        if await self._create(_lease_key(spec_hash), encoded):
            return None
        return await self.lease(spec_hash) or lease

    async def renew(self, spec_hash: str, lease: Lease) -> None:
        """Write the lease held (with its task id, or taken over from a dead holder)."""
        encoded = memo.encode(lease)
        assert encoded is not None
        await self._call(self._put(_lease_key(spec_hash), encoded, mode="overwrite"))

    async def release(self, spec_hash: str) -> None:
        """Drop the lease on ``spec_hash`` (its result is published, or it failed)."""
        import obstore

        # A lease left behind points at a finished task: pollers find it done.
        with contextlib.suppress(RemoteDown):
            await self._call(obstore.delete_async(self._store, _lease_key(spec_hash)))

    async def objects(self, prefix: str = f"v{REMOTE_FORMAT}/") -> AsyncIterator[ObjectMeta]:
        """Every object under ``prefix``: path, size, last_modified."""
        import obstore

        try:
            async for batch in obstore.list(self._store, prefix=prefix):
                for meta in batch:
                    yield meta
        except Exception as exc:  # noqa: BLE001 - any store failure is the store down
            raise RemoteDown(_describe(exc)) from None

    async def delete(self, path: str) -> None:
        """Delete one object (garbage collection)."""
        import obstore

        await self._call(obstore.delete_async(self._store, path))

    async def _get(self, path: str) -> bytes | None:
        import obstore

        try:
            result = await self._call(obstore.get_async(self._store, path))
            return bytes(await self._call(result.bytes_async()))
        except FileNotFoundError:
            return None

    async def _create(self, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` unless something is there; whether it was written."""
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            await self._call(self._put(path, data, mode="create"))
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def _put(self, path: str, data: bytes, *, mode: str) -> Any:
        import obstore

        return obstore.put_async(self._store, path, data, mode=mode)  # type: ignore[arg-type]

    async def _call(self, awaitable: Any) -> Any:
        """Await a store call within a deadline; every failure but a missing object or
        a lost create race is RemoteDown."""
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            async with asyncio.timeout(self.timeout * 2):
                return await awaitable
        except (FileNotFoundError, AlreadyExistsError, PreconditionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure is the store down
            raise RemoteDown(_describe(exc)) from None


def _blob_key(sha256: str) -> str:
    return f"v{REMOTE_FORMAT}/blobs/{sha256[:2]}/{sha256}"


def _lease_key(spec_hash: str) -> str:
    return f"v{REMOTE_FORMAT}/leases/{spec_hash}"


def _describe(exc: BaseException) -> str:
    """The first line of a store error, with every secret of the environment redacted
    (storage credentials are never printed)."""
    import os

    from assetbuild.crash import redact, secrets_of

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(text, secrets_of(os.environ))[:300]
