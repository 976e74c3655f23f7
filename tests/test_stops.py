"""Stops a user meets: Ctrl-C and a CI runner's SIGTERM at a random moment of a build
(each a graceful stop: exit 130 or 143, and a resume that pays for nothing again), and
a bug (one paragraph, a redacted crash log, exit 4)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetbuild.crash import bug_message, write_crash_log
from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator
from assetbuild.engine import STOP_GRACE
from tests.conftest import ProjectDir
from tests.test_cli_build import grid
from tests.test_reliability import assert_consistent, run_cli_process

STOPS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
@pytest.mark.parametrize(("stop", "code"), STOPS, ids=["SIGINT", "SIGTERM"])
def test_a_stopped_build_exits_cleanly_and_its_resume_pays_nothing_twice(
        project: ProjectDir, isolated_environment: Path, trial: int,
        stop: signal.Signals, code: int) -> None:
    rng = random.Random(f"{stop.name}-{trial}")
    grid(project, 30, jobs=8)
    emulator = Emulator(EmulatorConfig(latency_min=0.4, latency_max=1.0, seed=trial,
                                       announce=False))
    with BackgroundEmulator(emulator) as server:
        env = {**os.environ, "SEE2AI_BASE_URL": server.base_url, "SEE2AI_API_KEY": "sk-stop",
               "ASSETBUILD_CACHE_DIR": str(isolated_environment)}
        first = run_cli_process(project, env)
        deadline = time.monotonic() + 30
        while emulator.stats.submits == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        first.send_signal(stop)
        _, stopped = first.communicate(timeout=60)
        paid_before = emulator.stats.submits
        second = run_cli_process(project, env)
        _, resumed = second.communicate(timeout=120)
    assert first.returncode == code, stopped
    assert "Traceback" not in stopped
    said = re.search(r"(\d+) images? finished and locked; (\d+) paid tasks? (?:is|are) "
                     r"journaled and the next build resumes them", stopped)
    assert said, stopped
    finished, journaled = int(said[1]), int(said[2])
    assert finished + journaled == paid_before, "each task paid for is locked or journaled"
    assert second.returncode == 0, resumed
    assert len(assert_consistent(project)) == 30
    assert emulator.stats.submits == 30, (
        f"{emulator.stats.submits - 30} paid twice ({paid_before} before the stop)")


@pytest.fixture
def hanging_submits(isolated_environment: Path) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator whose submits answer 1.5 s after creating their task, and the
    environment that builds against it."""
    emulator = Emulator(EmulatorConfig(hang_rate=1.0, hang_seconds=1.5, announce=False))
    with BackgroundEmulator(emulator) as server:
        yield emulator, {**os.environ, "SEE2AI_BASE_URL": server.base_url,
                         "SEE2AI_API_KEY": "sk-stop",
                         "ASSETBUILD_CACHE_DIR": str(isolated_environment)}


def _stop_while_submits_hang(project: ProjectDir, emulator: Emulator, env: dict[str, str],
                             stops: int) -> tuple[int, str, float]:
    """Build 4 images; once the API has created all 4 tasks (their answers still on the
    way), send SIGINT ``stops`` times, 0.3 s apart; then let submits answer at once.
    Returns the stopped build's exit code, its stderr and the seconds from the first
    signal to its exit."""
    grid(project, 4, jobs=4)
    first = run_cli_process(project, env)
    deadline = time.monotonic() + 30
    while emulator.stats.submits < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    signalled = time.monotonic()
    for _ in range(stops):
        first.send_signal(signal.SIGINT)
        time.sleep(0.3)
    _, stopped = first.communicate(timeout=60)
    waited = time.monotonic() - signalled
    emulator.configure(hang_rate=0.0)
    return first.returncode, stopped, waited


def test_a_stop_waits_for_the_submits_on_the_wire_and_journals_them(
        project: ProjectDir, hanging_submits: tuple[Emulator, dict[str, str]]) -> None:
    emulator, env = hanging_submits
    code, stopped, _ = _stop_while_submits_hang(project, emulator, env, stops=1)
    assert code == 130, stopped
    assert "0 images finished and locked; 4 paid tasks are journaled" in stopped
    resumed = run_cli_process(project, env)
    _, said = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, said
    assert emulator.stats.submits == 4, "the resume paid for a submit the stop let finish"
    assert "may have been charged twice" not in said
    assert len(assert_consistent(project)) == 4


