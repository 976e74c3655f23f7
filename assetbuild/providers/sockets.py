"""httpx's connection pool: where it may connect, which socket it holds, and whether
an answer has begun.

Three jobs of one network backend, which every connection of the client's own
transport goes through:

* connections to any host but the API's go only to checked global addresses
  (:mod:`assetbuild.providers.addresses`);
* each stream counts the bytes it receives into the :class:`AnswerProbe` of the task
  reading it, so the client knows for certain whether a failed submit's answer had
  begun (a submit is resent only if not a single byte of its answer arrived);
* each stream keeps its socket at hand, as below.

Before it places each request, httpcore asks every idle pooled connection whether the
server has closed it ("is the socket readable?"). Over anyio each of those questions
rebuilds a table of socket attributes, ``getpeername()`` included, to find the socket:
with 64 tasks in flight that was about 13% of a build's CPU (2,000 images at zero
latency: 19.5 -> 17.0 s of CPU, median of 3). The streams below keep the socket from
the start and answer the same question with one ``poll``; everything else goes to
the streams httpx would have used.
"""

from __future__ import annotations

import contextvars
import select
import socket
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from assetbuild.providers.addresses import normalise_host, public_address


@dataclass
class AnswerProbe:
    """What one request's connection saw: set by our streams (or by a transport that
    knows, such as the in-process emulator's)."""

    observed: bool = False
    """Whether a stream of ours carried the request (else nothing below is known)."""
    received: int = 0
    """Bytes of the answer received."""


ANSWER_PROBE: contextvars.ContextVar[AnswerProbe | None] = contextvars.ContextVar(
    "assetbuild_answer_probe", default=None)
"""The probe of the request the current task is making (httpcore reads an HTTP/1.1
answer in the task that sent the request)."""


def keep_sockets_at_hand(transport: httpx.AsyncBaseTransport,
                         api_host: str | None = None) -> bool:
    """Give the pool of an ``httpx.AsyncHTTPTransport`` our streams (with ``api_host``:
    connections elsewhere go to checked global addresses only); return False, changing
    nothing, for any other transport (proxies, test doubles) or an httpx whose pool is
    no longer where it was."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or backend is None:
        return False
    if not isinstance(backend, SocketKeepingBackend):
        pool._network_backend = SocketKeepingBackend(backend, api_host)
    return True


def socket_is_readable(sock: socket.socket | None) -> bool:
    """Whether ``sock`` has data or an end of stream waiting (on an idle HTTP/1.1
    connection: the server closed it). A missing or closed socket counts as readable."""
    if sock is None or sock.fileno() < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class SocketKeepingStream(httpcore.AsyncNetworkStream):
    """A network stream that looks up its socket once."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to ``max_bytes`` (counted into the current request's probe)."""
        data = await self._stream.read(max_bytes, timeout)
        probe = ANSWER_PROBE.get()
        if probe is not None:
            probe.received += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write all of ``buffer``."""
        probe = ANSWER_PROBE.get()
        if probe is not None:
            probe.observed = True
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS; the new stream keeps the (same) socket too."""
        return SocketKeepingStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """``socket`` and ``is_readable`` from the kept socket; the rest as before."""
        if info == "is_readable":
            return socket_is_readable(self._socket)
        if info == "socket":
            return self._socket
        return self._stream.get_extra_info(info)


class SocketKeepingBackend(httpcore.AsyncNetworkBackend):
    """The pool's own network backend, its streams wrapped in SocketKeepingStream; with
    an ``api_host``, other hosts are connected to only at checked global addresses."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend,
                 api_host: str | None = None) -> None:
        self._backend = backend
        self._api_host = None if api_host is None else normalise_host(api_host)

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect as the wrapped backend would (to the checked address, if guarded).
        TLS still names and verifies the host: httpcore passes the origin's name."""
        if self._api_host is not None and normalise_host(host) != self._api_host:
            host = await public_address(host, port)
        return SocketKeepingStream(await self._backend.connect_tcp(
            host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect as the wrapped backend would."""
        return SocketKeepingStream(await self._backend.connect_unix_socket(
            path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend would."""
        await self._backend.sleep(seconds)
