"""When a request is tried again: the policy, the count of tries, and which transport
failures prove that nothing was sent (see :mod:`assetbuild.providers.see2ai` for the
policy in words)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from assetbuild.errors import TransientError

NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: resent like any idempotent request."""
CUT_OFF = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.WriteTimeout)
"""Connection failures that may come before any answer: a submit is resent (at most
``submit_resends`` times) only if our sockets saw not one byte of the answer."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures."""

    attempts: int = 6
    """Tries on server errors and connection failures."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    rate_limited_attempts: int = 30
    """Tries on 429: "try later" is not a failure, so it has its own, larger allowance."""
    submit_resends: int = 2
    """Resends of a submit whose connection failed before any byte of its answer."""
    request_deadline: float = 120.0
    """Seconds one try of an API request may take in all, however the server trickles."""
    download_deadline: float = 600.0
    """Seconds one try of a download may take in all."""

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class RequestCounts:
    """What one client retried, by cause (``429``, ``500``, ``connection``...), and how
    many submits it resent: for the build's summary and ``--json``."""

    retries: Counter[str] = field(default_factory=Counter)
    resent_submits: int = 0


def describe(exc: BaseException) -> str:
    """A failure in a few words (a bare timeout says what it means)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no complete answer within the deadline"
    return str(exc) or type(exc).__name__


class Tries:
    """Counts the tries of one request: failures and rate limits have separate allowances."""

    def __init__(self, policy: RetryPolicy,
                 give_up: Callable[[str], Exception] | None = None,
                 counts: RequestCounts | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self.rate_limits = 0
        self.give_up = give_up or (lambda why: TransientError(why))
        self.counts = counts

    @property
    def attempt(self) -> int:
        """How many tries have failed so far (for the backoff)."""
        return self.failures + self.rate_limits

    def failed(self, why: str, *, rate_limited: bool = False, delay: float | None = None,
               cause: str | None = None) -> float:
        """Record a failed try; the delay before the next, or raise when the allowance ends."""
        if self.counts is not None:
            self.counts.retries[cause or ("429" if rate_limited else "connection")] += 1
        if rate_limited:
            self.rate_limits += 1
            spent, allowed = self.rate_limits, self.policy.rate_limited_attempts
        else:
            self.failures += 1
            spent, allowed = self.failures, self.policy.attempts
        if spent >= allowed:
            raise self.give_up(f"gave up after {spent} attempts ({why})")
        return delay if delay is not None else self.policy.backoff(spent - 1)
