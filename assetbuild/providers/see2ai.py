"""The SEE2AI HTTP client (httpx, async): submit, poll, upload, download.

Retry policy. The API takes no idempotency key, so a submit (or upload) is retried
only when it provably created nothing:

* 429 and 500/503 answers: the server answered with an error and no task id;
* connect errors and timeouts, pool timeouts, write errors and timeouts: the request
  never fully reached the server;
* a connection closed or reset before any response arrived (a stale keep-alive
  connection is the usual cause).

A read timeout after the request was sent, and 502/504 from a gateway, are the
ambiguous cases: the server may have created (and charged for) a task. Those are
not retried; the image fails with :class:`SubmitUncertain` saying so. Status polls
and downloads are idempotent and retry on every transient failure. 401 and 402 are
never retried. Backoff is exponential with full jitter; ``Retry-After`` (seconds or
an HTTP date) is honoured up to a cap.

The API key is sent only to the API's own host, never to result URLs, and appears
in no exception, log line or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from assetbuild import __version__
from assetbuild._types import DEFAULT_BASE_URL, IMAGE_ACTION, UPLOAD_ACTION
from assetbuild.errors import (
    ApiError,
    AuthError,
    BalanceError,
    DownloadError,
    RequestRejected,
    SubmitUncertain,
    TaskGone,
    TransientError,
)
from assetbuild.fsutil import open_temp_beside
from assetbuild.providers.answers import (
    TaskStatus,
    error_message,
    json_body,
    parse_status,
    retry_after_seconds,
)
from assetbuild.providers.safety import check_download_url, verify_image

SAFE_TO_RESEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
                  httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)

Sleep = Callable[[float], Awaitable[None]]


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

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class Download:
    """A downloaded result: a verified image in a temporary file beside its destination."""

    path: Path
    sha256: str
    size: int
    kind: str
    """``png``, ``jpeg`` or ``webp``."""


class See2AIClient:
    """One pooled HTTP client for a build. Use as ``async with See2AIClient(...)``."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        max_download_bytes: int = 64 * 1024 * 1024,
        max_connections: int = 100,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.max_download_bytes = max_download_bytes
        self._sleep = sleep
        self._api_host = urlsplit(self.base_url).hostname or ""
        self._settings: dict[str, Any] = dict(
            transport=transport,
            timeout=timeout or httpx.Timeout(60.0, connect=15.0),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": f"assetbuild/{__version__}"},
            follow_redirects=False,
        )
        self._client: httpx.AsyncClient | None = None
        self._gate = asyncio.Semaphore(max_connections)  # binds to a loop on first wait

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """The client, once one of its ``max_connections`` is free for a request.

        Requests wait here rather than in httpcore's pool, which walks every queued
        request against every connection each time one starts or ends: with 64 tasks
        in flight on 16 connections that walk was a third of a build's CPU.
        """
        async with self._gate:
            yield self._http

    @property
    def _http(self) -> httpx.AsyncClient:
        # Made on first use: its TLS context costs 50 ms that a restore from the cache
        # never needs.
        if self._client is None:
            from assetbuild.providers.sockets import keep_sockets_at_hand

            self._client = httpx.AsyncClient(**self._settings)
            if self._settings["transport"] is None:  # httpx's own, proxies from the env kept
                keep_sockets_at_hand(self._client._transport)
        return self._client

    def __repr__(self) -> str:
        return f"See2AIClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> See2AIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    async def submit(self, body: dict[str, Any]) -> TaskStatus:
        """Submit an image job to the async endpoint; return its task id and first state."""
        url = f"{self.base_url}/api/v1/actions/{IMAGE_ACTION}/async"
        response = await self._call("POST", url, resend_safe_only=True, json=body)
        status = parse_status(json_body(response))
        return status

    async def status(self, task_id: str) -> TaskStatus:
        """Poll a task once (retrying transient failures)."""
        url = f"{self.base_url}/api/v1/actions/{IMAGE_ACTION}/status/{task_id}"
        response = await self._call("GET", url, resend_safe_only=False, task_id=task_id)
        return parse_status(json_body(response), task_id)

    async def upload(self, path: Path) -> str:
        """Upload a local reference image; return the hosted URL."""
        url = f"{self.base_url}/api/v1/actions/{UPLOAD_ACTION}"
        data = path.read_bytes()
        response = await self._call(
            "POST", url, resend_safe_only=True,
            files={"file": (path.name, data, "application/octet-stream")},
        )
        body = json_body(response)
        hosted = body.get("url") if isinstance(body, dict) else None
        if not hosted and isinstance(body, dict) and body.get("result_urls"):
            hosted = body["result_urls"][0]
        if not isinstance(hosted, str) or not hosted.startswith(("http://", "https://")):
            raise ApiError(f"the upload of {path.name} returned no usable URL")
        return hosted

    async def _call(
        self, method: str, url: str, *, resend_safe_only: bool, task_id: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        tries = _Tries(self.retry)
        while True:
            try:
                async with self._connection() as http:
                    response = await http.request(method, url, headers=self._auth(), **kwargs)
            except httpx.TransportError as exc:
                if resend_safe_only and not isinstance(exc, SAFE_TO_RESEND):
                    raise SubmitUncertain(
                        f"no answer to the submit ({type(exc).__name__}); the API may have "
                        "created and charged a task that assetbuild cannot see. It was not "
                        "resubmitted: run the build again to submit it anew") from None
                await self._sleep(tries.failed(f"{type(exc).__name__}: {exc}"))
                continue
            delay = self._retry_delay(response, tries.attempt, resend_safe_only, task_id)
            if delay is None:
                return response
            why = f"HTTP {response.status_code}: {error_message(response)}"
            await self._sleep(tries.failed(why, rate_limited=response.status_code == 429,
                                           delay=delay))

    def _retry_delay(
        self, response: httpx.Response, attempt: int, resend_safe_only: bool,
        task_id: str | None,
    ) -> float | None:
        """None when ``response`` is final (raising if it is an error), else the delay."""
        code = response.status_code
        if code < 400:
            return None
        message = error_message(response)
        if code == 401:
            raise AuthError(message, status=401)
        if code == 402:
            raise BalanceError(message, status=402)
        if code == 404 and task_id is not None:
            raise TaskGone(f"task {task_id} is unknown to the API ({message})", status=404)
        if code == 429:
            waited = retry_after_seconds(response, self.retry.max_retry_after)
            return waited if waited is not None else self.retry.backoff(attempt)
        if resend_safe_only and code in (502, 504):
            raise SubmitUncertain(
                f"the gateway answered {code} ({message}); the API may have created and "
                "charged a task. It was not resubmitted: run the build again to submit it anew",
                status=code)
        if code >= 500:
            return self.retry.backoff(attempt)
        raise RequestRejected(message, status=code)

    async def download(self, url: str, destination: Path) -> Download:
        """Stream ``url`` to a temporary file beside ``destination`` and verify it.

        Follows up to 5 redirects, each checked; refuses non-http(s) and internal
        addresses other than the API's own host; enforces the size cap and
        ``Content-Length``; checks that the bytes are a PNG, JPEG or WebP image of a
        sane size. The caller renames ``Download.path`` into place.
        """
        tries = _Tries(self.retry, give_up=lambda why: DownloadError(
            f"could not download {url}: {why}"))
        while True:
            try:
                return await self._download_once(url, destination)
            except (httpx.TransportError, _RetryableDownload) as exc:
                limited = isinstance(exc, _RetryableDownload) and exc.rate_limited
                await self._sleep(tries.failed(str(exc) or type(exc).__name__,
                                               rate_limited=limited))

    async def _download_once(self, url: str, destination: Path) -> Download:
        for _ in range(6):
            check_download_url(url, self._api_host)
            async with self._connection() as http:
                response = await http.send(http.build_request("GET", url), stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await self._save(response, url, destination)
                finally:
                    await response.aclose()
        raise DownloadError(f"too many redirects from {url}")

    async def _save(self, response: httpx.Response, url: str, destination: Path) -> Download:
        code = response.status_code
        if code == 429 or code >= 500:
            raise _RetryableDownload(f"HTTP {code}", rate_limited=code == 429)
        if code != 200:
            raise DownloadError(f"{url} answered HTTP {code}", status=code)
        expected = response.headers.get("content-length")
        if expected is not None and int(expected) > self.max_download_bytes:
            raise DownloadError(f"{url} is larger than the {self.max_download_bytes} byte cap")
        fd, tmp = open_temp_beside(destination)
        try:
            with os.fdopen(fd, "wb") as handle:
                digest, size, first = await self._stream_to(response, handle, url)
            if expected is not None and size != int(expected):
                raise _RetryableDownload(f"truncated: {size} of {expected} bytes")
            # An image that came in one chunk is checked from memory, not read again.
            kind = verify_image(first if len(first) == size else tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Download(tmp, digest, size, kind)

    async def _stream_to(self, response: httpx.Response, handle: BinaryIO,
                         url: str) -> tuple[str, int, bytes]:
        """Write the body to ``handle``; its sha256, its size and its first chunk."""
        digest = hashlib.sha256()
        size = 0
        first = b""
        async for chunk in response.aiter_bytes(1 << 16):
            size += len(chunk)
            if size > self.max_download_bytes:
                raise DownloadError(f"{url} is larger than the {self.max_download_bytes} "
                                    "byte cap")
            digest.update(chunk)
            handle.write(chunk)
            first = first or chunk
        return digest.hexdigest(), size, first


class _RetryableDownload(Exception):
    """A download failure worth another try (server error, truncated body, 429)."""

    def __init__(self, message: str, *, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited


class _Tries:
    """Counts the tries of one request: failures and rate limits have separate allowances."""

    def __init__(self, policy: RetryPolicy,
                 give_up: Callable[[str], Exception] | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self.rate_limits = 0
        self.give_up = give_up or (lambda why: TransientError(why))

    @property
    def attempt(self) -> int:
        """How many tries have failed so far (for the backoff)."""
        return self.failures + self.rate_limits

    def failed(self, why: str, *, rate_limited: bool = False, delay: float | None = None) -> float:
        """Record a failed try; the delay before the next, or raise when the allowance ends."""
        if rate_limited:
            self.rate_limits += 1
            spent, allowed = self.rate_limits, self.policy.rate_limited_attempts
        else:
            self.failures += 1
            spent, allowed = self.failures, self.policy.attempts
        if spent >= allowed:
            raise self.give_up(f"gave up after {spent} attempts ({why})")
        return delay if delay is not None else self.policy.backoff(spent - 1)
