"""A disk that fills up mid-build (every file capped by RLIMIT_FSIZE, as a full disk
refuses writes): no traceback, no new submits once the journal cannot be written,
and every task paid for ends in the lockfile, the journal or the printed list."""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator
from tests.conftest import ProjectDir
from tests.test_cli_build import grid, loopback_env

FILE_SIZE_LIMIT = 250_000
"""Small enough that the journal's database stops growing after about ten images."""


def _full_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _printed_task_ids(err: str) -> int:
    """How many task ids the build printed as its last record of them."""
    _, header, rest = err.partition("could not be written to the journal")
    if not header:
        return 0
    lines = rest.splitlines()[1:]
    return sum(1 for line in lines if re.fullmatch(r"  \S+: task \S+", line))


@pytest.mark.slow
def test_a_full_disk_stops_submitting_and_loses_no_paid_task(
        project: ProjectDir, isolated_environment: Path) -> None:
    grid(project, 40, jobs=4)
    emulator = Emulator(EmulatorConfig(latency_min=0.2, latency_max=0.3, announce=False))
    with BackgroundEmulator(emulator) as server:
        env = loopback_env(server.base_url, isolated_environment)
        command = [sys.executable, "-m", "assetbuild", "build", "-f", str(project.manifest)]
        full = subprocess.run(command, env=env, preexec_fn=_full_disk,
                              capture_output=True, text=True, timeout=120, check=False)
        assert full.returncode == 1, full.stderr
        assert "Traceback" not in full.stderr
        assert "the journal cannot be written" in full.stderr
        paid = emulator.stats.submits
        assert 0 < paid < 40, "it stopped submitting once the journal could not be written"
        lock = tomllib.loads((project.root / "assetbuild.lock").read_text())["images"]
        printed = _printed_task_ids(full.stderr)
        assert len(lock) + printed >= paid, "a paid task is neither locked nor printed"

        again = subprocess.run(command, env=env, capture_output=True, text=True,
                               timeout=120, check=False)
        assert again.returncode == 0, again.stderr
    assert emulator.stats.submits == 40 + printed, "a locked task was paid for again"
    assert (project.root / "assetbuild.lock").exists()
