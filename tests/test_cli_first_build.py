"""What a new user meets in the first builds against a server: the emulator reached over
HTTP, pull with a lost dependency, an unreachable or mistyped API, retries made visible,
and points counted as the platform charges them."""

from __future__ import annotations

import json
import socket
import threading
import time
import tomllib
from pathlib import Path

import pytest

from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator
from tests.conftest import ProjectDir, RunCli, Served
from tests.test_cli_build import grid


def _locked(project: ProjectDir) -> dict[str, dict[str, object]]:
    document = tomllib.loads((project.root / "assetbuild.lock").read_text())
    images: dict[str, dict[str, object]] = document["images"]
    return images


def test_placeholders_served_over_http_are_locked_as_the_emulator(
        simple_project: ProjectDir, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docs' recipe for trying failures: `assetbuild emulator` behind SEE2AI_BASE_URL."""
    manifest = str(simple_project.manifest)
    with BackgroundEmulator(Emulator(EmulatorConfig(seed=2))) as server:
        monkeypatch.setenv("SEE2AI_BASE_URL", server.base_url)
        monkeypatch.setenv("SEE2AI_API_KEY", "sk-test-key")
        built = run_cli("build", "-f", manifest)
        assert built.code == 0, built.err
    assert {entry["provider"] for entry in _locked(simple_project).values()} == {"emulator"}
    real = run_cli("check", "-f", manifest)
    assert real.code == 1 and "6 changed" in real.out, "placeholders never pass for real images"
    assert run_cli("check", "-f", manifest, "--provider", "emulator").code == 0


def test_pull_restores_an_image_whose_dependency_cannot_be_restored(
        simple_project: ProjectDir, run_cli: RunCli, served: Served,
        isolated_environment: Path) -> None:
    manifest = str(simple_project.manifest)
    assert run_cli("build", "-f", manifest, "logo", "hero").code == 0
    served.emulator.expire(str(_locked(simple_project)["logo"]["task_id"]))
    for name in ("generated/logo.png", "generated/hero.png"):
        (simple_project.root / name).unlink()
    assert run_cli("cache", "clear").code == 0
    pulled = run_cli("pull", "-f", manifest, "logo", "hero")
    assert pulled.code == 1
    assert (simple_project.root / "generated/hero.png").exists(), "its own URL still works"
    assert not (simple_project.root / "generated/logo.png").exists()
    assert "1 restored, 1 FAILED" in pulled.err and "1 image not restored" in pulled.err
    assert "points spent" not in pulled.err and "not built" not in pulled.err


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_api_is_named_once_and_submitting_stops(
        project: ProjectDir, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    grid(project, 15, jobs=2)
    monkeypatch.setenv("SEE2AI_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("SEE2AI_API_KEY", "sk-test-key")
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 1
    # once as it happens, once in the closing list; every other image says it briefly
    assert result.err.count("cannot reach http://127.0.0.1:") == 2, result.err
    assert "not submitted: the API could not be reached" in result.err
    assert "15 images not built" in result.err
    assert "may have created" not in result.err, "a refused connection created nothing"


def test_a_wrong_api_path_names_the_url(simple_project: ProjectDir, run_cli: RunCli,
                                        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEE2AI_BASE_URL", served.base_url + "/wrong")
    result = run_cli("build", "-f", str(simple_project.manifest), "logo")
    assert result.code == 1
    assert f"{served.base_url}/wrong/api/v1/actions/" in result.err
    assert "HTTP 404: URL answered HTTP 404" not in result.err
    assert served.emulator.stats.submits == 0


def test_retries_are_counted_in_the_summary_and_the_json(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    grid(project, 12, jobs=4)
    served.emulator.configure(rate_429=0.4, retry_after=0.05, seed=4)
    as_json = run_cli("build", "-f", str(project.manifest), "--json")
    assert as_json.code == 0, as_json.err
    refused = served.emulator.stats.faults["429"]
    assert refused > 0 and json.loads(as_json.out)["retries"]["429"] == refused

    verbose = run_cli("build", "-f", str(project.manifest), "--force", "-v")
    assert verbose.code == 0, verbose.err
    again = served.emulator.stats.faults["429"] - refused
    assert again > 0 and f"Retried {again} times after 429" in verbose.err
    retry_lines = [line for line in verbose.err.splitlines() if line.startswith("retry ")]
    assert len(retry_lines) == again and "HTTP 429" in retry_lines[0]


@pytest.mark.slow
def test_a_long_wait_says_what_it_waits_for(simple_project: ProjectDir, run_cli: RunCli,
                                            served: Served) -> None:
    served.emulator.configure(rate_429=1.0, retry_after=10)
    lift = threading.Timer(1.0, lambda: served.emulator.configure(rate_429=0.0))
    lift.start()
    try:
        result = run_cli("build", "-f", str(simple_project.manifest), "logo")
    finally:
        lift.cancel()
    assert result.code == 0, result.err
    assert "waiting 10 s: HTTP 429" in result.err


def test_points_are_what_the_platform_charged(project: ProjectDir, run_cli: RunCli,
                                              served: Served) -> None:
    grid(project, 20, jobs=8)
    served.emulator.configure(failure_rate=0.4, seed=9)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 1 and "FAILED" in result.err
    spent = served.emulator.stats.points_spent
    assert 0 < spent < 200
    assert f"; {spent} points spent" in result.err, "failed tasks are not charged"


def test_a_task_past_its_timeout_is_polled_again_by_the_next_build(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    """"The next build resumes polling it" holds: the resumed task gets a fresh timeout
    and is polled at once, though its first timeout passed long ago."""
    project.write_manifest("""
        version = 1
        [settings]
        timeout = 1
        [images.slow]
        prompt = "a slow one"
    """)
    served.emulator.configure(latency_min=2.5, latency_max=2.5)
    first = run_cli("build", "-f", str(project.manifest))
    assert first.code == 1 and "the next build resumes polling it" in first.err
    time.sleep(2.0)  # the task ends while no build watches it
    second = run_cli("build", "-f", str(project.manifest))
    assert second.code == 0, second.err
    assert "resumed" in second.err and served.emulator.stats.submits == 1
