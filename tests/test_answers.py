"""The API's answers are read tolerantly: states, status bodies, errors, Retry-After."""

from __future__ import annotations

from typing import Any

import httpx

from assetbuild.providers.answers import (
    error_message,
    normalise_state,
    parse_status,
    retry_after_seconds,
)


def test_state_normalisation() -> None:
    assert normalise_state("COMPLETED") == "succeeded"
    assert normalise_state("success") == "succeeded"
    assert normalise_state("in-progress") == "pending"
    assert normalise_state("Cancelled") == "failed"
    assert normalise_state("levitating") is None


def test_status_bodies_are_read_tolerantly() -> None:
    status = parse_status({"data": {"task_id": 42, "status": "done", "result_urls": ["u"],
                                    "cost_points": 3.0, "novel": {"x": 1}, "warnings": None}})
    assert (status.task_id, status.state, status.result_urls, status.cost_points) == (
        "42", "succeeded", ("u",), 3)
    odd = parse_status({"task_id": "t", "state": "levitating"})
    assert (odd.state, odd.raw_state) == ("pending", "levitating")


def test_error_bodies_are_read_tolerantly() -> None:
    def message(**kwargs: Any) -> str:
        return error_message(httpx.Response(400, **kwargs))

    assert message(json={"detail": "bad prompt"}) == "bad prompt"
    assert message(json={"error": {"message": "nested"}}) == "nested"
    assert message(json={"message": "plain"}) == "plain"
    assert message(json={"detail": [{"loc": ["prompt"]}]}) == '[{"loc": ["prompt"]}]'
    assert message(text="upstream exploded") == "upstream exploded"


def test_retry_after_forms() -> None:
    def after(value: str, cap: float = 60) -> float | None:
        return retry_after_seconds(httpx.Response(429, headers={"Retry-After": value}), cap)

    assert after("3") == 3.0
    assert after("3", cap=1) == 1.0
    assert after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert after("garbage") is None
