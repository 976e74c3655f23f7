"""Serve the emulator over HTTP with uvicorn, where dropped connections are real."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from assetbuild.emulator.app import Emulator
from assetbuild.emulator.asgi import ABORT_EXTENSION


class _AbortableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, giving the app a way to cut its own connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = self._abort_connection
            await inner(scope, receive, send)

        self.app = app

    def _abort_connection(self) -> None:
        self.transport.abort()


def make_server(emulator: Emulator, host: str = "127.0.0.1", port: int = 8000,
                log_level: str = "warning", access_log: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``emulator`` (call ``.run()`` to serve in the foreground)."""
    config = uvicorn.Config(
        emulator.app, host=host, port=port, http=_AbortableH11Protocol, lifespan="off",
        interface="asgi3", proxy_headers=False,
        log_level=log_level, access_log=access_log, timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


class BackgroundEmulator:
    """The emulator served on a free loopback port in a thread, for tests and benchmarks.

    >>> with BackgroundEmulator(Emulator()) as served:        # doctest: +SKIP
    ...     print(served.base_url)
    """

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.server = make_server(emulator, host, port)
        self._thread = threading.Thread(target=self._run, name="see2ai-emulator", daemon=True)
        self.base_url = ""

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> BackgroundEmulator:
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server did not start")
            self._thread.join(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.should_exit = True
        self._thread.join(10)
