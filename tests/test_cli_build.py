"""build, pull, cache and emulator through the CLI: in process, over loopback, killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator
from assetbuild.hashing import sha256_file
from tests.conftest import ProjectDir, RunCli, Served

GRID = """
version = 1
[settings]
jobs = {jobs}
[images.grid]
prompt = "tile {{{{ n }}}} of a large set"
resolution = "1K"
matrix = {{ n = {values} }}
"""


def grid(project: ProjectDir, count: int, jobs: int = 8) -> None:
    project.write_manifest(GRID.format(jobs=jobs, values=list(range(count))))


def test_emulator_provider_needs_no_key(simple_project: ProjectDir, run_cli: RunCli) -> None:
    manifest = str(simple_project.manifest)
    first = run_cli("build", "-f", manifest, "--provider", "emulator")
    assert first.code == 0, first.err
    assert "6 built" in first.err
    second = run_cli("build", "-f", manifest, "--provider", "emulator")
    assert second.code == 0 and "Nothing to do: 6 images up to date." in second.err
    assert run_cli("check", "-f", manifest, "--provider", "emulator").code == 0


def test_see2ai_provider_without_a_key_is_a_clear_error(
    simple_project: ProjectDir, run_cli: RunCli
) -> None:
    result = run_cli("build", "-f", str(simple_project.manifest))
    assert result.code == 2 and "SEE2AI_API_KEY is not set" in result.err
    assert not (simple_project.root / "assetbuild.lock").exists()


def test_build_over_loopback_with_json(
    simple_project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    result = run_cli("build", "-f", str(simple_project.manifest), "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["counts"] == {"built": 6} and summary["aborted"] is None
    assert summary["points_spent"] == 6 * 20
    assert {i["name"] for i in summary["images"]} >= {"logo", "hero"}
    assert served.emulator.stats.submits == 6
    lock = tomllib.loads((simple_project.root / "assetbuild.lock").read_text())
    assert lock["images"]["logo"]["result_urls"][0].startswith(served.base_url)
    assert "sk-test-key" not in (simple_project.root / "assetbuild.lock").read_text()


def test_bad_key_aborts_with_exit_3(
    simple_project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    served.emulator.configure(api_key="sk-the-right-one")
    result = run_cli("build", "-f", str(simple_project.manifest))
    assert result.code == 3
    assert "the API stopped the build" in result.err and "authentication failed" in result.err
    assert served.emulator.stats.submits == 0


def test_balance_running_out_exits_3_after_locking_what_finished(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    grid(project, 6, jobs=2)
    served.emulator.configure(balance=40, latency_min=0.2, latency_max=0.2)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 3 and "Insufficient balance" in result.err
    lock = tomllib.loads((project.root / "assetbuild.lock").read_text())
    assert len(lock["images"]) == 4 == served.emulator.stats.submits


def test_failed_image_exits_1_with_the_api_message(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    project.write_manifest("""
        version = 1
        [images.ok]
        prompt = "fine"
        [images.broken]
        prompt = "will fail [[fail]]"
    """)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 1
    assert "broken: task" in result.err and "Emulated generation failure" in result.err


def test_warnings_are_shown_and_locked(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest('version = 1\n[images.tiny]\nprompt = "tiny"\n')
    result = run_cli("build", "-f", str(project.manifest), "--provider", "emulator")
    assert "warning     tiny: The prompt is very short" in result.err
    lock = tomllib.loads((project.root / "assetbuild.lock").read_text())
    assert lock["images"]["tiny"]["warnings"] == [
        "The prompt is very short; describe subject, style and composition."]


def test_pull_restores_deleted_outputs(simple_project: ProjectDir, run_cli: RunCli) -> None:
    manifest = str(simple_project.manifest)
    run_cli("build", "-f", manifest, "--provider", "emulator")
    hero = simple_project.root / "generated/hero.png"
    digest = sha256_file(hero)
    hero.unlink()
    result = run_cli("pull", "-f", manifest, "--provider", "emulator")
    assert result.code == 0 and "1 restored" in result.err
    assert sha256_file(hero) == digest


def test_pull_reports_a_url_that_no_longer_serves(
    simple_project: ProjectDir, run_cli: RunCli, isolated_environment: Path
) -> None:
    manifest = str(simple_project.manifest)
    run_cli("build", "-f", manifest, "--provider", "emulator")
    run_cli("cache", "clear")
    (simple_project.root / "generated/hero.png").unlink()
    result = run_cli("pull", "-f", manifest, "--provider", "emulator")
    assert result.code == 1
    assert "hero" in result.err and "answered HTTP 404" in result.err
    assert "run `assetbuild build --force 'hero'` to generate it again" in result.err


def test_cache_info_and_clear(simple_project: ProjectDir, run_cli: RunCli,
                              isolated_environment: Path) -> None:
    run_cli("build", "-f", str(simple_project.manifest), "--provider", "emulator")
    info = json.loads(run_cli("cache", "info", "--json").out)
    assert info["results"] == 6 and info["blobs"] == 6 and info["bytes"] > 0
    assert info["path"] == str(isolated_environment)
    assert "removed" in run_cli("cache", "clear").out
    assert json.loads(run_cli("cache", "info", "--json").out)["results"] == 0


def test_dry_run_is_plan(simple_project: ProjectDir, run_cli: RunCli) -> None:
    result = run_cli("build", "-f", str(simple_project.manifest), "--dry-run")
    assert result.code == 0 and "6 images: 6 new" in result.out
    assert not (simple_project.root / "generated").exists()


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "assetbuild", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def loopback_env(base_url: str, cache: Path) -> dict[str, str]:
    return {**os.environ, "SEE2AI_BASE_URL": base_url, "SEE2AI_API_KEY": "sk-test-key",
            "ASSETBUILD_CACHE_DIR": str(cache)}


def test_a_killed_build_resumes_without_paying_twice(
    project: ProjectDir, isolated_environment: Path
) -> None:
    grid(project, 20, jobs=20)
    emulator = Emulator(EmulatorConfig(latency_min=1.5, latency_max=2.0, seed=5, announce=False))
    with BackgroundEmulator(emulator) as server:
        env = loopback_env(server.base_url, isolated_environment)
        first = cli("build", "-f", str(project.manifest), env=env)
        deadline = time.monotonic() + 30
        while emulator.stats.submits < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the submits have answered; their task ids are journaled
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        assert emulator.stats.submits == 20
        assert not (project.root / "assetbuild.lock").exists()
        second = cli("build", "-f", str(project.manifest), env=env)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    assert "20 resumed" in err
    assert emulator.stats.submits == 20, "no image was paid for twice"
    lock = tomllib.loads((project.root / "assetbuild.lock").read_text())["images"]
    assert len(lock) == 20
    for entry in lock.values():
        assert sha256_file(project.root / entry["outputs"][0]["path"]) == (
            entry["outputs"][0]["sha256"])


def test_a_second_build_waits_or_exits(project: ProjectDir, isolated_environment: Path) -> None:
    grid(project, 4)
    emulator = Emulator(EmulatorConfig(latency_min=1.5, latency_max=1.5, announce=False))
    with BackgroundEmulator(emulator) as server:
        env = loopback_env(server.base_url, isolated_environment)
        first = cli("build", "-f", str(project.manifest), env=env)
        while emulator.stats.submits < 4:
            time.sleep(0.02)
        refused = cli("build", "-f", str(project.manifest), "--no-wait", env=env)
        _, refused_err = refused.communicate(timeout=30)
        waiting = cli("build", "-f", str(project.manifest), env=env)
        _, waiting_err = waiting.communicate(timeout=60)
        first.communicate(timeout=60)
    assert refused.returncode == 1 and "another build" in refused_err
    assert waiting.returncode == 0 and "waiting for it to finish" in waiting_err
    assert "Nothing to do" in waiting_err
    assert emulator.stats.submits == 4


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_start_up_commands_do_not_import_heavy_modules(args: list[str]) -> None:
    code = (f"import sys; from assetbuild.cli import main; main({args!r}); "
            "print(sorted(m for m in ('httpx', 'PIL', 'rich', 'starlette', 'jinja2', "
            "'diskcache') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=30)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_emulator_command_serves_a_build(project: ProjectDir,
                                             isolated_environment: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "assetbuild", "emulator", "--port", str(port), "--latency",
         "0.2", "--rate-429", "0.2", "--retry-after", "0.05", "--seed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/_emulator/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        grid(project, 5)
        env = loopback_env(base, isolated_environment)
        build = cli("build", "-f", str(project.manifest), env=env)
        _, err = build.communicate(timeout=60)
        assert build.returncode == 0, err
        stats = httpx.get(f"{base}/_emulator/stats", timeout=5).json()
        assert stats["submits"] == 5 and stats["faults"].get("429", 0) > 0
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_render_shows_the_upload_a_build_made(project: ProjectDir, run_cli: RunCli) -> None:
    project.write("assets/ref.png", "reference bytes")
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "an image from a local reference"
        references = ["assets/ref.png"]
    """)
    manifest = str(project.manifest)
    before = json.loads(run_cli("render", "-f", manifest, "--provider", "emulator", "a").out)
    assert before["input_urls"] == ["upload:assets/ref.png"]
    assert run_cli("build", "-f", manifest, "--provider", "emulator").code == 0
    after = json.loads(run_cli("render", "-f", manifest, "--provider", "emulator", "a").out)
    lock = tomllib.loads((project.root / "assetbuild.lock").read_text())
    assert after["input_urls"] == lock["images"]["a"]["request"]["input_urls"]
    assert after["input_urls"][0].startswith("http://see2ai-emulator.invalid/uploads/")
