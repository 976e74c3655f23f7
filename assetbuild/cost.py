"""What a build would cost, from what the lockfile says earlier images cost.

The API prices by resolution and reports each task's ``cost_points``; the average per
resolution over the lockfile is the estimate. Resolutions never built have no price.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from assetbuild.lockfile import Lockfile
from assetbuild.plan import Plan

PRICE_CEILINGS = {"1K": 20.0, "2K": 40.0, "4K": 80.0}
"""Points set aside under ``--max-cost`` for a resolution whose price neither the
lockfile nor this build has seen yet: twice the prices the platform is known to charge
(10, 20, 40), so that a first build cannot overshoot its budget."""


@dataclass
class Prices:
    """Average points per resolution, learned from the lockfile and from this build."""

    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ceilings: dict[str, float] = field(default_factory=lambda: dict(PRICE_CEILINGS))
    """What to set aside while a resolution's price is unknown (settings can change it)."""

    @classmethod
    def from_lockfile(cls, lockfile: Lockfile,
                      ceilings: tuple[tuple[str, float], ...] = ()) -> Prices:
        """Prices as the lockfile's entries paid them; ``ceilings`` (the manifest's
        ``price_ceilings``) replace the default ones they name."""
        prices = cls(ceilings={**PRICE_CEILINGS, **dict(ceilings)})
        for entry in lockfile.entries.values():
            resolution = entry.request.get("resolution")
            if isinstance(resolution, str) and entry.cost_points is not None:
                prices.learn(resolution, entry.cost_points)
        return prices

    def learn(self, resolution: str, points: int) -> None:
        """Add one observed price."""
        self.totals[resolution] += points
        self.counts[resolution] += 1

    def of(self, resolution: str) -> float | None:
        """The average price at ``resolution``, or None if never seen."""
        count = self.counts.get(resolution, 0)
        return self.totals[resolution] / count if count else None

    def at_most(self, resolution: str) -> float:
        """What to set aside for one image at ``resolution``: its learned price, else the
        conservative ceiling (the largest ceiling for a resolution not in the table)."""
        price = self.of(resolution)
        if price is not None:
            return price
        return self.ceilings.get(resolution, max(self.ceilings.values()))


@dataclass(frozen=True)
class Estimate:
    """The points a build would spend, and how many images have no price to go on."""

    points: int
    unpriced: int

    def describe(self) -> str:
        """One clause for people."""
        if not self.unpriced:
            return f"about {self.points} points"
        unknown = (f"{self.unpriced} image{'s' if self.unpriced != 1 else ''} at a price not "
                   "known yet (no image of that resolution is in the lockfile)")
        if not self.points:
            return f"an unknown number of points: {unknown}"
        return f"about {self.points} points, plus {unknown}"


def estimate(plan: Plan) -> Estimate:
    """What building ``plan`` would spend, priced by the lockfile's history."""
    prices = Prices.from_lockfile(plan.lockfile)
    points = 0.0
    unpriced = 0
    for item in plan.images:
        if plan.action_of(item) != "build":  # a resumed task is paid for already
            continue
        price = prices.of(item.image.resolution)
        if price is None:
            unpriced += item.tasks
        else:
            points += price * item.tasks
    return Estimate(round(points), unpriced)
