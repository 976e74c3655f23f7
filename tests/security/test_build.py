"""A hostile server and a tampered journal, met by whole builds through the CLI: what
the server says never reaches the lockfile, the cache or the terminal unredacted, an
id that cannot be polled is never journaled, and stale journal entries never stand in
for a build that was asked for."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from assetbuild.emulator import IN_PROCESS_BASE_URL
from assetbuild.hashing import spec_hash
from assetbuild.journal import Journal
from assetbuild.project import Project
from assetbuild.providers import EMULATOR_KEY
from assetbuild.spec import image_request, image_spec
from tests.conftest import ProjectDir, RunCli
from tests.security.hostile import Request, hostile_server, json_response, png_bytes, response

KEY = "sk-live-CANARY-5f1e2d3c4b5a"


class FakeApi:
    """A whole API whose answers the test shapes: the task id it hands out, and the
    warnings and errors it writes."""

    def __init__(self, task_id: str = "t-1", warning: str = "") -> None:
        self.task_id = task_id
        self.warning = warning
        self.submits = 0

    async def __call__(self, request: Request, writer: asyncio.StreamWriter) -> None:
        port = request.headers["host"].split(":")[1]
        if request.path.endswith("/async"):
            self.submits += 1
            writer.write(json_response(200, {"task_id": self.task_id, "status": "queued"}))
        elif "/status/" in request.path:
            task = request.path.rsplit("/", 1)[1]
            writer.write(json_response(200, {
                "task_id": task, "status": "SUCCESS", "cost_points": 5,
                "result_urls": [f"http://127.0.0.1:{port}/img/{task}.png"],
                "warnings": [self.warning] if self.warning else []}))
        else:
            writer.write(response(200, png_bytes(32), {"Content-Type": "image/png"}))


@pytest.fixture
def logo(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    project.write_manifest('version = 1\n[images.logo]\nprompt = "a logo"\n')
    monkeypatch.setenv("SEE2AI_API_KEY", KEY)
    return project


def _every_file_text(*folders: Path) -> list[tuple[Path, str]]:
    return [(path, path.read_bytes().decode("latin-1"))
            for folder in folders for path in folder.rglob("*") if path.is_file()]


def test_a_key_echoed_in_warnings_is_stored_and_shown_redacted(
        logo: ProjectDir, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch,
        isolated_environment: Path) -> None:
    api = FakeApi(warning=f"key {KEY} is on a free plan \x1b[31mRED\x1b[0m \x1b]0;title\x07")
    with hostile_server(api) as server:
        monkeypatch.setenv("SEE2AI_BASE_URL", server.base_url)
        result = run_cli("build", "-f", str(logo.manifest))
    assert result.code == 0, result.err
    shown = result.out + result.err
    assert KEY not in shown and "\x1b" not in shown and "\x07" not in shown
    assert "[redacted]" in shown
    for path, text in _every_file_text(logo.root, isolated_environment):
        assert KEY not in text, path
    lockfile = (logo.root / "assetbuild.lock").read_text()
    assert "\x1b" not in lockfile and "\x07" not in lockfile
    assert "[redacted] is on a free plan" in lockfile


@pytest.mark.parametrize("bad_id", ["t-1\r\nX-Injected: yes", "t\x00", "x" * 200_000])
def test_a_poisoned_task_id_is_never_journaled(logo: ProjectDir, run_cli: RunCli,
                                               monkeypatch: pytest.MonkeyPatch,
                                               bad_id: str) -> None:
    api = FakeApi(task_id=bad_id)
    with hostile_server(api) as server:
        monkeypatch.setenv("SEE2AI_BASE_URL", server.base_url)
        first = run_cli("build", "-f", str(logo.manifest))
        assert first.code == 1 and "may have created and charged" in first.err
        loaded = Project.load(logo.manifest)
        journal = Journal(loaded.state_dir, server.base_url, KEY)
        entries = journal.entries()
        journal.close()
        assert [e.task_id for e in entries] == [""], "an id that cannot be polled was journaled"
        assert [e.state for e in entries] == ["sending"], "the intent stays: it may be charged"
        api.task_id = "t-2"
        second = run_cli("build", "-f", str(logo.manifest))
    assert second.code == 0, second.err
    assert api.submits == 2
    assert "may have been charged twice: logo" in second.err


def test_a_journal_entry_that_cannot_be_polled_is_skipped(
        logo: ProjectDir, run_cli: RunCli) -> None:
    loaded = Project.load(logo.manifest)
    image = loaded.resolved.images[0]
    journal = Journal(loaded.state_dir, IN_PROCESS_BASE_URL, EMULATOR_KEY)
    journal.submitted(spec_hash(image_spec(image, "emulator", {})), "logo",
                      "bad\r\nid", image_request(image, []))
    journal.close()
    result = run_cli("build", "-f", str(logo.manifest), "--provider", "emulator")
    assert result.code == 0, result.err
    assert "cannot be polled" in result.err


def _plant_done_entry(project: ProjectDir) -> None:
    """A finished task in the journal that the lockfile does not hold: what a build
    killed between writing its outputs and writing its lockfile leaves."""
    loaded = Project.load(project.manifest)
    image = loaded.resolved.images[0]
    digest = spec_hash(image_spec(image, "emulator", {}))
    lock = json.loads(json.dumps(
        {"spec_hash": digest, "provider": "emulator", "task_id": "emu-old", "state": "done",
         "model": "m", "result_urls": ["http://see2ai-emulator.invalid/gone.png"],
         "request": image_request(image, []),
         "outputs": [{"path": "generated/logo.png", "sha256": "0" * 64, "bytes": 1}]}))
    journal = Journal(loaded.state_dir, IN_PROCESS_BASE_URL, EMULATOR_KEY)
    journal.submitted(digest, "logo", "emu-old", image_request(image, []))
    journal.done(digest, lock)
    journal.close()


def test_force_never_resumes_a_finished_journal_entry(logo: ProjectDir, run_cli: RunCli) -> None:
    assert run_cli("build", "-f", str(logo.manifest), "--provider", "emulator").code == 0
    _plant_done_entry(logo)
    for _ in range(2):
        result = run_cli("build", "-f", str(logo.manifest), "--provider", "emulator",
                         "--force", "--json")
        assert result.code == 0, result.err
        counts = json.loads(result.out)["counts"]
        assert counts == {"built": 1}, counts


def test_a_resumed_entry_is_dropped_once_locked(logo: ProjectDir, run_cli: RunCli) -> None:
    """A finished journal entry is resumed once; the next builds find nothing to do."""
    assert run_cli("build", "-f", str(logo.manifest), "--provider", "emulator").code == 0
    loaded = Project.load(logo.manifest)
    entry = loaded.read_lockfile().entries["logo"]
    journal = Journal(loaded.state_dir, IN_PROCESS_BASE_URL, EMULATOR_KEY)
    journal.submitted(entry.spec_hash, "logo", entry.task_id, dict(entry.request))
    journal.done(entry.spec_hash, entry.to_toml())
    journal.close()
    (logo.root / "assetbuild.lock").unlink()
    assert run_cli("cache", "clear").code == 0  # only the journal knows the result now
    first = run_cli("build", "-f", str(logo.manifest), "--provider", "emulator", "--json")
    assert json.loads(first.out)["counts"] == {"resumed": 1}
    journal = Journal(loaded.state_dir, IN_PROCESS_BASE_URL, EMULATOR_KEY)
    assert journal.entries() == [], "the journal still holds what the lockfile holds"
    journal.close()


def test_a_build_whose_lock_vanished_stops_submitting(project: ProjectDir,
                                                      isolated_environment: Path) -> None:
    """Deleting .assetbuild mid-build lets a second build take a fresh lock; the first
    notices its lock is gone and submits nothing more (both would pay otherwise)."""
    import shutil
    import time

    from assetbuild.emulator import Emulator, EmulatorConfig
    from assetbuild.emulator.server import BackgroundEmulator
    from tests.test_cli_build import cli, grid, loopback_env

    grid(project, 8, jobs=1)
    emulator = Emulator(EmulatorConfig(latency_min=0.4, latency_max=0.4, announce=False))
    with BackgroundEmulator(emulator) as server:
        env = loopback_env(server.base_url, isolated_environment)
        first = cli("build", "-f", str(project.manifest), env=env)
        deadline = time.monotonic() + 30
        while emulator.stats.submits < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(project.root / ".assetbuild")
        _, err = first.communicate(timeout=60)
    assert first.returncode == 1, err
    assert "lock file was deleted" in err
    assert emulator.stats.submits <= 2, "it went on submitting without its lock"
