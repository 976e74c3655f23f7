"""When to poll a task: learn from the tasks this build has already seen finish.

With nothing observed, polls back off from about 1 s to 15 s. Once tasks finish, the
first poll of a new task is aimed just before the typical duration (taken from the
API's ``cost_time`` when it reports one) and later polls close in on it, so a
latency-bound build polls a few times per image and notices completion quickly.
"""

from __future__ import annotations

import random
import statistics
from collections import deque

MIN_DELAY = 0.2
MAX_DELAY = 15.0
INITIAL_DELAY = 1.0


class PollSchedule:
    """Poll delays for one build, adapted to the durations it observes."""

    def __init__(self, initial: float = INITIAL_DELAY, window: int = 64) -> None:
        self.initial = initial
        self._durations: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        """Record how long a finished task took from submit to its terminal state."""
        if seconds >= 0:
            self._durations.append(seconds)

    @property
    def typical(self) -> float | None:
        """The median observed duration, once at least one task has finished."""
        return statistics.median(self._durations) if self._durations else None

    def delay(self, elapsed: float, polls: int) -> float:
        """Seconds to wait before the next poll of a task ``elapsed`` seconds old."""
        typical = self.typical
        if typical is None:
            base = self.initial * 1.5**polls
        elif elapsed < typical * 0.9:
            base = typical * 0.95 - elapsed
        else:
            overdue = max(elapsed - typical, 0.0)
            base = max(typical * 0.1, overdue * 0.5) * (1.3**min(polls, 10))
        jittered = base * random.uniform(0.9, 1.1)
        return min(MAX_DELAY, max(min(MIN_DELAY, self.initial), jittered))
