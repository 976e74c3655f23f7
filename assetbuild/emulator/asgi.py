"""ASGI type aliases, and the scope extension through which the app can cut its connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ABORT_EXTENSION = "assetbuild.abort"
"""Scope extension: a callable that aborts the connection (set by the HTTP server)."""
