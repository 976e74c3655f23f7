"""A hostile HTTP server on loopback: answers scripted byte for byte, logs every request.

It speaks just enough HTTP/1.1 to read a request (headers, Content-Length body) and
hands it to a handler that writes whatever bytes it likes: truncated bodies, endless
bodies, header floods, resets. It runs on its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class HostileServer:
    """The server's address and what it saw."""

    port: int
    requests: list[Request] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, prefix: str = "") -> list[str]:
        """Paths requested so far (starting with ``prefix``)."""
        return [r.path for r in self.requests if r.path.startswith(prefix)]


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length (unless headers give one)."""
    lines = [f"HTTP/1.1 {status} X"]
    given = {k.lower() for k in (headers or {})}
    if "content-length" not in given and "transfer-encoding" not in given:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_response(status: int, value: Any) -> bytes:
    """A JSON answer."""
    return response(status, json.dumps(value).encode(),
                    {"Content-Type": "application/json"})


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


@contextlib.contextmanager
def hostile_server(handler: Handler) -> Iterator[HostileServer]:
    """Serve ``handler`` on a free loopback port until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _read_request(reader)) is not None:
                box["server"].requests.append(request)
                await handler(request, writer)
                if writer.is_closing():
                    return
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def start() -> None:
        server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
        box["asyncio"] = server
        box["server"] = HostileServer(server.sockets[0].getsockname()[1])
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield box["server"]
    finally:
        async def stop() -> None:
            box["asyncio"].close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def png_bytes(size: int = 8) -> bytes:
    """A small valid PNG."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()
