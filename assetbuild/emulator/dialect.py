"""The platform's own dialect, as its published client scripts read its answers: an
upper-case ``status`` and no ``state``, a failure's reason in ``error_message``, and an
empty balance answered with 401. The vendor page's dialect is the emulator's default."""

from __future__ import annotations

from typing import Any, Literal

Dialect = Literal["vendor", "platform"]

PLATFORM_STATUS = {"pending": "RUNNING", "processing": "RUNNING", "completed": "SUCCESS",
                   "failed": "FAILED"}

PLATFORM_NO_BALANCE = "余额不足，请充值"
"""What the platform says with its 401 when the account is out of points
("insufficient balance, please top up")."""


def as_platform(answer: dict[str, Any]) -> dict[str, Any]:
    """A task answer of the vendor dialect rewritten in the platform's."""
    rewritten = {key: value for key, value in answer.items() if key not in ("state", "error")}
    state = answer.get("state", "pending")
    rewritten["status"] = PLATFORM_STATUS.get(state, str(state).upper())
    if "error" in answer:
        rewritten["error_message"] = answer["error"]
    return rewritten
