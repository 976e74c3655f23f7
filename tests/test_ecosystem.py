"""Fitting into a repository: `assetbuild init` and the pre-commit hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ProjectDir, RunCli

REPO = Path(__file__).resolve().parents[1]


def test_init_writes_a_working_starter(project: ProjectDir, run_cli: RunCli) -> None:
    (project.root / ".gitignore").write_text("node_modules/\n")
    result = run_cli("init", "-f", str(project.manifest))
    assert result.code == 0 and "assetbuild build" in result.out
    assert (project.root / ".gitignore").read_text() == "node_modules/\n.assetbuild/\n"
    plan = run_cli("plan", "-f", str(project.manifest), "--json")
    assert plan.code == 0 and '"icon[color=orange]"' in plan.out
    again = run_cli("init", "-f", str(project.manifest))
    assert again.code == 2 and "exists already" in again.err
    assert run_cli("init", "-f", str(project.manifest), "--force").code == 0
    assert (project.root / ".gitignore").read_text().count(".assetbuild/") == 1


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_hook_fails_on_a_stale_image_and_passes_after_a_build(
    project: ProjectDir, isolated_environment: Path
) -> None:
    """The hook as a user's repository runs it, through `pre-commit try-repo`."""
    project.write_manifest("""
        version = 1
        [settings]
        provider = "emulator"
        [images.logo]
        prompt = "A flat logo for a coffee roaster"
    """)
    env = {**os.environ, "PRE_COMMIT_HOME": str(project.root.parent / "pre-commit-home"),
           "ASSETBUILD_CACHE_DIR": str(isolated_environment)}
    project.write(".gitignore", ".assetbuild/\n")  # as `assetbuild init` writes it
    git("init", "-q", cwd=project.root)
    git("add", "-A", cwd=project.root)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "assetbuild-check",
             "--all-files"], cwd=project.root, env=env, capture_output=True, text=True,
            timeout=600, check=False)

    stale = hook()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "logo" in stale.stdout and "new" in stale.stdout
    built = subprocess.run([sys.executable, "-m", "assetbuild", "build", "-q"],
                           cwd=project.root, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    git("add", "-A", cwd=project.root)
    fresh = hook()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    project.manifest.write_text(project.manifest.read_text().replace("flat", "bold"))
    git("add", "-A", cwd=project.root)
    changed = hook()
    assert changed.returncode == 1 and "prompt changed" in changed.stdout
