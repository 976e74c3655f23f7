"""The SEE2AI emulator: in process through :class:`EmulatorTransport`, or served over HTTP.

>>> emulator = Emulator(EmulatorConfig(latency_min=0.5, latency_max=1.0))  # doctest: +SKIP
>>> transport = EmulatorTransport(emulator)   # give it to the see2ai client  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio

import httpx

from assetbuild.emulator.app import ConnectionDropped, Emulator
from assetbuild.emulator.config import EmulatorConfig, EmulatorStats
from assetbuild.emulator.contract import validate_input
from assetbuild.providers.sockets import ANSWER_PROBE

IN_PROCESS_BASE_URL = "http://see2ai-emulator.invalid"
"""The base URL the in-process emulator answers to (``.invalid`` never resolves)."""

__all__ = [
    "IN_PROCESS_BASE_URL",
    "ConnectionDropped",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "EmulatorTransport",
    "validate_input",
]


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Runs the emulator in process, behaving towards the client as a socket would.

    A dropped connection reaches the client as ``httpx.RemoteProtocolError`` and an
    answer slower than the request's read timeout as ``httpx.ReadTimeout``.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._inner = httpx.ASGITransport(app=emulator.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the emulator app."""
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self._inner.handle_async_request(request), timeout)
        except ConnectionDropped:
            probe = ANSWER_PROBE.get()
            if probe is not None:  # a socket would have carried the request, and no answer
                probe.observed = True
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request) from None
        except TimeoutError:
            raise httpx.ReadTimeout("The emulator did not answer in time.",
                                    request=request) from None