def test_a_second_ctrl_c_exits_at_once_and_the_next_build_names_what_it_may_pay_twice(
        project: ProjectDir, hanging_submits: tuple[Emulator, dict[str, str]]) -> None:
    import json

    emulator, env = hanging_submits
    emulator.configure(hang_seconds=STOP_GRACE + 1)
    code, stopped, waited = _stop_while_submits_hang(project, emulator, env, stops=2)
    assert code == 130 and "Traceback" not in stopped, stopped
    assert waited < STOP_GRACE - 1, "the second Ctrl-C did not cut the wait short"
    resumed = subprocess.run(
        [sys.executable, "-m", "assetbuild", "build", "-f", str(project.manifest), "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert resumed.returncode == 0, resumed.stderr
    names = [f"grid[n={n}]" for n in range(4)]
    assert json.loads(resumed.stdout)["may_have_been_charged_twice"] == names
    assert f"may have been charged twice: {', '.join(names)}" in resumed.stderr
    assert emulator.stats.submits == 8
    again = subprocess.run(
        [sys.executable, "-m", "assetbuild", "build", "-f", str(project.manifest)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and "charged twice" not in again.stderr, "said once"


def test_a_bug_is_one_paragraph_and_a_redacted_crash_log(tmp_path: Path) -> None:
    """A command that fails as only a bug would, run through the real entry point."""
    script = (
        "import sys\n"
        "from assetbuild.cli import cli, main\n"
        "@cli.command()\n"
        "def boom():\n"
        "    raise RuntimeError('unexpected, holding sk-live-secret-123')\n"
        "sys.exit(main(['boom']))\n")
    env = {**os.environ, "ASSETBUILD_CACHE_DIR": str(tmp_path / "cache"),
           "SEE2AI_API_KEY": "sk-live-secret-123"}
    ran = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert ran.returncode == 4
    assert "this is a bug in assetbuild (RuntimeError)" in ran.stderr
    assert "Traceback" not in ran.stderr and "sk-live-secret-123" not in ran.stderr
    logs = list((tmp_path / "cache" / "crash").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in ran.stderr
    text = logs[0].read_text()
    assert "Traceback" in text and "RuntimeError" in text and "command: assetbuild boom" in text
    assert "sk-live-secret-123" not in text and "[redacted]" in text
    assert logs[0].stat().st_mode & 0o077 == 0, "readable by the user alone"


def test_an_unwritable_crash_folder_still_gives_the_paragraph(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    error = ValueError("x")
    assert write_crash_log(error, ["build"], blocker / "crash") is None
    assert "could not be written" in bug_message(error, None)


def test_plan_shows_the_paid_tasks_an_interrupted_build_left(
        project: ProjectDir, isolated_environment: Path) -> None:
    import json

    grid(project, 12, jobs=12)
    emulator = Emulator(EmulatorConfig(latency_min=30, latency_max=30, announce=False))
    with BackgroundEmulator(emulator) as server:
        env = {**os.environ, "SEE2AI_BASE_URL": server.base_url, "SEE2AI_API_KEY": "sk-stop",
               "ASSETBUILD_CACHE_DIR": str(isolated_environment)}
        first = run_cli_process(project, env)
        deadline = time.monotonic() + 30
        while emulator.stats.submits < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the answers journaled
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    command = [sys.executable, "-m", "assetbuild", "plan", "-f", str(project.manifest)]
    as_json = json.loads(subprocess.run([*command, "--json"], env=env, capture_output=True,
                                        text=True, timeout=60, check=True).stdout)
    assert as_json["actions"]["resume"] == 12 and as_json["actions"]["build"] == 0
    assert all(image["paid_task"].startswith("emu-") for image in as_json["images"])
    assert as_json["unpriced_images"] == 0 and as_json["estimated_points"] == 0
    text = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                          check=True).stdout
    assert "resume 12 task(s) already paid for" in text and "(paid, no new charge)" in text
