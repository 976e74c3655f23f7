"""A build's part in the team's remote store: a spec the team already paid for is
restored, not submitted; a spec another machine is generating right now (under the
same account) is polled, not submitted; what this build pays for is published.

The lease protocol: before a submit, take the spec's lease with a create-only write;
once the submit answers, write the task id into it; release it once the result is
published (or the task failed). A machine that finds a lease with a task id polls that
task itself, journaled as its own (if the API has lost it, it submits anew). A lease
still without a task id after :data:`~assetbuild.remote.LEASE_STALE` seconds is taken
as its holder's death and taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from assetbuild.journal import JournalEntry, JournalUnwritable, key_fingerprint
from assetbuild.lockfile import LockEntry
from assetbuild.outcomes import BuildEvent, ImageResult, Reporter
from assetbuild.remote import LEASE_STALE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from assetbuild.cache import ResultCache
    from assetbuild.engine.results import Results
    from assetbuild.journal import Journal
    from assetbuild.remote import Lease, TeamRemote
    from assetbuild.resolve import ResolvedImage

LEASE_WAIT = 30.0
"""Seconds to wait for the task id of a lease another machine took moments ago (its
submit on the wire); after that, or at once if its holder is a process of this machine
that is gone, the lease is taken over."""


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` (``host:pid``) is a process of this machine that has exited."""
    import os
    import socket

    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class TeamFlow:
    """The remote's lookups and leases for one build."""

    def __init__(self, team: TeamRemote, api_key: str, cache: ResultCache, journal: Journal,
                 results: Results, report: Reporter) -> None:
        self.team = team
        self.fingerprint = key_fingerprint(api_key)
        self.cache, self.journal, self.results = cache, journal, results
        self.report = report
        self._leased: set[str] = set()
        """Spec hashes whose lease this build holds."""

    async def entry(self, name: str, key: str, digest: str) -> LockEntry | None:
        """The result the team published under ``key`` (a take of spec ``digest``), its
        blobs now in the local cache; None if there is none, or none usable."""
        table = await self.team.entry(key)
        if table is None:
            return None
        try:
            entry = LockEntry.from_toml(table)
        except ValueError as exc:
            entry, why = None, str(exc)
        else:
            why = "it names another spec or too many outputs"
        if (entry is None or entry.spec_hash != digest or entry.takes
                or not 1 <= len(entry.outputs) <= 16):
            self.report(BuildEvent("warning", name, f"the remote's entry for this spec "
                                   f"is not usable ({why}); not used"))
            return None
        if not await self.team.fill(entry, self.cache):
            return None
        self.cache.put(key, table, [])
        return entry

    async def restore(self, image: ResolvedImage, digest: str) -> ImageResult | None:
        """Restore ``image`` from the result the team published for ``digest``."""
        entry = await self.entry(image.name, digest, digest)
        return None if entry is None else await self.results.restore(image, entry, "remote")

    async def follow(self, image: ResolvedImage, key: str, digest: str,
                     request: Callable[[], Awaitable[dict[str, Any]]]
                     ) -> JournalEntry | LockEntry | None:
        """Before a submit: take the lease on ``key`` (None: submit), or journal as this
        build's own the task another machine of the same account is generating for it
        (poll it), or, if that machine published the result meanwhile, return it."""
        held = await self.team.claim(key, self.fingerprint)
        if held is None:
            if not self.team.readonly and not self.team.down:
                self._leased.add(key)
            return await self._published_meanwhile(image, key, digest)
        if held.key_fingerprint != self.fingerprint:
            return None  # another account's task: not ours to poll
        lease = await self._with_task_id(key, held)
        if lease is None or not lease.task_id:
            if not self.team.readonly:
                await self.team.hold(key, "", self.fingerprint)  # a dead holder's lease
                self._leased.add(key)
            return await self._published_meanwhile(image, key, digest)
        with contextlib.suppress(JournalUnwritable):  # kept in memory: polled all the same
            self.journal.submitted(key, image.name, lease.task_id, await request())
        self.report(BuildEvent("resumed", image.name,
                               f"{lease.task_id} (another machine's, from the remote's lease)"))
        return self.journal.get(key)

    async def _published_meanwhile(self, image: ResolvedImage, key: str,
                                   digest: str) -> LockEntry | None:
        """The result, if another machine published it between this build's lookup and
        its lease (a holder that finished and released): used instead of paid for."""
        entry = await self.entry(image.name, key, digest)
        if entry is not None:
            await self.ended(key)
        return entry

    async def _with_task_id(self, digest: str, lease: Lease) -> Lease | None:
        """The lease once its holder has written the task id (or None if it never does
        while the lease is young)."""
        waited = 0.0
        while (not lease.task_id and lease.age() < LEASE_STALE and waited < LEASE_WAIT
               and not _dead_here(lease.holder)):
            await asyncio.sleep(0.2)
            waited += 0.2
            found = await self.team.lease(digest)
            if found is None:  # released: the holder finished or failed
                return None
            lease = found
        return lease

    async def submitted(self, digest: str, task_id: str) -> None:
        """Write the task id of this build's submit into the lease it holds."""
        if digest in self._leased:
            await self.team.hold(digest, task_id, self.fingerprint)

    async def ended(self, digest: str) -> None:
        """The spec's task ended (published, or failed): release a lease held."""
        if digest in self._leased:
            self._leased.discard(digest)
            await self.team.release(digest)
