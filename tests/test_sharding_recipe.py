"""The sharding recipe of docs/build-model.md, step by step: runners that build a share
each and upload only what they built, a merge job that downloads everything into its
own checkout, merges and checks. Merging twice changes nothing."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ProjectDir, RunCli

IMAGES = "".join(f'[images.tile{i}]\nprompt = "tile {i}, {{{{ mood }}}}"\n' for i in range(8))


def manifest(mood: str) -> str:
    return (f'version = 1\n[settings]\nprovider = "emulator"\n[vars]\nmood = "{mood}"\n'
            + IMAGES)


def test_the_sharding_recipe(project: ProjectDir, run_cli: RunCli, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    project.write_manifest(manifest("calm"))
    assert run_cli("build", "-f", str(project.manifest)).code == 0  # what main holds
    project.write_manifest(manifest("bold"))  # the change a pull request makes
    checkout = tmp_path / "checkout"
    shutil.copytree(project.root, checkout, ignore=shutil.ignore_patterns(".assetbuild"))

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for shard in (1, 2):
        runner = tmp_path / f"runner-{shard}"
        shutil.copytree(checkout, runner)
        monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(tmp_path / f"cache-{shard}"))
        monkeypatch.chdir(runner)
        built = run_cli("build", "--shard", f"{shard}/2")
        assert built.code == 0, built.err
        listed = run_cli("lock", "files", f"assetbuild.lock.shard-{shard}-of-2")
        assert listed.code == 0, listed.err
        for line in listed.out.split():  # upload-artifact of exactly these paths
            (artifacts / line).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(runner / line, artifacts / line)

    merge = tmp_path / "merge"
    shutil.copytree(checkout, merge)
    shutil.copytree(artifacts, merge, dirs_exist_ok=True)  # download-artifact, merged
    monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(tmp_path / "cache-merge"))
    monkeypatch.chdir(merge)
    merged = run_cli("lock", "merge")
    assert merged.code == 0 and "8 image(s) updated" in merged.out, merged.out + merged.err
    again = run_cli("lock", "merge")
    assert "0 image(s) updated" in again.out, "a second merge must change nothing"
    assert run_cli("lock", "merge", "--remove").code == 0
    assert not list(merge.glob("*.shard-*"))
    check = run_cli("check")
    assert check.code == 0, check.out + check.err
    lock = tomllib.loads((merge / "assetbuild.lock").read_text())["images"]
    assert all("bold" in entry["request"]["prompt"] for entry in lock.values())
