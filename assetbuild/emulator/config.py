"""How the emulator behaves (latency, faults, dialect) and what it counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from assetbuild.emulator.dialect import Dialect


@dataclass
class EmulatorConfig:
    """Latency and fault injection; every rate is a probability per request."""

    latency_min: float = 0.0
    latency_max: float = 0.0
    failure_rate: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_500: float = 0.0
    rate_504: float = 0.0
    """On status polls only (the vendor's 504 means polling timed out)."""
    drop_rate: float = 0.0
    """Connections dropped before any response; no task is created."""
    hang_rate: float = 0.0
    """Submits that create a task, then answer only after ``hang_seconds``."""
    hang_seconds: float = 30.0
    truncate_rate: float = 0.0
    slow_status: float = 0.0
    balance: int | None = None
    api_key: str | None = None
    seed: int | None = None
    plain_images: bool = False
    """Flat images without the prompt drawn on them (cheaper, for load tests)."""
    dialect: Dialect = "vendor"
    """``platform``: answer as the platform's client scripts read it (upper-case
    statuses, ``error_message``, 401 for an empty balance)."""
    announce: bool = True
    """Mark every task answer as the emulator's, so its placeholders are locked as
    provider "emulator" whatever URL it is reached at. Tests that stand in for the real
    platform (whose answers carry no such mark) turn it off."""

    def update(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A copy with ``changes`` applied (``latency`` is the command line's name for
        ``latency_min``, and also sets ``latency_max`` when that is not given); unknown
        names raise ValueError listing the known ones."""
        changes = {key.replace("-", "_"): value for key, value in changes.items()}
        if "latency" in changes:
            changes.setdefault("latency_max", changes["latency"])
            changes["latency_min"] = changes.pop("latency")
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown emulator settings: {', '.join(sorted(unknown))}; "
                             f"known: latency, {', '.join(sorted(known))}")
        return replace(self, **changes)


@dataclass
class EmulatorStats:
    """What the emulator received, for tests and benchmarks to read."""

    submits: int = 0
    submits_by_prompt: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    refusals: Counter[int] = field(default_factory=Counter)
    """Submits refused by status code (400, 401, 402), faults aside."""
    status_polls: int = 0
    downloads: int = 0
    uploads: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    points_spent: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        data = asdict(self)
        data["submits_by_prompt"] = dict(self.submits_by_prompt)
        data["faults"] = dict(self.faults)
        data["refusals"] = {str(code): n for code, n in self.refusals.items()}
        return data
