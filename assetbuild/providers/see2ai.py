"""The SEE2AI HTTP client (httpx, async): submit, poll, upload, download.

Retry policy. The API takes no idempotency key, so a submit (or upload) is resent
only when it provably created nothing:

* 429 and 500/503 answers: the server answered with an error and no task id;
* connect errors and timeouts, pool timeouts: the request never left;
* a connection that failed (closed, reset, a write error) before a single byte of
  the answer arrived, counted by our own sockets: resent at most
  ``RetryPolicy.submit_resends`` times (2), since a server that read the request and
  then reset may still have created the task.

Anything else after the request went out is "may have been charged" and never
resent: an answer that had begun (truncated, an oversized header block, garbage),
a read timeout, 502/504 from a gateway, a 2xx whose body has no usable task id. The
image fails with :class:`SubmitUncertain` saying so. Status polls and downloads are
idempotent and retry on every transient failure. 401 and 402 are never retried.
Backoff is exponential with full jitter; ``Retry-After`` (seconds or an HTTP date,
finite) is honoured up to a cap. Every try has a total deadline, and every answer a
cap on its decoded size (:mod:`assetbuild.providers.bodies`).

The API key is sent only to the API's own host, never to result URLs; it appears in
no exception, log line or repr, and is redacted from everything the server says.
Connections to other hosts go only to checked global addresses
(:mod:`assetbuild.providers.addresses`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

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
    Unreachable,
)
from assetbuild.providers.addresses import normalise_host, public_address
from assetbuild.providers.answers import (
    Clean,
    TaskStatus,
    cleaner,
    error_message,
    json_body,
    parse_status,
    retry_after_seconds,
)
from assetbuild.providers.bodies import (
    BadEncoding,
    BodyTooLarge,
    read_capped,
    with_body,
)
from assetbuild.providers.downloads import Download, RetryableDownload, save_download
from assetbuild.providers.retries import (
    CUT_OFF,
    NOTHING_SENT,
    RequestCounts,
    RetryPolicy,
    Tries,
    describe,
)
from assetbuild.providers.safety import check_download_url
from assetbuild.providers.sockets import ANSWER_PROBE, AnswerProbe
from assetbuild.uploads import UploadFile

UNREACHABLE_AFTER = 3
"""Connection failures in a row (across all requests) after which the API's host is
taken as unreachable and nothing more is sent to it."""

Sleep = Callable[[float], Awaitable[None]]


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
        self.counts = RequestCounts()
        self.on_retry: Callable[[str, float], None] | None = None
        """Told of every retry before its wait: what failed and the seconds to wait."""
        self._unreachable: Unreachable | None = None
        self._failed_connects = 0
        self._key_accepted = False
        """Whether the API answered this key with a success: a later 401 is the balance."""
        self._clean: Clean = cleaner(api_key)
        self._sleep = sleep
        self._api_host = normalise_host(urlsplit(self.base_url).hostname or "")
        self._settings: dict[str, Any] = dict(
            transport=transport,
            timeout=timeout or httpx.Timeout(60.0, connect=15.0),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": f"assetbuild/{__version__}",
                     "Accept-Encoding": "gzip, deflate"},
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
                keep_sockets_at_hand(self._client._transport, self._api_host)
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
        """Submit an image job to the async endpoint; return its task id and first state.

        An accepted submit whose answer is unusable (not JSON, no valid task id) is
        SubmitUncertain: a task may exist and be charged."""
        url = f"{self.base_url}/api/v1/actions/{IMAGE_ACTION}/async"
        response = await self._call("POST", url, submit=True, json=body)
        try:
            return parse_status(json_body(response, self._clean), clean=self._clean)
        except ApiError as exc:
            raise SubmitUncertain(
                f"{exc}; the API may have created and charged a task that assetbuild "
                "cannot poll. It was not resubmitted: check the account's task log, then "
                "run the build again to submit it anew", status=response.status_code) from None

    async def status(self, task_id: str) -> TaskStatus:
        """Poll a task once (retrying transient failures)."""
        url = f"{self.base_url}/api/v1/actions/{IMAGE_ACTION}/status/{quote(task_id, safe='')}"
        response = await self._call("GET", url, submit=False, task_id=task_id)
        return parse_status(json_body(response, self._clean), task_id, self._clean)

    async def upload(self, file: UploadFile) -> str:
        """Upload a local reference image (as :func:`assetbuild.uploads.prepare_upload`
        made it); return the hosted URL."""
        url = f"{self.base_url}/api/v1/actions/{UPLOAD_ACTION}"
        response = await self._call(
            "POST", url, submit=True,
            files={"file": (file.name, file.data, file.content_type)},
        )
        body = json_body(response, self._clean)
        hosted = body.get("url") if isinstance(body, dict) else None
        if not hosted and isinstance(body, dict) and body.get("result_urls"):
            hosted = body["result_urls"][0]
        if not isinstance(hosted, str) or not hosted.startswith(("http://", "https://")):
            raise ApiError(f"the upload of {file.name} returned no usable URL")
        return hosted

    async def _call(
        self, method: str, url: str, *, submit: bool, task_id: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API request, retried as the module's policy says; ``submit``: it may
        create (and charge) something, so it is resent only when that provably did not
        happen."""
        tries = Tries(self.retry, counts=self.counts)
        resends = 0
        while True:
            if self._unreachable is not None:
                raise self._unreachable
            probe = AnswerProbe()
            token = ANSWER_PROBE.set(probe)
            try:
                async with self._connection() as http:
                    response = await self._exchange(http, method, url, **kwargs)
            except (httpx.TransportError, TimeoutError) as exc:
                why = describe(exc)
                self._count_connect_failure(exc, why)
                if submit and not isinstance(exc, NOTHING_SENT):
                    unanswered = (isinstance(exc, CUT_OFF) and probe.observed
                                  and probe.received == 0)
                    if not unanswered or resends >= self.retry.submit_resends:
                        raise _uncertain(why, probe) from None
                    resends += 1
                    self.counts.resent_submits += 1
                await self._pause(url, why, tries.failed(why))
                continue
            except (BodyTooLarge, BadEncoding) as exc:
                if submit:
                    raise _uncertain(str(exc), probe) from None
                raise ApiError(f"unusable answer from {self._api_host}: {exc}") from None
            finally:
                ANSWER_PROBE.reset(token)
            self._failed_connects = 0
            delay = self._retry_delay(response, tries.attempt, submit, task_id)
            if delay is None:
                return response
            why = f"HTTP {response.status_code}: {error_message(response, self._clean)}"
            await self._pause(url, why, tries.failed(
                why, rate_limited=response.status_code == 429, delay=delay,
                cause=str(response.status_code)))

    async def _pause(self, url: str, why: str, delay: float) -> None:
        """Wait before a retry, first telling ``on_retry`` (the build's ``-v`` lines and
        its notice of long waits) what is retried and for how long."""
        if self.on_retry is not None:
            self.on_retry(f"{why}; retrying {self._clean(url)[:200]} in {delay:.1f} s", delay)
        await self._sleep(delay)

    def _count_connect_failure(self, exc: BaseException, why: str) -> None:
        """After UNREACHABLE_AFTER connection failures in a row, every further request
        fails at once with one message that names the host."""
        if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return
        self._failed_connects += 1
        if self._failed_connects >= UNREACHABLE_AFTER:
            self._unreachable = Unreachable(
                f"cannot reach {self.base_url} ({why}); nothing more was sent. Check the "
                "network and SEE2AI_BASE_URL, then run the build again")
            raise self._unreachable

    async def _exchange(self, http: httpx.AsyncClient, method: str, url: str,
                        **kwargs: Any) -> httpx.Response:
        """Send one request and read its answer whole, within the total deadline and
        the answer size cap."""
        async with asyncio.timeout(self.retry.request_deadline):
            request = http.build_request(method, url, headers=self._auth(), **kwargs)
            response = await http.send(request, stream=True)
            try:
                body = await read_capped(response)
            finally:
                await response.aclose()
        return with_body(response, body)

    def _retry_delay(
        self, response: httpx.Response, attempt: int, submit: bool,
        task_id: str | None,
    ) -> float | None:
        """None when ``response`` is final (raising if it is an error), else the delay."""
        code = response.status_code
        if code < 400:
            self._key_accepted = True
            return None
        message = error_message(response, self._clean)
        if code == 401 and self._key_accepted:
            # The platform answers an empty balance with 401 too; the key worked before.
            raise BalanceError(f"the account is out of points (HTTP 401 after the key was "
                               f"accepted; the API said: {message})", status=401)
        if code == 401:
            raise AuthError(message, status=401)
        if code == 402:
            raise BalanceError(message, status=402)
        if code == 404 and task_id is not None:
            raise TaskGone(f"task {task_id} is unknown to the API ({message})", status=404)
        if code == 429:
            waited = retry_after_seconds(response, self.retry.max_retry_after)
            return waited if waited is not None else self.retry.backoff(attempt)
        if submit and code in (502, 504):
            raise SubmitUncertain(
                f"the gateway answered {code} ({message}); the API may have created and "
                "charged a task. It was not resubmitted: run the build again to submit it anew",
                status=code)
        if code >= 500:
            return self.retry.backoff(attempt)
        if code in (404, 405):  # the endpoint itself is not there: a wrong base URL
            raise RequestRejected(f"{response.request.url} answered HTTP {code} ({message}); "
                                  "is SEE2AI_BASE_URL right?", status=code)
        raise RequestRejected(message, status=code)

    async def download(self, url: str, destination: Path) -> Download:
        """Stream ``url`` to a temporary file beside ``destination`` and verify it.

        Follows up to 5 redirects, each checked; refuses non-http(s) URLs and, on every
        hop, hosts other than the API's that are or resolve to internal addresses;
        enforces the size cap (decoded bytes), ``Content-Length`` (bytes received) and
        a total deadline per try; checks that the bytes are a PNG, JPEG or WebP image
        of a sane size. The caller renames ``Download.path`` into place.
        """
        shown = self._clean(url)[:300]
        tries = Tries(self.retry, give_up=lambda why: DownloadError(
            f"could not download {shown}: {why}"), counts=self.counts)
        while True:
            try:
                async with asyncio.timeout(self.retry.download_deadline):
                    return await self._download_once(url, destination)
            except (httpx.TransportError, RetryableDownload, TimeoutError) as exc:
                limited = isinstance(exc, RetryableDownload) and exc.rate_limited
                why = describe(exc)
                await self._pause(url, why, tries.failed(why, rate_limited=limited))

    async def _download_once(self, url: str, destination: Path) -> Download:
        for _ in range(6):
            await self._check_host(url)
            async with self._connection() as http:
                request = http.build_request("GET", url, headers={"Accept-Encoding": "identity"})
                response = await http.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await save_download(response, destination, self.max_download_bytes,
                                               self._clean(url)[:300])
                finally:
                    await response.aclose()
        raise DownloadError(f"too many redirects from {self._clean(url)[:300]}")

    async def _check_host(self, url: str) -> None:
        """Refuse a URL that is not http(s), or whose host is not the API's and is (or
        resolves to) an internal address. Our sockets check again where they connect
        and connect to the checked address; this check also covers a proxy's hops."""
        check_download_url(url, self._api_host)
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        if host != self._api_host and self._settings["transport"] is None:
            await public_address(host, parts.port or (443 if parts.scheme == "https" else 80))

def _uncertain(why: str, probe: AnswerProbe) -> SubmitUncertain:
    began = "its answer had begun" if probe.received else "no answer came"
    return SubmitUncertain(
        f"the submit failed after it was sent ({why}; {began}); the API may have created "
        "and charged a task that assetbuild cannot see. It was not resubmitted: run the "
        "build again to submit it anew")
