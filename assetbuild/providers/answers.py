"""What the SEE2AI API answers, read tolerantly: task states and statuses, error
messages, ``Retry-After``.

The vendor's page leaves the status fields loosely specified (``state`` or
``status``, several spellings of each state, answers wrapped in ``data``); whatever
it sends is normalised here, and anything unexpected is an ApiError that names it.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Callable
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
MAX_RESULT_URLS = 16
"""Results one task may record (the API returns one; the rest are ignored, with a warning)."""
MAX_URL_CHARS = 4096
MAX_TEXT_CHARS = 500
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a task id may look like: it goes into URLs, the journal and the lockfile."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")

Clean = Callable[[str], str]
"""Makes a server's text safe to show and store (see :func:`cleaner`)."""


def cleaner(*secrets: str) -> Clean:
    """A function that redacts ``secrets`` (the API key) from a server's text, replaces
    control characters (terminal escapes, bidi overrides) with spaces, and shortens it
    to 500 characters."""
    hidden = [s for s in secrets if s]

    def clean(text: str) -> str:
        for secret in hidden:
            text = text.replace(secret, "[redacted]")
        text = _CONTROL.sub(" ", text).strip()
        return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "..."

    return clean


def _plain(text: str) -> str:
    return cleaner()(text)


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
    emulated: bool = False
    """The answer came from assetbuild's emulator (its results are placeholders)."""


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


def error_message(response: httpx.Response, clean: Clean = _plain) -> str:
    """The API's error text: ``detail``, ``message`` or ``error``, else the body
    (cleaned: no key, no control characters, 500 characters at most)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        text = clean(response.text[:2000])
        return text or response.reason_phrase or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "error_message", "msg"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            if value:
                return clean(value if isinstance(value, str) else _dumps(value))
    return clean(_dumps(body))


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)[:2000]
    except (ValueError, RecursionError):
        return "(an answer that cannot be shown)"


def retry_after_seconds(response: httpx.Response, cap: float) -> float | None:
    """``Retry-After`` in seconds (from seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


def valid_task_id(value: object) -> bool:
    """Whether ``value`` is a task id assetbuild can poll, journal and lock."""
    return isinstance(value, str) and TASK_ID.fullmatch(value) is not None


def parse_status(body: Any, task_id: str = "", clean: Clean = _plain) -> TaskStatus:
    """Read a submit or status answer tolerantly (``state`` or ``status``, extra fields);
    every text the server wrote passes through ``clean``."""
    if isinstance(body, dict) and "task_id" not in body and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise ApiError(f"unexpected answer from the API: {clean(_dumps(body))[:200]}")
    raw = body.get("state") or body.get("status") or ""
    raw = clean(raw if isinstance(raw, str) else str(raw))[:64]
    found = body.get("task_id") or task_id
    found_id = str(found) if isinstance(found, str | int) and not isinstance(found, bool) else ""
    if not found_id:
        raise ApiError("the API's answer has no task_id")
    if not valid_task_id(found_id):
        raise ApiError(f"the API's answer has a task id assetbuild cannot use "
                       f"({clean(found_id)[:60]!r}: not 1-128 letters, digits, '.', '_', "
                       "':' or '-')")
    urls, dropped = _result_urls(body.get("result_urls"))
    warnings = [clean(str(w)) for w in _listed(body.get("warnings")) if w][:MAX_RESULT_URLS]
    if dropped:
        warnings.append(f"the API listed {dropped} more result URL(s) than assetbuild "
                        f"keeps ({MAX_RESULT_URLS}) or unusable ones; they were ignored")
    return TaskStatus(
        task_id=found_id,
        state=normalise_state(raw) or "pending",
        raw_state=raw,
        result_urls=urls,
        model=clean(str(body.get("model") or ""))[:200],
        cost_points=_int_or_none(body.get("cost_points")),
        cost_time=_int_or_none(body.get("cost_time")),
        input_tokens=_int_or_none(body.get("input_tokens")) or 0,
        output_tokens=_int_or_none(body.get("output_tokens")) or 0,
        total_tokens=_int_or_none(body.get("total_tokens")) or 0,
        warnings=tuple(warnings),
        error=_failure_text(body, clean),
        emulated=body.get("assetbuild_emulator") is True,
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _result_urls(value: Any) -> tuple[tuple[str, ...], int]:
    """The usable result URLs (strings of at most 4,096 characters with no control
    characters; whether each may be downloaded is the download's check), at most 16;
    and how many were left out."""
    listed = _listed(value)
    usable = [u for u in listed if isinstance(u, str) and len(u) <= MAX_URL_CHARS
              and not _CONTROL.search(u)]
    kept = tuple(usable[:MAX_RESULT_URLS])
    return kept, len(listed) - len(kept)


def _int_or_none(value: Any) -> int | None:
    """A count the API reported, or None when it is not a sane number (``1e400``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not -(2**53) <= value <= 2**53:
        return None
    return int(value)


def _failure_text(body: dict[str, Any], clean: Clean) -> str | None:
    for key in ("error_message", "error", "message", "detail", "fail_reason"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value:
            return clean(value)
    return None


def json_body(response: httpx.Response, clean: Clean = _plain) -> Any:
    """The body as JSON, or an ApiError quoting what came instead."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise ApiError(f"the API answered HTTP {response.status_code} with a body that is not "
                       f"JSON: {clean(response.text[:200])!r}") from None
