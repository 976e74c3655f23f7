"""A hostile checkout: a pull request that commits a crafted state folder or lockfile,
or bends paths with symlinks, must not run code or write outside the project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ProjectDir, RunCli, lock_as_built


class _Exploit:
    """Unpickling this creates the file at ``marker`` (stands for any code at all)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _plant_pickles(cache_folder: Path, keys: list[str], marker: Path) -> None:
    """Write pickled rows (values and a key) into a diskcache database, as an attacker
    with diskcache's default settings would."""
    import diskcache

    cache = diskcache.Cache(str(cache_folder))  # the default Disk pickles
    for key in keys:
        cache.set(key, _Exploit(marker))
    cache.set(("tuple", "key"), "a pickled key")  # non-str keys are pickled too
    cache.close()


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def _memo_keys(project: ProjectDir) -> list[str]:
    manifest = project.manifest.resolve()
    lockfile = manifest.parent / "assetbuild.lock"
    return [f"{kind}:{manifest}" for kind in ("resolved-v2", "resolved-v1", "lockfile-v2")] + [
        f"spec-hashes-v2:{manifest}:see2ai", f"lockfile-v2:{lockfile}", "file-digests-v2"]


def test_a_pickle_in_the_state_folder_never_runs(simple_project: ProjectDir,
                                                  run_cli: RunCli, tmp_path: Path) -> None:
    """Even a state folder we trust (ours, untracked) is read as plain data only."""
    lock_as_built(simple_project)
    marker = tmp_path / "code-ran"
    _plant_pickles(simple_project.root / ".assetbuild" / "state", _memo_keys(simple_project),
                   marker)
    result = run_cli("check", "-f", str(simple_project.manifest))
    assert result.code == 0, result.out + result.err
    assert not marker.exists(), "a pickled memo was unpickled"
    result = run_cli("plan", "-f", str(simple_project.manifest), "--json")
    assert result.code == 0 and not marker.exists()


def test_a_pickle_in_the_journal_or_result_cache_never_runs(
        simple_project: ProjectDir, run_cli: RunCli, tmp_path: Path,
        isolated_environment: Path) -> None:
    marker = tmp_path / "code-ran"
    journal = simple_project.root / ".assetbuild" / "journal"
    _plant_pickles(journal, ["v2|emulator|anything"], marker)
    result = run_cli("build", "-f", str(simple_project.manifest), "--provider", "emulator")
    assert result.code == 0, result.err
    from assetbuild.cache import CACHE_FORMAT

    results = isolated_environment / f"results-v{CACHE_FORMAT}"
    from assetbuild.project import Project

    loaded = Project.load(simple_project.manifest)
    lock = loaded.read_lockfile()
    _plant_pickles(results, [f"spec:{e.spec_hash}" for e in lock.entries.values()], marker)
    (simple_project.root / "assetbuild.lock").unlink()
    result = run_cli("build", "-f", str(simple_project.manifest), "--provider", "emulator")
    assert result.code == 0, result.err
    assert run_cli("cache", "info").code == 0
    assert not marker.exists(), "a pickled journal or cache row was unpickled"


@pytest.mark.parametrize("how", ["tracked", "symlink"])
def test_a_committed_state_folder_is_not_used(simple_project: ProjectDir, run_cli: RunCli,
                                              tmp_path: Path, how: str) -> None:
    """A state folder that git tracks (a pull request force-added it) or that is a
    symlink is ignored with a warning; the commands still work."""
    root = simple_project.root
    lock_as_built(simple_project)
    _git(root, "init", "-q")
    state = root / ".assetbuild"
    import shutil

    shutil.rmtree(state)  # what lock_as_built's own load made
    if how == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        state.symlink_to(elsewhere)
    else:
        (state / "state").mkdir(parents=True)
        (state / "planted.txt").write_text("from the pull request")
        _git(root, "add", "-f", ".assetbuild/planted.txt")
    result = run_cli("check", "-f", str(simple_project.manifest))
    assert result.code == 0, result.out + result.err
    assert ".assetbuild is not used" in result.err
    assert not (state / "state" / "cache.db").exists(), "the untrusted folder was written"
    if how == "symlink":
        assert list((tmp_path / "elsewhere").iterdir()) == []
    build = run_cli("build", "-f", str(simple_project.manifest), "--provider", "emulator",
                    "--force", "logo")
    assert build.code == 0, build.err
    assert not (state / "journal").exists() and not (state / "build.lock").exists()


@pytest.mark.parametrize("setting", ["lockfile = 'link/assetbuild.lock'", "out_dir = 'link'"])
def test_a_symlinked_folder_does_not_lead_a_write_outside(
        project: ProjectDir, run_cli: RunCli, tmp_path: Path, setting: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "link").symlink_to(outside)
    project.write_manifest(f"""
        version = 1
        [settings]
        {setting}
        [images.profile]
        prompt = "echo pwned"
        """)
    for command in ("check", "build"):
        result = run_cli(command, "-f", str(project.manifest), "--provider", "emulator")
        assert result.code == 2, result.out + result.err
        assert "leads outside the manifest's folder" in result.err
        assert ("lockfile" in result.err) or ("out_dir" in result.err)
    assert list(outside.iterdir()) == []


def test_a_folder_that_becomes_a_symlink_after_a_build_is_caught(
        project: ProjectDir, run_cli: RunCli, tmp_path: Path) -> None:
    """The resolution kept in the state folder is not reused once the lockfile's
    folder leads elsewhere."""
    project.write_manifest("""
        version = 1
        [settings]
        lockfile = "locks/assetbuild.lock"
        [images.profile]
        prompt = "a profile"
        """)
    assert run_cli("build", "-f", str(project.manifest), "--provider", "emulator").code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(project.root / "locks")
    (project.root / "locks").symlink_to(outside)
    result = run_cli("build", "-f", str(project.manifest), "--provider", "emulator")
    assert result.code == 2 and "leads outside" in result.err
    assert list(outside.iterdir()) == []
