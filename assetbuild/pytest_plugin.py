"""A pytest plugin for users' own tests: a SEE2AI emulator on a loopback port.

Installed with assetbuild (entry point ``pytest11``); use the fixture in any test::

    def test_my_asset_pipeline(see2ai_emulator, monkeypatch, tmp_path):
        monkeypatch.setenv("SEE2AI_BASE_URL", see2ai_emulator.base_url)
        monkeypatch.setenv("SEE2AI_API_KEY", see2ai_emulator.api_key)
        monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(tmp_path / "cache"))  # no reuse
        ...  # run your pipeline; no network, no real key
        assert see2ai_emulator.stats().submits == 3

Nothing heavy is imported until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from assetbuild.emulator import Emulator, EmulatorStats


@dataclass(frozen=True)
class ServedEmulator:
    """A running emulator: where it is, the key it accepts, and its controls."""

    base_url: str
    api_key: str
    emulator: Emulator

    def stats(self) -> EmulatorStats:
        """What the emulator has received so far (submits, polls, downloads, faults)."""
        return self.emulator.stats

    def configure(self, **settings: Any) -> None:
        """Change latency or faults (see ``assetbuild emulator --help``)."""
        self.emulator.configure(**settings)


@pytest.fixture
def see2ai_emulator() -> Iterator[ServedEmulator]:
    """A fresh SEE2AI emulator served on 127.0.0.1 for the length of one test."""
    from assetbuild.emulator import Emulator, EmulatorConfig
    from assetbuild.emulator.server import BackgroundEmulator

    key = "sk-emulator-test-key"
    emulator = Emulator(EmulatorConfig(api_key=key))
    with BackgroundEmulator(emulator) as served:
        yield ServedEmulator(served.base_url, key, emulator)
