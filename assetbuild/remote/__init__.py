"""The team's remote result store, as builds and pulls use it.

Which remote: ``--remote URL`` (and ``--remote-readonly``), else ``ASSETBUILD_REMOTE``
(and ``ASSETBUILD_REMOTE_READONLY=1``), else ``[settings] remote`` (and
``remote_readonly``). ``ASSETBUILD_REMOTE_TIMEOUT`` (seconds, default 15) bounds each
store request, so a slow store costs a build at most that long once. :class:`TeamRemote`
fails soft: the first failure of the store is one warning, and the build goes on as if
there were no remote.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assetbuild.errors import UsageError
from assetbuild.remote.store import (
    REQUEST_TIMEOUT,
    Lease,
    RemoteDown,
    RemoteStore,
    open_store,
)

if TYPE_CHECKING:
    from pathlib import Path

    from assetbuild.cache import ResultCache
    from assetbuild.lockfile import LockEntry, OutputRecord
    from assetbuild.manifest import Settings

__all__ = ["Lease", "RemoteConfig", "RemoteDown", "RemoteStore", "TeamRemote", "remote_config"]

LEASE_STALE = 180.0
"""Seconds after which a lease with no task id is taken as its holder's death (a submit
answers within its 120 s deadline)."""


@dataclass(frozen=True)
class RemoteConfig:
    """The remote a command uses."""

    url: str
    readonly: bool
    timeout: float = REQUEST_TIMEOUT
    """Seconds each store request may take."""

    def open(self) -> RemoteStore:
        """The store (a UsageError if the URL or the extra is wrong)."""
        return RemoteStore(open_store(self.url, self.timeout), self.url,
                           readonly=self.readonly, timeout=self.timeout)


def remote_config(settings: Settings, url: str | None = None, readonly: bool | None = None,
                  environ: Mapping[str, str] | None = None) -> RemoteConfig | None:
    """The remote to use, from the command line, the environment, then the settings;
    None when none is named (``url=""`` on the command line turns it off)."""
    env = os.environ if environ is None else environ
    chosen = url if url is not None else env.get("ASSETBUILD_REMOTE") or settings.remote
    if not chosen:
        return None
    if readonly is None:
        flag = env.get("ASSETBUILD_REMOTE_READONLY", "").strip().lower()
        readonly = flag in ("1", "true", "yes") or settings.remote_readonly
    return RemoteConfig(chosen, readonly, _timeout(env.get("ASSETBUILD_REMOTE_TIMEOUT", "")))


def _timeout(text: str) -> float:
    """``ASSETBUILD_REMOTE_TIMEOUT`` as seconds (the default when unset)."""
    if not text.strip():
        return REQUEST_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 600:
        raise UsageError(f"ASSETBUILD_REMOTE_TIMEOUT={text[:40]!r} is not a number of seconds "
                         "from 0.1 to 600")
    return seconds


class TeamRemote:
    """One build's use of the remote: lookups, publishing, leases; all fail soft."""

    def __init__(self, store: RemoteStore, warn: Callable[[str], None]) -> None:
        self.store = store
        self._warn = warn
        self.down = False
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def readonly(self) -> bool:
        """Whether this build may only read the remote."""
        return self.store.readonly

    async def fill(self, entry: LockEntry, cache: ResultCache) -> bool:
        """Put in the local cache every blob of ``entry`` it lacks, from the remote;
        whether all are there now (each verified against its sha256)."""
        records: list[OutputRecord] = [*entry.outputs, *entry.derived]
        for record in records:
            if cache.has_blob(record.sha256):
                continue
            data = await self._soft(self.store.blob(record.sha256))
            if data is None:
                return False
            cache.put_blob(record.sha256, data)
        return True

    async def entry(self, spec_hash: str) -> dict[str, Any] | None:
        """The entry the team published for ``spec_hash``, if any."""
        found: dict[str, Any] | None = await self._soft(self.store.entry(spec_hash))
        return found

    async def publish(self, spec_hash: str, table: Mapping[str, Any],
                      files: list[tuple[Path, str]]) -> None:
        """Publish a result this build paid for ((path, sha256) of each file)."""
        if self.readonly or self.down:
            return
        blobs = {sha: path.read_bytes() for path, sha in files}
        await self._soft(self.store.publish(spec_hash, table, blobs))

    async def claim(self, spec_hash: str, key_fingerprint: str) -> Lease | None:
        """Take the lease on ``spec_hash``; None when this build holds it (or cannot
        lease: read-only, or the remote is down), else the holder's lease."""
        if self.readonly or self.down:
            return await self.lease(spec_hash) if not self.down else None
        mine = Lease("", key_fingerprint, time.time(), self.holder)
        held: Lease | None = await self._soft(self.store.claim(spec_hash, mine))
        return held

    async def lease(self, spec_hash: str) -> Lease | None:
        """The lease on ``spec_hash``, if any."""
        found: Lease | None = await self._soft(self.store.lease(spec_hash))
        return found

    async def hold(self, spec_hash: str, task_id: str, key_fingerprint: str) -> None:
        """Write the lease this build holds, with the task id its submit got."""
        if not (self.readonly or self.down):
            lease = Lease(task_id, key_fingerprint, time.time(), self.holder)
            await self._soft(self.store.renew(spec_hash, lease))

    async def release(self, spec_hash: str) -> None:
        """Drop the lease on ``spec_hash``."""
        if not (self.readonly or self.down):
            await self._soft(self.store.release(spec_hash))

    async def _soft(self, call: Any) -> Any:
        """Await a store call; on failure warn once, mark the remote down, return None."""
        if self.down:
            call.close()
            return None
        try:
            return await call
        except RemoteDown as exc:
            if self.down:  # another call failed first and said so
                return None
            self.down = True
            self._warn(f"the remote {self.store.url} is not used for the rest of this build "
                       f"({exc}); building as without it")
            return None
