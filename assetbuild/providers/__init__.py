"""Providers: where images are generated. The SEE2AI API, or the same client talking
to the in-process emulator (placeholders, no key, no network).

A :class:`Provider` is made once per command from the provider's name and the
environment; nothing else reads ``SEE2AI_*`` variables or compares provider names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from assetbuild._types import DEFAULT_BASE_URL, PROVIDERS
from assetbuild.errors import UsageError

if TYPE_CHECKING:
    from assetbuild.emulator import Emulator
    from assetbuild.providers.see2ai import See2AIClient

EMULATOR = "emulator"
"""The name results made by the emulator are locked under, wherever it was reached."""
EMULATOR_KEY = "emulator-key"


def provider_name(name: str) -> str:
    """``name`` if it is a provider, else a UsageError listing them."""
    if name not in PROVIDERS:
        raise UsageError(f"unknown provider {name!r}; use one of {', '.join(PROVIDERS)}")
    return name


@dataclass(frozen=True)
class Provider:
    """One provider as this command reaches it: its API and the account's key."""

    name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    """The key, or "" when none is set (enough for a pull); never shown."""
    emulated: bool = False
    """The in-process emulator: placeholders, polled often, no key needed."""

    @classmethod
    def choose(cls, name: str, environ: Mapping[str, str] | None = None) -> Provider:
        """The provider ``name`` with its base URL and key from ``environ`` (default:
        the process environment)."""
        if provider_name(name) == EMULATOR:
            from assetbuild.emulator import IN_PROCESS_BASE_URL

            return cls(name, IN_PROCESS_BASE_URL, EMULATOR_KEY, emulated=True)
        env = os.environ if environ is None else environ
        return cls(name, _base_url(env), env.get("SEE2AI_API_KEY", "").strip())

    @property
    def first_poll(self) -> float:
        """Seconds between polls until a task has finished (the emulator costs nothing)."""
        return 0.05 if self.emulated else 0.5

    @property
    def scope(self) -> str:
        """What uploads and journal entries are scoped to: this API and this key."""
        from assetbuild.journal import api_scope

        return api_scope(self.base_url, self.api_key)

    def with_key(self) -> Provider:
        """This provider, or a UsageError when it needs a key and none is set."""
        if not self.api_key:
            raise UsageError(
                "SEE2AI_API_KEY is not set. Export your tenant key to build with the see2ai "
                "provider, or use --provider emulator for placeholder images without a key.")
        return self

    def locks_as(self, emulated_answer: bool) -> str:
        """The provider name to lock a result under: the emulator's when its answer
        carried the emulator's mark (placeholders never pass for real images)."""
        return EMULATOR if emulated_answer else self.name

    def open_client(self, *, emulator: Emulator | None = None,
                    max_connections: int = 100) -> See2AIClient:
        """A client for this provider (for the emulator: ``emulator``, or a new one)."""
        from assetbuild.providers.see2ai import See2AIClient

        if not self.emulated:
            return See2AIClient(api_key=self.api_key, base_url=self.base_url,
                                max_connections=max_connections)
        from assetbuild.emulator import Emulator, EmulatorTransport

        transport = EmulatorTransport(emulator or Emulator())
        return See2AIClient(api_key=self.api_key, base_url=self.base_url, transport=transport,
                            max_connections=max_connections)


def _base_url(env: Mapping[str, str]) -> str:
    url = (env.get("SEE2AI_BASE_URL") or DEFAULT_BASE_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"SEE2AI_BASE_URL={url[:200]!r} is not an http(s) URL with a host; write it "
            "with its scheme, for example https://see2ai.com or http://127.0.0.1:8000. "
            "Nothing was sent.")
    return url
