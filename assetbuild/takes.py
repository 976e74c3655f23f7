"""Takes as the commands see them: ``pick`` one as the output, ``reroll`` to pay for
more, ``takes`` to list them. Pick and reroll are builds asked for one image: they run
through :func:`assetbuild.build.build` (its lock, journal, cache, budget and remote),
so a reroll is paid for as any build is and a pick makes no task.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assetbuild.errors import UsageError
from assetbuild.manifest.model import MAX_TAKES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from assetbuild.cache import ResultCache
    from assetbuild.lockfile import LockEntry
    from assetbuild.plan import ImageStatus, Plan
    from assetbuild.project import Project

STALE = ("new", "changed", "upstream-changed")


@dataclass(frozen=True)
class TakeRow:
    """One take of an image, as ``assetbuild takes`` lists it."""

    number: int
    chosen: bool
    task_id: str
    sha256: str
    bytes: int
    cost_points: int | None
    cached: bool
    """Whether the local result cache holds its bytes (a pick of it needs no download)."""

    def to_json(self) -> dict[str, Any]:
        """The row for ``--json``."""
        return {"take": self.number, "chosen": self.chosen, "task_id": self.task_id,
                "sha256": self.sha256, "bytes": self.bytes, "cost_points": self.cost_points,
                "cached": self.cached}


def asked_takes(plan: Plan, picks: Mapping[str, int], rerolls: Mapping[str, int]) -> Plan:
    """The plan with the images to pick or reroll marked so (``pick`` and ``reroll``
    statuses); a UsageError that names the image and the lockfile if one cannot be."""
    items = []
    for item in plan.images:
        if item.name in picks:
            item = _pick(plan, item, picks[item.name])
        elif item.name in rerolls:
            item = _reroll(plan, item, rerolls[item.name])
        items.append(item)
    for name in (*picks, *rerolls):
        if name not in {item.name for item in items}:
            raise UsageError(f"no image is named {name!r} in {plan.resolved.manifest.path}; "
                             "`assetbuild list` shows the names (a take is of one image, "
                             "so globs are not taken here)")
    return replace(plan, images=tuple(items))


def _built(plan: Plan, item: ImageStatus, doing: str) -> LockEntry:
    """The image's lock entry, if its takes are of the spec the manifest asks for now."""
    lockfile = plan.resolved.manifest.lockfile_path
    if item.entry is None:
        raise UsageError(f"image '{item.name}' was never built, so it has no takes to "
                         f"{doing} ({lockfile} has no entry for it); run `assetbuild build "
                         f"'{item.name}'` first")
    if item.status in STALE:
        raise UsageError(f"image '{item.name}' is {item.status} ({item.reason}): its takes "
                         f"in {lockfile} are of the old spec; run `assetbuild build "
                         f"'{item.name}'` first")
    return item.entry


def _pick(plan: Plan, item: ImageStatus, number: int) -> ImageStatus:
    entry = _built(plan, item, "pick from")
    if not 1 <= number <= entry.take_count:
        raise UsageError(f"image '{item.name}' has {_count(entry.take_count)} in "
                         f"{plan.resolved.manifest.lockfile_path}; there is no take {number} "
                         f"(`assetbuild takes '{item.name}'` lists them)")
    return replace(item, status="pick", reason=f"take {number} asked for", asked=number)


def _reroll(plan: Plan, item: ImageStatus, count: int) -> ImageStatus:
    entry = _built(plan, item, "add to")
    if count < 1 or entry.take_count + count > MAX_TAKES:
        raise UsageError(f"image '{item.name}' keeps {_count(entry.take_count)}; "
                         f"{count} more would make {entry.take_count + count}, and an image "
                         f"keeps from 1 to {MAX_TAKES}")
    return replace(item, status="reroll", reason=f"{count} more take(s) asked for",
                   asked=count)


def _count(takes: int) -> str:
    return "1 take" if takes == 1 else f"{takes} takes"


def take_rows(project: Project, name: str, cache: ResultCache) -> list[TakeRow]:
    """Every take of image ``name`` as the lockfile keeps them."""
    plan = project.plan((name,))
    item = next((i for i in plan.images if i.name == name), None)
    if item is None:
        raise UsageError(f"no image is named {name!r} in {project.manifest.path}; "
                         "`assetbuild list` shows the names")
    entry = _built(plan, replace(item, status="up-to-date"), "list")
    return [TakeRow(number, number == entry.take, take.task_id, take.sha256[0], take.bytes[0],
                    take.cost_points, all(cache.has_blob(sha) for sha in take.sha256))
            for number, take in enumerate(entry.all_takes(), start=1)]
