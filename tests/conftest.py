"""Shared fixtures: temporary projects and an in-process CLI runner."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assetbuild.cli import main
from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.emulator.server import BackgroundEmulator


@dataclass
class CliResult:
    """What one CLI call returned and printed."""

    code: int
    out: str
    err: str


RunCli = Callable[..., CliResult]


pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--soak``: also run the trials of many minutes (the 5,000-manifest fuzz)."""
    parser.addoption("--soak", action="store_true",
                     help="run the soak trials too (minutes each; CI leaves them out)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip soak trials unless ``--soak`` was given."""
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="a soak trial: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own result cache and no API settings from the machine."""
    cache = tmp_path / "user-cache"
    monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(cache))
    monkeypatch.delenv("SEE2AI_API_KEY", raising=False)
    monkeypatch.delenv("SEE2AI_BASE_URL", raising=False)
    return cache


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Call ``assetbuild`` in process and capture its exit code and output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@dataclass
class ProjectDir:
    """A temporary project folder with helpers to write its files."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "assetbuild.toml"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    def write_manifest(self, text: str) -> Path:
        return self.write("assetbuild.toml", text)


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    """An empty project folder (the manifest is written by the test)."""
    root = tmp_path / "project"
    root.mkdir()
    return ProjectDir(root.resolve())


SIMPLE_MANIFEST = """
version = 1

[vars]
brand = "Acme"

[images.logo]
prompt = "Logo for {{ brand }}"

[images.hero]
prompt = "A {{ mood }} hero banner for {{ brand }}"
output = "hero.png"
aspect_ratio = "16:9"
references = ["https://example.com/ref.jpg", "image:logo"]
vars = { mood = "calm" }

[images.card]
prompt = "Product card for {{ color }} sneakers"
output = "cards/{{ color }}-{{ ratio | replace(':', 'x') }}.png"
aspect_ratio = "{{ ratio }}"
matrix = { color = ["red", "blue"], ratio = ["1:1", "9:16"] }
"""


@pytest.fixture
def simple_project(project: ProjectDir) -> ProjectDir:
    """A project with the SPEC's example images (logo, hero, a 2x2 card matrix)."""
    project.write_manifest(SIMPLE_MANIFEST)
    return project


def lock_as_built(project_dir: ProjectDir, provider: str | None = None) -> dict[str, str]:
    """Write outputs and a lockfile exactly as a finished build would; return name -> URL.

    This stands in for a build in tests of the offline commands: the files are
    placeholders but every digest and spec hash is what a build records.
    """
    import hashlib

    from assetbuild.hashing import locked_spec, spec_hash
    from assetbuild.lockfile import LockEntry, OutputRecord, write_lockfile
    from assetbuild.project import Project
    from assetbuild.spec import image_request, image_spec

    loaded = Project.load(project_dir.manifest)
    provider = loaded.provider(provider)
    entries: dict[str, LockEntry] = {}
    urls: dict[str, str | None] = {}
    for image in loaded.resolved.images:
        spec = image_spec(image, provider, urls)
        data = f"pixels of {image.name} {image.prompt}".encode()
        digest = hashlib.sha256(data).hexdigest()
        (loaded.root / image.output).parent.mkdir(parents=True, exist_ok=True)
        (loaded.root / image.output).write_bytes(data)
        url = f"https://cdn.example/{digest}.png"
        entries[image.name] = LockEntry(
            spec_hash=spec_hash(spec), provider=provider, task_id=f"task-{digest[:8]}",
            state="completed", model="see2ai-image", result_urls=(url,),
            request=image_request(image, []), outputs=(OutputRecord(image.output, digest,
                                                                    len(data)),),
            spec=locked_spec(spec),
        )
        urls[image.name] = url
    write_lockfile(loaded.manifest.lockfile_path, entries)
    return {name: str(url) for name, url in urls.items()}


@dataclass
class Served:
    """An emulator served over loopback, with the environment pointing the CLI at it."""

    emulator: Emulator
    base_url: str
    api_key: str


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The emulator on a loopback port; SEE2AI_BASE_URL and SEE2AI_API_KEY point at it."""
    emulator = Emulator(EmulatorConfig(seed=11, announce=False))
    with BackgroundEmulator(emulator) as server:
        monkeypatch.setenv("SEE2AI_BASE_URL", server.base_url)
        monkeypatch.setenv("SEE2AI_API_KEY", "sk-test-key")
        yield Served(emulator, server.base_url, "sk-test-key")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the crash trials' figures (for docs/reliability.md) when any ran."""
    from collections import Counter

    from tests.test_reliability import CRASH_FIGURES, FAULT_FIGURES

    if FAULT_FIGURES:
        faults: Counter[str] = Counter()
        for figures in FAULT_FIGURES:
            faults.update(figures)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(faults.items()))
        terminalreporter.write_line(
            f"fault suite: {len(FAULT_FIGURES)} builds of 20 images, {sum(faults.values())} "
            f"faults injected ({kinds}); 0 duplicate submits, 0 images lost")
    if not CRASH_FIGURES:
        return
    accepted = sum(f[1] for f in CRASH_FIGURES)
    recorded = sum(f[2] for f in CRASH_FIGURES)
    orphans = sum(f[3] for f in CRASH_FIGURES)
    named = sum(f[4] for f in CRASH_FIGURES)
    terminalreporter.write_line(
        f"crash trials: {len(CRASH_FIGURES)} kills; {accepted} tasks created by the killed "
        f"builds, {recorded} of them recorded (journal or lockfile), {orphans} answered "
        f"too late to record (paid again on resume: {orphans / len(CRASH_FIGURES):.2f} per "
        f"kill); the resumes named {named} images as maybe charged twice, every orphan "
        "among them; 0 images lost")
