"""Providers: the SEE2AI API, or the same client talking to the in-process emulator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from assetbuild._types import DEFAULT_BASE_URL
from assetbuild.errors import UsageError

if TYPE_CHECKING:
    from assetbuild.emulator import Emulator
    from assetbuild.providers.see2ai import See2AIClient

EMULATOR_KEY = "emulator-key"


def base_url_for(provider: str, environ: Mapping[str, str] | None = None) -> str:
    """The API base URL a provider talks to."""
    if provider == "emulator":
        from assetbuild.emulator import IN_PROCESS_BASE_URL

        return IN_PROCESS_BASE_URL
    env = os.environ if environ is None else environ
    url = (env.get("SEE2AI_BASE_URL") or DEFAULT_BASE_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"SEE2AI_BASE_URL={url[:200]!r} is not an http(s) URL with a host; write it "
            "with its scheme, for example https://see2ai.com or http://127.0.0.1:8000. "
            "Nothing was sent.")
    return url


def api_key_for(provider: str, environ: Mapping[str, str] | None = None) -> str:
    """The API key for a provider; the emulator needs none."""
    if provider == "emulator":
        return EMULATOR_KEY
    env = os.environ if environ is None else environ
    key = env.get("SEE2AI_API_KEY", "").strip()
    if not key:
        raise UsageError(
            "SEE2AI_API_KEY is not set. Export your tenant key to build with the see2ai "
            "provider, or use --provider emulator for placeholder images without a key.")
    return key


def open_client(
    provider: str,
    *,
    environ: Mapping[str, str] | None = None,
    emulator: Emulator | None = None,
    max_connections: int = 100,
    api_key: str | None = None,
) -> See2AIClient:
    """A client for ``provider``: the real API, or an in-process emulator (given or new).

    ``api_key`` overrides the environment (an empty key suits download-only use).
    """
    from assetbuild.providers.see2ai import See2AIClient

    key = api_key_for(provider, environ) if api_key is None else api_key
    base_url = base_url_for(provider, environ)
    if provider != "emulator":
        return See2AIClient(api_key=key, base_url=base_url, max_connections=max_connections)
    from assetbuild.emulator import Emulator, EmulatorTransport

    transport = EmulatorTransport(emulator or Emulator())
    return See2AIClient(api_key=key, base_url=base_url, transport=transport,
                        max_connections=max_connections)
