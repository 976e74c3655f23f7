"""When to poll a task: learn from the tasks this build has already seen finish.

Until a task has finished, polls come every 0.5 s for the first 5 s (so a fast API is
noticed quickly), then back off by half each time up to 15 s. Once tasks finish, a new
task is first polled just after the typical duration (the median of the API's
``cost_time``, else the observed time), and a task still running then is polled at
intervals that grow with how overdue it is. A latency-bound build then polls one or
two times per image and sees each result within about 2% of its duration.
"""

from __future__ import annotations

import random
import statistics
from collections import deque

MAX_DELAY = 15.0
INITIAL_DELAY = 0.5
DENSE_UNTIL = 5.0


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
            if elapsed < DENSE_UNTIL:
                return self.initial * random.uniform(0.95, 1.05)
            return min(MAX_DELAY, max(self.initial, elapsed * 0.5)) * random.uniform(0.9, 1.1)
        target = typical + min(0.02, typical * 0.02) + 0.005
        if elapsed < target:
            return target - elapsed
        overdue = elapsed - typical
        return min(MAX_DELAY, max(0.02 * typical, 0.25 * overdue, 0.02))
