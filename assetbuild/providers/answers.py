"""What the SEE2AI API answers, read tolerantly: task states and statuses, error
messages, ``Retry-After``.

The vendor's page leaves the status fields loosely specified (``state`` or
``status``, several spellings of each state, answers wrapped in ``data``); whatever
it sends is normalised here, and anything unexpected is an ApiError that names it.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from assetbuild._types import TaskState
from assetbuild.errors import ApiError

SUCCEEDED = frozenset({"completed", "complete", "succeeded", "success", "succeed", "done",
                       "finished"})
FAILED = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled", "timeout",
                    "timed_out", "expired", "rejected"})
IN_PROGRESS = frozenset({"pending", "queued", "processing", "running", "in_progress",
                         "submitted", "created", "waiting", "started", "generating"})


@dataclass(frozen=True)
class TaskStatus:
    """A task's state as the API reports it, normalised."""

    task_id: str
    state: TaskState
    raw_state: str
    result_urls: tuple[str, ...] = ()
    model: str = ""
    cost_points: int | None = None
    cost_time: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None


def normalise_state(raw: str) -> TaskState | None:
    """``succeeded``, ``failed`` or ``pending`` for a known state string, else None."""
    value = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if value in SUCCEEDED:
        return "succeeded"
    if value in FAILED:
        return "failed"
    if value in IN_PROGRESS:
        return "pending"
    return None


def error_message(response: httpx.Response) -> str:
    """The API's error text: ``detail``, ``message`` or ``error``, else the body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] or response.reason_phrase or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "msg"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            if value:
                return value if isinstance(value, str) else json.dumps(value)[:500]
    return json.dumps(body)[:500]


def retry_after_seconds(response: httpx.Response, cap: float) -> float | None:
    """``Retry-After`` in seconds (from seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


def parse_status(body: Any, task_id: str = "") -> TaskStatus:
    """Read a submit or status answer tolerantly (``state`` or ``status``, extra fields)."""
    if isinstance(body, dict) and "task_id" not in body and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise ApiError(f"unexpected answer from the API: {str(body)[:200]}")
    raw = body.get("state") or body.get("status") or ""
    raw = raw if isinstance(raw, str) else str(raw)
    found_id = body.get("task_id") or task_id
    if not isinstance(found_id, str | int) or not str(found_id):
        raise ApiError("the API's answer has no task_id")
    urls = body.get("result_urls") or []
    return TaskStatus(
        task_id=str(found_id),
        state=normalise_state(raw) or "pending",
        raw_state=raw,
        result_urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        model=str(body.get("model") or ""),
        cost_points=_int_or_none(body.get("cost_points")),
        cost_time=_int_or_none(body.get("cost_time")),
        input_tokens=_int_or_none(body.get("input_tokens")) or 0,
        output_tokens=_int_or_none(body.get("output_tokens")) or 0,
        total_tokens=_int_or_none(body.get("total_tokens")) or 0,
        warnings=tuple(str(w) for w in body.get("warnings") or () if w),
        error=_failure_text(body),
    )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _failure_text(body: dict[str, Any]) -> str | None:
    for key in ("error", "message", "detail", "fail_reason", "error_message"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value:
            return value
    return None


def json_body(response: httpx.Response) -> Any:
    """The body as JSON, or an ApiError quoting what came instead."""
    try:
        return response.json()
    except ValueError:
        raise ApiError(f"the API answered HTTP {response.status_code} with a body that is not "
                       f"JSON: {response.text[:200]!r}") from None
