"""The platform as its own client scripts read it (upper-case statuses, error_message,
401 for an empty balance), beside the vendor page's dialect: the main scenarios end to
end over loopback in both."""

from __future__ import annotations

import io
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator
from tests.conftest import ProjectDir, RunCli
from tests.test_cli_build import grid

DIALECTS = ["vendor", "platform"]


Serve = Callable[..., Emulator]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Start an emulator over loopback with these settings; the environment points at it."""
    started: list[BackgroundEmulator] = []

    def start(**settings: Any) -> Emulator:
        served = BackgroundEmulator(Emulator(EmulatorConfig(announce=False, **settings)))
        served.__enter__()
        started.append(served)
        monkeypatch.setenv("SEE2AI_BASE_URL", served.base_url)
        monkeypatch.setenv("SEE2AI_API_KEY", "sk-test-key")
        return served.emulator

    yield start
    for served in started:
        served.__exit__(None, None, None)


def _locked(project: ProjectDir) -> dict[str, dict[str, object]]:
    path = project.root / "assetbuild.lock"
    if not path.exists():
        return {}
    images: dict[str, dict[str, object]] = tomllib.loads(path.read_text())["images"]
    return images


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_build_and_a_failed_tasks_reason(project: ProjectDir, run_cli: RunCli, serve: Serve,
                                           dialect: str) -> None:
    emulator = serve(dialect=dialect)
    project.write_manifest("""
        version = 1
        [images.ok]
        prompt = "a good one"
        [images.bad]
        prompt = "a bad one [[fail]]"
    """)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 1
    assert "built       ok" in result.err
    assert "bad: task emu-" in result.err and "Emulated generation failure." in result.err
    assert list(_locked(project)) == ["ok"] and emulator.stats.submits == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_balance_runs_out_and_every_paid_task_is_locked(
        project: ProjectDir, run_cli: RunCli, serve: Serve, dialect: str) -> None:
    emulator = serve(dialect=dialect, balance=40, latency_min=0.3, latency_max=0.3)
    grid(project, 8, jobs=2)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 3, result.err
    said = "余额不足" if dialect == "platform" else "Insufficient balance"
    assert said in result.err
    if dialect == "platform":
        assert "out of points" in result.err, "a 401 after an accepted key is the balance"
    paid = emulator.stats.submits
    assert paid == 4 and len(_locked(project)) == paid, "every paid task ends in the lockfile"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_wrong_key_still_stops_at_once(project: ProjectDir, run_cli: RunCli, serve: Serve,
                                         dialect: str) -> None:
    emulator = serve(dialect=dialect, api_key="sk-the-right-one")
    grid(project, 4, jobs=1)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 3 and "out of points" not in result.err
    assert emulator.stats.submits == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_webp_reference_is_converted_and_uploaded_once(
        project: ProjectDir, run_cli: RunCli, serve: Serve, dialect: str) -> None:
    from PIL import Image

    emulator = serve(dialect=dialect)
    Image.new("RGBA", (32, 32), (30, 120, 200, 255)).save(project.root / "brand shot.webp")
    project.write_manifest("""
        version = 1
        [images.hero]
        prompt = "a hero in the brand's colours"
        references = ["brand shot.webp"]
        [images.banner]
        prompt = "a banner in the brand's colours"
        references = ["brand shot.webp"]
    """)
    built = run_cli("build", "-f", str(project.manifest), "-j", "1", "-v")
    assert built.code == 0, built.err
    assert "converted from WEBP to PNG for the upload" in built.err
    assert emulator.uploads.received == [
        ("brand_shot.png", "image/png", emulator.uploads.received[0][2])], "uploaded once"
    urls = {name: entry["request"]["input_urls"]  # type: ignore[index]
            for name, entry in _locked(project).items()}
    assert urls["hero"] == urls["banner"] and urls["hero"][0].endswith("/brand_shot.png")
    again = run_cli("build", "-f", str(project.manifest), "--force")
    assert again.code == 0 and emulator.uploads.count() == 1, "the upload is cached"


def test_the_platform_refuses_webp_as_it_is(serve: Serve) -> None:
    """Why the conversion is there: a WebP sent as it is answers 422."""
    import httpx
    from PIL import Image

    serve(dialect="platform")
    import os

    data = io.BytesIO()
    Image.new("RGB", (8, 8)).save(data, "WEBP")
    answer = httpx.post(f"{os.environ['SEE2AI_BASE_URL']}/api/v1/actions/"
                        "see2ai_storage_upload_v1",
                        headers={"Authorization": "Bearer sk-test-key"},
                        files={"file": ("x.webp", data.getvalue(), "image/webp")})
    assert answer.status_code == 422 and "Convert it to JPG or PNG" in answer.text


@pytest.mark.parametrize(("size", "said"), [
    (0, "'empty.png' is empty (the upload refuses empty files)"),
    (50 * 1024 * 1024 + 1, "'empty.png' is 50.0 MB; the upload takes at most 50 MB")])
def test_a_reference_the_upload_would_refuse_is_a_manifest_error(
        project: ProjectDir, run_cli: RunCli, serve: Serve, size: int, said: str) -> None:
    emulator = serve()
    with (project.root / "empty.png").open("wb") as sparse:
        sparse.truncate(size)
    project.write_manifest("""
        version = 1
        [images.hero]
        prompt = "a hero"
        references = ["empty.png"]
    """)
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 2, result.err
    assert said in result.err and "hero" in result.err and "references" in result.err
    assert "assetbuild.toml" in result.err
    assert emulator.stats.submits == 0 and emulator.uploads.count() == 0
