"""When to poll a task: learn from the tasks this build has already seen finish.

Until a task has finished, polls come every 0.5 s for the first 5 s (so a fast API is
noticed quickly), then back off by half each time up to 15 s; one task, the scout, is
polled every 0.1 s meanwhile, so the first wave learns the duration within 0.1 s of
its end for a few more polls per build (not one more per image). The first task to
finish wakes every task waiting on that schedule. From then on a task is first polled just
after the typical duration (the median of the API's ``cost_time``, else the observed
time), and a task still running then is polled at intervals that grow with how overdue
it is. A latency-bound build then polls about once per image and sees each result
within a few milliseconds of its end.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import deque

MAX_DELAY = 15.0
INITIAL_DELAY = 0.5
DENSE_UNTIL = 5.0
SCOUT_DELAY = 0.1


class PollSchedule:
    """Poll delays for one build, adapted to the durations it observes."""

    def __init__(self, initial: float = INITIAL_DELAY, window: int = 64) -> None:
        self.initial = initial
        self._durations: deque[float] = deque(maxlen=window)
        self._learned = asyncio.Event()

    def observe(self, seconds: float) -> None:
        """Record how long a finished task took from submit to its terminal state."""
        if seconds >= 0:
            self._durations.append(seconds)
            self._learned.set()

    async def wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds and return True; but while no task has finished,
        return False as soon as the first one does, so that every task polled on the
        dense schedule moves to the learned one at once (the first batch of a build
        would otherwise see its results up to a dense interval late)."""
        if self._learned.is_set():
            await asyncio.sleep(delay)
            return True
        try:
            await asyncio.wait_for(self._learned.wait(), delay)
        except TimeoutError:
            return True
        return False

    @property
    def typical(self) -> float | None:
        """The median observed duration, once at least one task has finished."""
        return statistics.median(self._durations) if self._durations else None

    def delay(self, elapsed: float, *, scout: bool = False) -> float:
        """Seconds to wait before the next poll of a task ``elapsed`` seconds old
        (``scout``: the one task polled densely until some task has finished)."""
        typical = self.typical
        if typical is None:
            if scout and elapsed < DENSE_UNTIL:
                return min(SCOUT_DELAY, self.initial)
            if elapsed < DENSE_UNTIL:
                return self.initial * random.uniform(0.95, 1.05)
            return min(MAX_DELAY, max(self.initial, elapsed * 0.5)) * random.uniform(0.9, 1.1)
        # Elapsed time runs from the submit's answer, after the API started the task's
        # clock: the typical duration itself is already a little late (a 5 ms margin
        # cost a latency-bound build 0.1 s and saved no poll).
        target = typical + 0.001
        if elapsed < target:
            return target - elapsed
        overdue = elapsed - typical
        return min(MAX_DELAY, max(0.02 * typical, 0.25 * overdue, 0.02))
