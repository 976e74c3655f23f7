"""What a build is asked to do and what came of it, as plain data.

:class:`BuildOptions` go in; :class:`BuildEvent` s come out as the build goes (for
progress displays) and a :class:`BuildReport`, one :class:`ImageResult` per image, at
the end. The engine (:mod:`assetbuild.engine`) produces them; the CLI and library
callers read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from assetbuild.errors import AuthError, BalanceError

Outcome = Literal["built", "resumed", "cached", "remote", "restored", "picked", "up-to-date",
                  "failed",
                  "skipped"]


@dataclass(frozen=True)
class ImageResult:
    """What happened to one image in a build."""

    name: str
    outcome: Outcome
    message: str = ""
    cost_points: int = 0
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A machine-readable record."""
        return {"name": self.name, "outcome": self.outcome, "message": self.message,
                "cost_points": self.cost_points, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class BuildEvent:
    """A progress event: an image started a stage or finished."""

    kind: Literal["submitted", "resumed", "finished", "warning", "retry", "note"]
    """``retry`` and ``note`` are -v lines; a ``warning`` is always said."""
    name: str
    message: str = ""
    result: ImageResult | None = None


Reporter = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class BuildReport:
    """The outcome of a build (or a pull)."""

    results: tuple[ImageResult, ...]
    elapsed: float
    aborted: AuthError | BalanceError | None = None
    retries: Mapping[str, int] = field(default_factory=dict)
    """Requests retried, by cause (``429``, ``500``, ``connection``...)."""
    resent_submits: int = 0
    """Submits resent because their connection failed before any answer."""
    unjournaled: tuple[tuple[str, str], ...] = ()
    """(image, task id) of paid tasks the journal could not record: print them."""
    unanswered: tuple[str, ...] = ()
    """Images an earlier build sent a submit for and was stopped or killed before its
    answer was journaled: each may have been charged twice (check the account's log)."""
    generated: bool = True
    """False for a pull: nothing could be generated or paid for."""

    def count(self, outcome: Outcome) -> int:
        """How many images had ``outcome``."""
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def failed(self) -> list[ImageResult]:
        """Images that failed or were skipped."""
        return [r for r in self.results if r.outcome in ("failed", "skipped")]

    @property
    def points_spent(self) -> int:
        """Points the API reported for the tasks this build ran."""
        return sum(r.cost_points for r in self.results)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


@dataclass(frozen=True)
class BuildOptions:
    """How to build: which targets, how many at once, and what to do on failure."""

    targets: tuple[str, ...] = ()
    force: bool = False
    jobs: int | None = None
    provider: str | None = None
    fail_fast: bool = False
    lock_flush_interval: float = 1.0
    shard: tuple[int, int] | None = None
    """Build only shard K of N (K, N), writing the lockfile beside the main one."""
    max_cost: int | None = None
    """Points this build may spend: it refuses to start beyond it, and stops submitting
    once what was spent and reserved for tasks in flight would pass it."""
    remote: str | None = None
    """The team's remote store URL ("" for none), over the environment and settings."""
    remote_readonly: bool | None = None
    picks: Mapping[str, int] = field(default_factory=dict)
    """Image name -> the take to make its output (``assetbuild pick``)."""
    rerolls: Mapping[str, int] = field(default_factory=dict)
    """Image name -> how many more takes to pay for (``assetbuild reroll``)."""
    first_poll: float | None = None
    """Seconds between status polls while no task has finished yet (default: 0.5 s for
    the API, 0.05 s for the in-process emulator, where polls cost nothing)."""
