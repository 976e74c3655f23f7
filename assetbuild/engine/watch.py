"""Watching a task: poll it until it ends, on the build's adaptive schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from assetbuild.errors import ImageFailed
from assetbuild.outcomes import BuildEvent, Reporter
from assetbuild.polling import PollSchedule

if TYPE_CHECKING:
    from assetbuild.providers.answers import TaskStatus
    from assetbuild.providers.see2ai import See2AIClient


class TaskWatcher:
    """Polls tasks to their end, each within the image timeout, learning their durations."""

    def __init__(self, client: Callable[[], See2AIClient], timeout: float, first_poll: float,
                 report: Reporter) -> None:
        self._client = client
        self.timeout = timeout
        self.polls = PollSchedule(initial=first_poll)
        self.report = report
        self._warned_states: set[str] = set()
        self._scout: str | None = None
        """The task polled densely until the first one finishes (polling.SCOUT_DELAY)."""

    async def until_done(self, name: str, task_id: str, submitted_at: float, *,
                         resumed: bool = False) -> TaskStatus:
        """Poll until the task ends. The image's timeout counts from this build's first
        poll, so a resumed task gets a fresh one; a resumed task is polled at once (its
        usual duration has most likely passed while no build watched it)."""
        if self._scout is None:
            self._scout = task_id
        try:
            return await self._poll(name, task_id, submitted_at, resumed)
        finally:
            if self._scout == task_id:
                self._scout = None

    async def _poll(self, name: str, task_id: str, submitted_at: float,
                    resumed: bool) -> TaskStatus:
        started = time.time()
        polls = 0
        while True:
            age, waited = time.time() - submitted_at, time.time() - started
            if waited > self.timeout:
                raise self._overdue(task_id)
            delay = 0.0 if resumed and polls == 0 else self.polls.delay(
                age, scout=self._scout == task_id)
            if not await self.polls.wait(delay):
                continue  # the first task finished: wait on the learned schedule instead
            try:  # a status answer that trickles must not outlast the image's timeout
                async with asyncio.timeout(max(self.timeout - waited, 1.0)):
                    status = await self._client().status(task_id)
            except TimeoutError:
                raise self._overdue(task_id) from None
            polls += 1
            if status.state != "pending":
                reported = status.cost_time
                duration = reported / 1000 if reported is not None else time.time() - submitted_at
                self.polls.observe(duration)
                return status
            self._warn_unknown_state(name, status.raw_state)

    def _overdue(self, task_id: str) -> ImageFailed:
        return ImageFailed(f"task {task_id} still running after {self.timeout:g} s; "
                           "the next build resumes polling it")

    def _warn_unknown_state(self, name: str, raw_state: str) -> None:
        from assetbuild.providers.answers import normalise_state

        unknown = raw_state and normalise_state(raw_state) is None
        if unknown and raw_state not in self._warned_states:
            self._warned_states.add(raw_state)
            self.report(BuildEvent("warning", name, f"unknown task state {raw_state!r}; "
                                   "treating it as still running"))
