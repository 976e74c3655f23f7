"""A hostile server: answers that reach inside, exhaust memory or time, multiply a bill,
or carry the key and terminal escapes back to the user. Each test drives the real
client over loopback against tests/security/hostile.py."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from assetbuild.errors import ApiError, AuthError, DownloadError, SubmitUncertain
from assetbuild.providers.retries import RetryPolicy
from assetbuild.providers.see2ai import See2AIClient
from tests.security.hostile import (
    Request,
    hostile_server,
    json_response,
    png_bytes,
    response,
)

T = TypeVar("T")
KEY = "sk-live-0123456789abcdef"
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, request_deadline=5.0)
SUBMIT = "/api/v1/actions/see2ai_image_generation_v1/async"
BODY = {"prompt": "p", "input_urls": [], "aspect_ratio": "1:1", "resolution": "1K"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def client(base_url: str, **kwargs: Any) -> See2AIClient:
    return See2AIClient(api_key=KEY, base_url=base_url, retry=kwargs.pop("retry", FAST),
                        **kwargs)


async def download(base_url: str, url: str, folder: Path) -> str:
    async with client(base_url) as api:
        got = await api.download(url, folder / "out.png")
        got.path.unlink()
        return got.kind


# -- reaching inside: result URLs and redirects to internal addresses -----------------

INTERNAL_HOSTS = ["2130706433", "0x7f000001", "127.1", "0", "[::127.0.0.1]",
                  "[::ffff:127.0.0.1]", "localhost", "localhost.", "10.0.0.1",
                  "169.254.169.254", "[fe80::1]"]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_result_urls_to_internal_addresses_are_refused(tmp_path: Path, host: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, png_bytes(), {"Content-Type": "image/png"}))

    with hostile_server(handler) as server:
        url = f"http://{host}:{server.port}/secret.png"
        with pytest.raises(DownloadError, match=r"refusing|cannot resolve"):
            run(download(server.base_url, url, tmp_path))
        assert server.paths("/secret") == [], "the internal server was reached"
        assert run(download(server.base_url, f"{server.base_url}/own.png", tmp_path)) == "png"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host", ["2130706433", "127.1", "localhost"])
def test_a_redirect_to_an_internal_address_is_refused(tmp_path: Path, host: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path == "/hop.png":
            writer.write(response(302, headers={
                "Location": f"http://{host}:{request.headers['host'].split(':')[1]}/secret"}))
        else:
            writer.write(response(200, png_bytes()))

    with hostile_server(handler) as server:
        with pytest.raises(DownloadError, match="refusing"):
            run(download(server.base_url, f"{server.base_url}/hop.png", tmp_path))
        assert server.paths("/secret") == []


def test_a_name_is_connected_to_at_the_address_that_was_checked() -> None:
    """The guarded backend resolves once and connects to the checked address: a second
    lookup (DNS rebinding) is never made."""
    import ipaddress

    from assetbuild.providers.addresses import is_public, public_address

    assert not is_public(ipaddress.ip_address("::127.0.0.1"))
    assert not is_public(ipaddress.ip_address("2002:7f00:1::"))  # 6to4 of 127.0.0.1
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    with pytest.raises(DownloadError):
        run(public_address("localhost", 80))
    assert run(public_address("1.1.1.1", 443)) == "1.1.1.1"


# -- memory: endless, compressed and stacked bodies --------------------------------


async def _endless(writer: asyncio.StreamWriter, head: bytes, chunk: bytes) -> None:
    writer.write(head)
    for _ in range(100_000):  # bounded, but ~6 GB if the client kept reading
        writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        await writer.drain()


def test_an_endless_status_body_is_cut_off() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await _endless(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                               b"Content-Type: application/json\r\n\r\n", b"[" * 65536)

    with hostile_server(handler) as server:
        async def poll() -> None:
            async with client(server.base_url) as api:
                await api.status("t-1")

        with pytest.raises(ApiError, match="larger than"):
            run(poll())


def test_a_compressed_status_bomb_is_cut_off() -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # 64 MB of spaces in ~64 KB

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, bomb, {"Content-Encoding": "gzip",
                                          "Content-Type": "application/json"}))

    with hostile_server(handler) as server:
        async def poll() -> None:
            async with client(server.base_url) as api:
                await api.status("t-1")

        with pytest.raises(ApiError, match="larger than"):
            run(poll())


def test_a_download_with_stacked_encodings_is_refused(tmp_path: Path) -> None:
    layered = gzip.compress(gzip.compress(b"\0" * (16 * 1024 * 1024)))

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, layered, {"Content-Encoding": "gzip, gzip"}))

    with hostile_server(handler) as server, pytest.raises(DownloadError, match="stacked"):
        run(download(server.base_url, f"{server.base_url}/x.png", tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_encoded_png_is_a_png_not_truncated(tmp_path: Path) -> None:
    data = png_bytes(64)

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, gzip.compress(data), {"Content-Encoding": "gzip"}))

    with hostile_server(handler) as server:
        assert run(download(server.base_url, f"{server.base_url}/x.png", tmp_path)) == "png"
        assert server.requests[0].headers.get("accept-encoding") == "identity"
        assert len(server.requests) == 1, "downloaded once, not retried as truncated"


def test_a_download_over_the_cap_is_refused_while_streaming(tmp_path: Path) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await _endless(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                       b"\x89PNG" * 16384)

    with hostile_server(handler) as server, pytest.raises(DownloadError, match="cap"):
        async def go() -> None:
            async with client(server.base_url, max_download_bytes=1 << 20) as api:
                await api.download(f"{server.base_url}/x.png", tmp_path / "x.png")

        run(go())
    assert list(tmp_path.iterdir()) == []


# -- money: a submit whose answer began is never resent ------------------------------

BEGUN = {
    "truncated body": response(200, b'{"task_id": "t-1", "sta',
                               {"Content-Length": "60"})[:-0 or None],
    "oversized header block": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    "20,000 headers": b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 20_000 + b"\r\n",
    "garbage": b"SURPRISE\r\n\r\n",
}


@pytest.mark.parametrize("answer", list(BEGUN))
def test_a_submit_whose_answer_began_is_not_resent(answer: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(BEGUN[answer])
        await writer.drain()
        writer.close()

    with hostile_server(handler) as server:
        api = client(server.base_url)

        async def go() -> None:
            async with api:
                await api.submit(BODY)

        with pytest.raises(SubmitUncertain, match="may have created"):
            run(go())
        assert server.paths(SUBMIT) == [SUBMIT], "sent once, never resent"
        assert api.counts.resent_submits == 0


def test_a_reset_after_the_request_was_read_is_resent_at_most_twice() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        sock = transport.get_extra_info("socket")
        import socket
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()  # an RST, not a polite close

    with hostile_server(handler) as server:
        api = client(server.base_url)

        async def go() -> None:
            async with api:
                await api.submit(BODY)

        with pytest.raises(SubmitUncertain, match="no answer came"):
            run(go())
        assert len(server.paths(SUBMIT)) == 3, "sent once and resent twice, no more"
        assert api.counts.resent_submits == 2


# -- time: every request has a total deadline -----------------------------------------


def test_a_trickling_status_answer_meets_the_deadline() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    with hostile_server(handler) as server:
        policy = RetryPolicy(attempts=2, base_delay=0.001, request_deadline=0.5)

        async def poll() -> None:
            async with client(server.base_url, retry=policy) as api:
                await api.status("t-1")

        started = time.monotonic()
        with pytest.raises(ApiError, match="deadline"):
            run(poll())
        assert time.monotonic() - started < 5
        assert len(server.requests) == 2


# -- what the server says: the key, terminal escapes, ids, numbers -------------------


def test_a_key_echoed_by_the_server_is_redacted() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(json_response(401, {"message": f"bad key {KEY} \x1b[2J\x1b]0;pwn\x07"}))

    with hostile_server(handler) as server:
        async def go() -> None:
            async with client(server.base_url) as api:
                await api.submit(BODY)

        with pytest.raises(AuthError) as caught:
            run(go())
    text = str(caught.value)
    assert KEY not in text and "[redacted]" in text
    assert "\x1b" not in text and "\x07" not in text


@pytest.mark.parametrize("task_id", ["abc\r\nX-Injected: 1", "a\x00b", "x" * 200_000,
                                     "../../etc", ""])
def test_a_poisoned_task_id_is_refused_on_receipt(task_id: str) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(json_response(200, {"task_id": task_id, "status": "queued"}))

    with hostile_server(handler) as server:
        async def go() -> None:
            async with client(server.base_url) as api:
                await api.submit(BODY)

        with pytest.raises(SubmitUncertain, match="task"):
            run(go())
        assert len(server.paths(SUBMIT)) == 1


def test_absurd_numbers_and_retry_after_are_read_safely() -> None:
    import httpx

    from assetbuild.providers.answers import parse_status, retry_after_seconds

    status = parse_status({"task_id": "t", "status": "SUCCESS", "input_tokens": 1e400,
                           "cost_points": float("nan"), "result_urls": ["u"] * 500})
    assert status.input_tokens == 0 and status.cost_points is None
    assert len(status.result_urls) == 16 and any("ignored" in w for w in status.warnings)
    for value in ("nan", "inf", "-inf"):
        answer = httpx.Response(429, headers={"Retry-After": value})
        assert retry_after_seconds(answer, 120.0) is None
