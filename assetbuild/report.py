"""Text and JSON renderings of plans and lists, for the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from assetbuild.outcomes import plural
from assetbuild.plan import Plan

if TYPE_CHECKING:
    from assetbuild.resolve import ResolvedImage


def dumps(value: Any) -> str:
    """Pretty, stable JSON for stdout."""
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The ``--json`` document of ``plan`` and ``check``."""
    actions = {"build": 0, "resume": 0, "restore": 0, "none": 0}
    for item in plan.images:
        actions[plan.action_of(item)] += 1
    from assetbuild.cost import estimate

    cost = estimate(plan)
    return {
        "manifest": str(plan.resolved.manifest.path),
        "estimated_points": cost.points,
        "unpriced_images": cost.unpriced,
        "provider": plan.provider,
        "up_to_date": plan.up_to_date,
        "counts": plan.counts(),
        "actions": actions,
        "images": [item.to_json() | {"action": plan.action_of(item)}
                   | ({"paid_task": plan.paid[item.spec_hash]}
                      if item.spec_hash in plan.paid else {})
                   for item in plan.images],
    }


def plan_lines(plan: Plan, *, only_stale: bool = False) -> list[str]:
    """One line per image: name, status, what build would do, and why."""
    rows = [
        (item.name, item.status, plan.action_of(item), item.reason + (
            "; an interrupted build's task is journaled: build resumes it (paid, no new "
            "charge)" if plan.action_of(item) == "resume" else ""))
        for item in plan.images
        if not (only_stale and item.status == "up-to-date")
    ]
    if not rows:
        return []
    width = min(max(len(r[0]) for r in rows), 48)
    return [f"{name:<{width}}  {status:<16}  {action:<7}  {reason}"
            for name, status, action, reason in rows]


def plan_summary(plan: Plan) -> str:
    """One sentence: how many images, by status, and what build would do."""
    counts = plan.counts()
    total = len(plan.images)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    actions = [plan.action_of(item) for item in plan.images]
    build, resume, restore = (actions.count(a) for a in ("build", "resume", "restore"))
    if plan.up_to_date:
        return f"{total} image{'s' if total != 1 else ''} up to date."
    from assetbuild.cost import estimate

    cost = f" Estimated cost: {estimate(plan).describe()}." if build else ""
    paid = f", resume {resume} task(s) already paid for" if resume else ""
    return (f"{plural(total, 'image')}: {parts}. build would generate {build}{paid} and "
            f"restore {restore} from the cache or the locked URLs.{cost}")


def images_json(plan: Plan) -> list[dict[str, Any]]:
    """The ``--json`` document of ``list``: each image, its output and status."""
    return [{"name": i.name, "output": i.image.output, "status": i.status,
             "aspect_ratio": i.image.aspect_ratio, "resolution": i.image.resolution,
             "dependencies": list(i.image.dependencies)} for i in plan.images]


def graph_json(images: Sequence[ResolvedImage], statuses: Mapping[str, str]) -> dict[str, Any]:
    """The ``--json`` document of ``graph``: images as nodes, references as edges."""
    return {"nodes": [{"name": i.name, "status": statuses[i.name]} for i in images],
            "edges": [{"from": d, "to": i.name} for i in images for d in i.dependencies]}
