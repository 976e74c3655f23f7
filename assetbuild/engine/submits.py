"""Submitting: what a build may still send, and sending it so that no paid task is lost.

Each submit is journaled as an *intent* right before it is sent and as a task id the
moment its answer arrives. The send runs shielded from cancellation: a stopped build
(Ctrl-C, SIGTERM) sends nothing new but waits up to :data:`STOP_GRACE` seconds for the
submits already on the wire, so no answer the API has charged for is dropped. An intent
left behind (a kill, a submit whose answer never came) is what the next build reports
as "may have been charged twice".

Under ``--max-cost`` each submit sets aside its expected price (a conservative ceiling
while none is known, with one task in flight until a real price is learned), and
nothing is sent that could pass the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assetbuild.errors import ImageFailed, SubmitUncertain
from assetbuild.journal import Journal, JournalUnwritable
from assetbuild.outcomes import BuildEvent, Reporter

if TYPE_CHECKING:
    from assetbuild.cost import Prices
    from assetbuild.providers.answers import TaskStatus
    from assetbuild.providers.see2ai import See2AIClient

STOP_GRACE = 5.0
"""Seconds a stopped build waits for submits already sent, so their task ids are journaled."""


class Submitter:
    """The submits of one build: the budget, the stop, and the sends in flight."""

    def __init__(self, journal: Journal, client: Callable[[], See2AIClient], prices: Prices,
                 max_cost: int | None, report: Reporter) -> None:
        self.journal = journal
        self._client = client
        self.prices = prices
        self.max_cost = max_cost
        self.report = report
        self.stop_reason: str | None = None
        """Why nothing more is submitted, once something said so."""
        self.spent = 0
        self.reserved = 0.0
        self._reservations: dict[str, float] = {}
        """Price set aside per spec hash for each task submitted and not yet finished."""
        self._released = asyncio.Event()
        self._sending: set[asyncio.Future[TaskStatus]] = set()
        self._intents: list[tuple[str, str, dict[str, Any], Any]] = []
        """Intents waiting for this turn of the event loop's one write."""
        self._idle = asyncio.Event()
        self._idle.set()

    def stop(self, reason: str) -> None:
        """Submit nothing more, for ``reason`` (the first reason given is kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._released.set()  # a task waiting for a price submits nothing now either

    async def until_priced(self, resolution: str) -> None:
        """Under --max-cost, while no price is known at ``resolution``, keep one task in
        flight: wait until it ends and teaches the price (or ends without one)."""
        if self.max_cost is None:
            return
        while (self.prices.of(resolution) is None and self._reservations
               and not self.stop_reason):
            self._released.clear()
            await self._released.wait()

    def reserve(self, digest: str, resolution: str) -> None:
        """Set aside the expected price of a submit, or refuse it past --max-cost."""
        price = self.prices.at_most(resolution)
        limit = self.max_cost
        if limit is not None and self.spent + self.reserved + price > limit:
            self.stop(f"not submitted: --max-cost {limit} reached")
            raise ImageFailed(f"not submitted: --max-cost {limit} reached")
        self._reservations[digest] = price
        self.reserved += price

    def release(self, digest: str) -> None:
        """Give back what was set aside for ``digest`` (its task ended, or never began)."""
        self.reserved -= self._reservations.pop(digest, 0.0)
        self._released.set()

    def paid(self, resolution: str, points: int | None) -> None:
        """Count a finished task's price, and learn from it."""
        if points is not None:
            self.spent += points
            self.prices.learn(resolution, points)

    async def send(self, digest: str, name: str, request: dict[str, Any]) -> TaskStatus:
        """Journal an intent, submit ``request`` and journal its task id; a cancelled
        caller does not cancel the send (see :meth:`finish_sends`)."""
        if self.stop_reason:
            raise ImageFailed(self.stop_reason)
        try:
            await self._intent(digest, name, request)
        except asyncio.CancelledError:  # stopped before sending: nothing may be charged
            self.journal.forget(digest)
            raise
        except JournalUnwritable as exc:
            self.stop(f"not submitted: the journal cannot be written ({exc})")
            raise ImageFailed(f"not submitted: the journal cannot be written ({exc})") from None
        if self.stop_reason:  # stopped while the intent was written
            self.journal.forget(digest)
            raise ImageFailed(self.stop_reason)
        sending = asyncio.ensure_future(self._send(digest, name, request))
        self._sending.add(sending)
        self._idle.clear()
        sending.add_done_callback(self._sent)
        return await asyncio.shield(sending)

    async def _intent(self, digest: str, name: str, request: dict[str, Any]) -> None:
        """Journal an intent, in one transaction with the other submits of this moment.

        Every bit of work on the event loop delays the answers of submits already sent
        (their task ids wait to be journaled), and 100 us per intent in a burst of 64
        submits is 6 ms: the intents of one turn of the loop are written together."""
        if not self._intents:
            asyncio.get_running_loop().call_soon(self._write_intents, self._intents)
        done = asyncio.get_running_loop().create_future()
        self._intents.append((digest, name, request, done))
        await done

    def _write_intents(self, batch: list[tuple[str, str, dict[str, Any], Any]]) -> None:
        self._intents = []
        try:
            self.journal.intents([(digest, name, request) for digest, name, request, _ in batch])
        except JournalUnwritable as exc:
            for *_, done in batch:
                if not done.done():
                    done.set_exception(JournalUnwritable(str(exc)))
            return
        for *_, done in batch:
            if not done.done():
                done.set_result(None)

    async def _send(self, digest: str, name: str, request: dict[str, Any]) -> TaskStatus:
        try:
            task = await self._client().submit(request)
        except (SubmitUncertain, asyncio.CancelledError):
            raise  # the intent stays: a task may exist, and the next build says so
        except BaseException:
            self.journal.forget(digest)  # an error answer, or never sent: nothing created
            raise
        try:
            self.journal.submitted(digest, name, task.task_id, request)
        except JournalUnwritable as exc:
            self.stop(f"not submitted: the journal cannot be written ({exc})")
            self.report(BuildEvent("warning", name, f"task {task.task_id} could not be "
                                   f"journaled ({exc}); it is polled to the end and nothing "
                                   "new is submitted"))
        self.report(BuildEvent("submitted", name, task.task_id))
        return task

    def _sent(self, sending: asyncio.Future[TaskStatus]) -> None:
        self._sending.discard(sending)
        if not self._sending:
            self._idle.set()
        if not sending.cancelled():
            sending.exception()  # retrieved here: the image that awaited it reports it

    async def after_submits(self, typical: float, at_most: float = 0.05) -> None:
        """Let submits in flight go first (for up to ``at_most`` seconds) when tasks
        take a while (``typical`` seconds): a batch of tasks that ends together then has
        its slots' next tasks running on the API before its downloads take the
        connections. (When tasks take no time there is nothing to win.)"""
        if self._sending and typical >= 0.5:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), at_most)

    async def finish_sends(self, grace: float = STOP_GRACE) -> None:
        """On a stop: submit nothing more, and wait up to ``grace`` seconds for the
        submits already sent, so their task ids are journaled."""
        self.stop("not submitted: the build was stopped")
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace)
