"""Build progress for people: a live rich display on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

from assetbuild.outcomes import BuildEvent, BuildReport, Outcome, plural
from assetbuild.plan import Plan

OUTCOME_WORDS: dict[Outcome, str] = {
    "built": "built", "resumed": "resumed", "cached": "from cache",
    "remote": "cached from the remote", "restored": "restored", "picked": "picked",
    "up-to-date": "up to date",
    "failed": "FAILED", "skipped": "skipped",
}

PULL_WORDS: dict[Outcome, str] = {
    "restored": "restored", "cached": "restored", "remote": "restored from the remote",
    "up-to-date": "up to date",
    "failed": "FAILED", "skipped": "need a build",
}


def summary_line(report: BuildReport) -> str:
    """One sentence: what happened to how many images, points spent, time taken."""
    words = OUTCOME_WORDS if report.generated else PULL_WORDS
    parts = [f"{report.count(o)} {words[o]}" for o in words if report.count(o)]
    if report.count("up-to-date") == len(report.results):
        return f"Nothing to do: {plural(len(report.results), 'image')} up to date."
    body = ", ".join(parts)
    if not report.generated:
        return f"{body}; {report.elapsed:.1f} s."
    line = f"{body}; {plural(report.points_spent, 'point')} spent; {report.elapsed:.1f} s."
    retried = retries_phrase(report)
    return f"{line} {retried}" if retried else line


def retries_phrase(report: BuildReport) -> str:
    """``Retried 21 times after 429, 9 after 500; resent 1 submit.`` or ''."""
    causes = sorted(report.retries.items(), key=lambda item: (-item[1], item[0]))
    retried = [f"{n} after {cause}" for cause, n in causes if n]
    parts = [f"Retried {', '.join(retried).replace(' after', ' times after', 1)}"] if (
        retried) else []
    if report.resent_submits:
        parts.append(f"resent {report.resent_submits} submit(s) whose connection failed "
                     "before any answer")
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def report_json(report: BuildReport) -> dict[str, Any]:
    """The ``--json`` summary of a build or pull."""
    counts = {o: report.count(o) for o in OUTCOME_WORDS if report.count(o)}
    return {
        "counts": counts,
        "points_spent": report.points_spent,
        "elapsed": round(report.elapsed, 3),
        "aborted": str(report.aborted) if report.aborted else None,
        "retries": dict(report.retries),
        "resent_submits": report.resent_submits,
        "unjournaled_tasks": [{"image": n, "task_id": t} for n, t in report.unjournaled],
        "may_have_been_charged_twice": list(report.unanswered),
        "images": [r.to_json() for r in report.results],
    }


class PlainReporter:
    """One line per event on a stream (for logs, CI and pipes)."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False,
                 verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose

    def __call__(self, event: BuildEvent) -> None:
        line = self.format(event)
        if line:
            print(line, file=self.stream, flush=True)

    def format(self, event: BuildEvent) -> str | None:
        """The line for an event, or None when this verbosity hides it."""
        if event.kind == "finished" and event.result is not None:
            result = event.result
            failed = result.outcome in ("failed", "skipped")
            if self.quiet and not failed:
                return None
            if result.outcome == "up-to-date" and not self.verbose:
                return None
            detail = f": {result.message}" if result.message and (failed or self.verbose) else ""
            points = f" ({result.cost_points} points)" if result.cost_points else ""
            return f"{OUTCOME_WORDS[result.outcome]:<11} {event.name}{points}{detail}"
        if event.kind == "warning":
            return None if self.quiet else f"warning     {event.name}: {event.message}"
        if self.verbose and not self.quiet:
            return f"{event.kind:<11} {event.name} {event.message}"
        return None

    def planned(self, plan: Plan) -> None:
        """Nothing to prepare for plain lines."""

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class RichReporter:
    """A live line of counts and elapsed time, with a line printed per finished image."""

    def __init__(self, *, verbose: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.plain = PlainReporter(verbose=verbose)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.console, transient=True)
        self.task = self.progress.add_task("planning", total=None)
        self.counts: dict[Outcome, int] = {}
        self.in_flight = 0
        self.started = time.monotonic()

    def planned(self, plan: Plan) -> None:
        """Set the total once the plan is known."""
        self.progress.update(self.task, total=len(plan.images), description="starting")

    def __call__(self, event: BuildEvent) -> None:
        if event.kind in ("submitted", "resumed"):
            self.in_flight += 1
        if event.kind == "finished" and event.result is not None:
            outcome = event.result.outcome
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if outcome in ("built", "resumed") or (outcome == "failed" and self.in_flight):
                self.in_flight = max(0, self.in_flight - 1)
            self.progress.advance(self.task)
        line = self.plain.format(event)
        if line:
            self.progress.console.print(line, markup=False, highlight=False)
        counts = ", ".join(f"{n} {OUTCOME_WORDS[o]}" for o, n in self.counts.items())
        self.progress.update(self.task, description=f"{self.in_flight} in flight"
                             + (f", {counts}" if counts else ""))

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()
