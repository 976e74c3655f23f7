"""A project in a git repository, built against the emulator over loopback."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ProjectDir, RunCli, Served

MANIFEST = """
version = 1
[defaults]
resolution = "1K"
[images.logo]
prompt = "a flat teal logo mark for Acme"
output = "brand/logo.png"
[images.hero]
prompt = "a lighthouse at dusk, calm sea"
output = "web/hero.png"
aspect_ratio = "16:9"
[images.card]
prompt = "a product card, red sneakers"
output = "web/card.jpg"
"""


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (with a fixed identity) and return what it printed."""
    found = subprocess.run(
        ["git", "-c", "user.name=Review Test", "-c", "user.email=review@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=root, capture_output=True, text=True, check=True)
    return found.stdout


@dataclass
class Repo:
    """A built and committed project, with helpers for the review tests."""

    project: ProjectDir
    run_cli: RunCli

    def build(self) -> None:
        result = self.run_cli("build", "-f", str(self.project.manifest))
        assert result.code == 0, result.err

    def edit(self, old: str, new: str) -> None:
        text = self.project.manifest.read_text()
        assert old in text
        self.project.manifest.write_text(text.replace(old, new))

    def commit(self, message: str = "build") -> None:
        git(self.project.root, "add", "-A")
        git(self.project.root, "commit", "-q", "-m", message)

    def review(self, *args: str) -> dict[str, Any]:
        result = self.run_cli("review", "-f", str(self.project.manifest), "--json",
                              "-o", str(self.folder), *args)
        assert result.code == 0, result.err
        data: dict[str, Any] = json.loads(result.out)
        return data

    @property
    def folder(self) -> Path:
        return self.project.root.parent / "review-out"


@pytest.fixture
def repo(project: ProjectDir, run_cli: RunCli, served: Served) -> Repo:
    """The three-image project built once and committed (outputs and lockfile)."""
    project.write_manifest(MANIFEST)
    project.write(".gitignore", ".assetbuild/\n")
    git(project.root, "init", "-q", "-b", "main")
    built = Repo(project, run_cli)
    built.build()
    built.commit("first build")
    return built
