"""The SEE2AI client against the emulator, in process and over loopback, under faults."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from assetbuild.emulator import Emulator, EmulatorConfig, EmulatorTransport
from assetbuild.emulator.server import BackgroundEmulator
from assetbuild.errors import (
    AuthError,
    BalanceError,
    DownloadError,
    RequestRejected,
    SubmitUncertain,
    TaskGone,
    TransientError,
)
from assetbuild.providers.answers import TaskStatus
from assetbuild.providers.retries import RetryPolicy
from assetbuild.providers.see2ai import See2AIClient
from assetbuild.uploads import prepare_upload

T = TypeVar("T")
# Enough attempts that a 50% fault rate fails a call with odds of 1 in 4096.
FAST = RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.01, max_retry_after=0.05)
CANARY = "sk-canary-7f3a9c1e5b"


@dataclass
class Endpoint:
    emulator: Emulator
    base_url: str
    in_process: bool

    def client(self, **kwargs: Any) -> See2AIClient:
        kwargs.setdefault("retry", FAST)
        transport = EmulatorTransport(self.emulator) if self.in_process else None
        return See2AIClient(api_key=CANARY, base_url=self.base_url, transport=transport,
                            **kwargs)


@pytest.fixture(params=["in-process", "loopback"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    emulator = Emulator(EmulatorConfig(seed=7))
    if request.param == "in-process":
        yield Endpoint(emulator, "http://see2ai.test", True)
    else:
        with BackgroundEmulator(emulator) as served:
            yield Endpoint(emulator, served.base_url, False)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def generate(client: See2AIClient, prompt: str, folder: Path) -> tuple[TaskStatus, Path]:
    """Submit, poll to the end, download the first result: the whole client path."""
    task = await client.submit({"prompt": prompt, "aspect_ratio": "1:1", "resolution": "1K"})
    status = await client.status(task.task_id)
    while status.state == "pending":
        await asyncio.sleep(0.01)
        status = await client.status(task.task_id)
    if status.state == "failed":
        return status, folder
    target = folder / f"{task.task_id}.png"
    download = await client.download(status.result_urls[0], target)
    download.path.replace(target)
    return status, target


async def generate_many(endpoint: Endpoint, count: int, folder: Path,
                        **kwargs: Any) -> list[TaskStatus | BaseException]:
    async with endpoint.client(**kwargs) as client:
        results = await asyncio.gather(
            *(generate(client, f"image number {i}", folder) for i in range(count)),
            return_exceptions=True)
    return [r if isinstance(r, BaseException) else r[0] for r in results]


def test_the_whole_path(endpoint: Endpoint, tmp_path: Path) -> None:
    async def go() -> tuple[TaskStatus, Path]:
        async with endpoint.client() as client:
            return await generate(client, "A calm hero banner", tmp_path)

    status, path = run(go())
    assert status.state == "succeeded" and status.cost_points == 10
    with Image.open(path) as image:
        assert image.size == (1024, 1024)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert endpoint.emulator.stats.submits == 1


@pytest.mark.parametrize("fault", [
    {"rate_429": 0.4, "retry_after": 0.01},
    {"rate_500": 0.3},
    {"rate_504": 0.5},
    {"truncate_rate": 0.5},
    {"slow_status": 0.05},
    {"rate_429": 0.1, "rate_500": 0.1, "drop_rate": 0.03, "rate_504": 0.1,
     "truncate_rate": 0.3, "retry_after": 0.01},
], ids=["429", "500", "504", "truncated", "slow-status", "all-at-once"])
def test_transient_faults_are_survived_without_duplicate_submits(
    endpoint: Endpoint, tmp_path: Path, fault: dict[str, float]
) -> None:
    endpoint.emulator.configure(**fault)
    results = run(generate_many(endpoint, 12, tmp_path))
    assert all(isinstance(r, TaskStatus) and r.state == "succeeded" for r in results), [
        r for r in results if not isinstance(r, TaskStatus)]
    stats = endpoint.emulator.stats
    assert stats.submits == 12, "every image submitted exactly once"
    assert set(stats.submits_by_prompt.values()) == {1}
    assert sum(stats.faults.values()) > 0, "the fault was really injected"
    for path in tmp_path.iterdir():
        with Image.open(path) as image:
            image.verify()


def test_dropped_submits_are_resent_at_most_twice(endpoint: Endpoint, tmp_path: Path) -> None:
    """A connection dropped before any byte of the answer is resent, but only twice: a
    server that read the request and then dropped may have created the task."""
    endpoint.emulator.configure(drop_rate=1.0)
    results = run(generate_many(endpoint, 4, tmp_path))
    assert all(isinstance(r, SubmitUncertain) and "no answer came" in str(r)
               for r in results), results
    stats = endpoint.emulator.stats
    assert stats.faults["drop"] == 4 * 3, "each submit sent once and resent twice"
    assert stats.submits == 0


def test_failed_tasks_are_reported(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.emulator.configure(failure_rate=1.0)
    results = run(generate_many(endpoint, 3, tmp_path))
    assert all(isinstance(r, TaskStatus) and r.state == "failed" and r.error for r in results)
    assert list(tmp_path.iterdir()) == []


def test_read_timeout_on_submit_is_not_retried(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.emulator.configure(hang_rate=1.0, hang_seconds=2.0)
    results = run(generate_many(endpoint, 1, tmp_path, timeout=httpx.Timeout(5, read=0.3)))
    assert isinstance(results[0], SubmitUncertain)
    assert "may have created and charged a task" in str(results[0])
    assert endpoint.emulator.stats.submits == 1, "the ambiguous submit was not sent again"


def test_slow_status_beyond_the_timeout_gives_up(endpoint: Endpoint, tmp_path: Path) -> None:
    async def go() -> None:
        async with endpoint.client(timeout=httpx.Timeout(5, read=0.1),
                                   retry=RetryPolicy(3, 0.001, 0.01)) as client:
            task = await client.submit({"prompt": "slow"})
            endpoint.emulator.configure(slow_status=0.5)
            await client.status(task.task_id)

    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        run(go())
    assert endpoint.emulator.stats.submits == 1


def test_retries_run_out_on_a_persistent_500(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.emulator.configure(rate_500=1.0)
    results = run(generate_many(endpoint, 1, tmp_path, retry=RetryPolicy(3, 0.001, 0.01)))
    assert isinstance(results[0], TransientError) and "HTTP 500" in str(results[0])
    assert endpoint.emulator.stats.faults["500"] == 3


@pytest.mark.parametrize(("config", "body", "error", "text"), [
    ({"api_key": "sk-other"}, {"prompt": "x"}, AuthError, "invalid API key"),
    ({"balance": 5}, {"prompt": "x"}, BalanceError, "Insufficient balance"),
    ({}, {"prompt": "x", "resolution": "8K"}, RequestRejected, "resolution must be one of"),
])
def test_final_errors_are_not_retried(
    endpoint: Endpoint, config: dict[str, Any], body: dict[str, Any],
    error: type[Exception], text: str,
) -> None:
    endpoint.emulator.configure(**config)

    async def go() -> None:
        async with endpoint.client() as client:
            await client.submit(body)

    with pytest.raises(error, match=text) as info:
        run(go())
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)
    assert endpoint.emulator.stats.submits == 0


def test_unknown_task_is_gone(endpoint: Endpoint) -> None:
    async def go() -> None:
        async with endpoint.client() as client:
            await client.status("emu-does-not-exist")

    with pytest.raises(TaskGone, match="emu-does-not-exist"):
        run(go())


def test_upload_returns_a_hosted_url(endpoint: Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "ref.png"
    source.write_bytes(b"reference bytes")

    async def go() -> str:
        async with endpoint.client() as client:
            return await client.upload(prepare_upload(source))

    url = run(go())
    assert url.startswith(endpoint.base_url) and endpoint.emulator.stats.uploads == 1


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("payload", "text"), [
    (b"<html>not an image</html>", "not a PNG, JPEG or WebP"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "cannot be read"),
    (bomb_png(), "pixels"),
])
def test_downloads_that_are_not_sane_images_write_nothing(
    endpoint: Endpoint, tmp_path: Path, payload: bytes, text: str
) -> None:
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    out = tmp_path / "out"
    out.mkdir()

    async def go() -> None:
        async with endpoint.client() as client:
            url = await client.upload(prepare_upload(source))
            await client.download(url, out / "result.png")

    with pytest.raises(DownloadError, match=text):
        run(go())
    assert list(out.iterdir()) == []


def test_download_size_cap(endpoint: Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 10_000)

    async def go() -> None:
        async with endpoint.client(max_download_bytes=1000) as client:
            await client.download(await client.upload(prepare_upload(source)), tmp_path / "r.png")

    with pytest.raises(DownloadError, match="larger than the 1000 byte cap"):
        run(go())


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://example.com/a.png", "http://169.254.169.254/latest",
    "http://localhost:9/x.png", "http://10.0.0.1/x.png", "gopher://x",
])
def test_downloads_refuse_local_and_internal_urls(tmp_path: Path, url: str) -> None:
    async def go() -> None:
        transport = EmulatorTransport(Emulator())
        async with See2AIClient(api_key=CANARY, base_url="https://see2ai.com",
                                transport=transport, retry=FAST) as client:
            await client.download(url, tmp_path / "x.png")

    with pytest.raises(DownloadError, match="refusing"):
        run(go())


def test_redirects_are_followed_and_checked(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(302, headers={"location": "/final.png"})
        if request.url.path == "/evil":
            return httpx.Response(302, headers={"location": "file:///etc/passwd"})
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="PNG")
        return httpx.Response(200, content=buffer.getvalue())

    async def go(path: str) -> str:
        async with See2AIClient(api_key=CANARY, base_url="https://cdn.example",
                                transport=httpx.MockTransport(handler), retry=FAST) as client:
            return (await client.download(f"https://cdn.example{path}", tmp_path / "x.png")).kind

    assert run(go("/start")) == "png"
    with pytest.raises(DownloadError, match="only http"):
        run(go("/evil"))


def test_the_key_goes_only_to_the_api_host(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.path.endswith("/async"):
            return httpx.Response(200, json={"task_id": "t1", "status": "queued"})
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="PNG")
        return httpx.Response(200, content=buffer.getvalue())

    async def go() -> None:
        async with See2AIClient(api_key=CANARY, base_url="https://api.example",
                                transport=httpx.MockTransport(handler), retry=FAST) as client:
            assert CANARY not in repr(client)
            await client.submit({"prompt": "x"})
            await client.download("https://cdn.example/r.png", tmp_path / "r.png")

    run(go())
    assert seen == [("api.example", f"Bearer {CANARY}"), ("cdn.example", None)]


def test_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    delays = [policy.backoff(10) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 100


Coroutine = Callable[[], Awaitable[None]]


def test_rate_limits_have_their_own_larger_allowance(endpoint: Endpoint, tmp_path: Path) -> None:
    """429 means try later: ten in a row do not use up the six tries kept for failures."""
    endpoint.emulator.configure(rate_429=1.0, retry_after=0.02)

    async def go() -> TaskStatus:
        async with endpoint.client(retry=RetryPolicy(6, 0.001, 0.01, 0.05,
                                                     rate_limited_attempts=20)) as client:
            submitting = asyncio.ensure_future(client.submit({"prompt": "patience"}))
            while endpoint.emulator.stats.faults["429"] < 10:
                await asyncio.sleep(0.005)
            endpoint.emulator.configure(rate_429=0.0)
            return await submitting

    assert run(go()).task_id
    assert endpoint.emulator.stats.faults["429"] >= 10 and endpoint.emulator.stats.submits == 1


def test_at_most_max_connections_requests_reach_the_transport_at_once(tmp_path: Path) -> None:
    """Requests beyond the pool's size wait in the client, not inside httpx's pool (whose
    bookkeeping grows with every request queued in it); downloads hold their slot until
    the body is read."""
    inside = most = 0

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1
            if request.url.path.endswith(".png"):
                buffer = io.BytesIO()
                Image.new("RGB", (8, 8)).save(buffer, format="PNG")
                return httpx.Response(200, content=buffer.getvalue())
            return httpx.Response(200, json={"task_id": "t1", "state": "completed",
                                             "result_urls": ["https://api.example/r.png"]})

    async def go() -> None:
        async with See2AIClient(api_key=CANARY, base_url="https://api.example",
                                transport=Counting(), retry=FAST, max_connections=3) as client:
            await asyncio.gather(*(client.status(f"t{n}") for n in range(12)),
                                 *(client.download("https://api.example/r.png",
                                                   tmp_path / f"{n}.png") for n in range(12)))

    run(go())
    assert most == 3
