"""What a new user meets in the first hour, offline: hand-edited lockfiles, a mistyped
base URL, matrix names in outputs, sizes, targets, running from a subfolder, and the
small words of plan, list, render and a dry run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ProjectDir, RunCli, lock_as_built

MATRIX = """
    version = 1
    [settings]
    provider = "emulator"
    [images.product]
    prompt = "A {{ product }} on a {{ bg }} table"
    matrix = { product = ["anvil", "rope"], bg = ["oak", "pine"] }
"""


@pytest.mark.parametrize(("written", "found"), [('"ten"', "'ten'"), ("1e400", "inf"),
                                                 ("-3", "-3")])
def test_a_bad_lockfile_value_is_a_usage_error_naming_image_and_field(
        simple_project: ProjectDir, run_cli: RunCli, written: str, found: str) -> None:
    lock_as_built(simple_project)
    lockfile = simple_project.root / "assetbuild.lock"
    text = lockfile.read_text()
    edited = text.replace('[images.hero]\n', f'[images.hero]\ncost_points = {written}\n', 1)
    assert edited != text
    lockfile.write_text(edited)
    for command in ("plan", "check", "build"):
        result = run_cli(command, "-f", str(simple_project.manifest), "--provider", "emulator")
        assert result.code == 2, (command, result.err)
        assert "Traceback" not in result.err
        assert "image 'hero'" in result.err and "'cost_points'" in result.err
        assert found in result.err and "git checkout" in result.err
    assert lockfile.read_text() == edited, "the lockfile was left as it is"


def test_a_base_url_without_scheme_is_a_usage_error(
        simple_project: ProjectDir, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEE2AI_API_KEY", "sk-test-key")
    monkeypatch.setenv("SEE2AI_BASE_URL", "127.0.0.1:8000")
    result = run_cli("build", "-f", str(simple_project.manifest))
    assert result.code == 2
    assert "SEE2AI_BASE_URL='127.0.0.1:8000'" in result.err and "Nothing was sent" in result.err
    assert "charged" not in result.err
    assert not (simple_project.root / "assetbuild.lock").exists()


def test_matrix_images_get_web_safe_default_names_and_odd_names_a_warning(
        project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest(MATRIX + """
        [images.card]
        prompt = "card"
        output = "{{ name }}.png"
        matrix = { c = ["blue"] }
    """)
    listed = run_cli("list", "-f", str(project.manifest))
    assert listed.code == 0
    assert "generated/product-anvil-oak.png" in listed.out, "the default output is web-safe"
    assert listed.err.count("'card[c=blue].png' has characters") == 1
    rows = [line for line in listed.out.splitlines() if line]
    status_columns = {line.index(" new") for line in rows}
    assert len(status_columns) == 1, f"list columns are aligned: {rows}"


def test_sizes_wider_than_the_picture_are_refused(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "x"
        resolution = "1K"
        sizes = [512, 5000]
    """)
    result = run_cli("plan", "-f", str(project.manifest))
    assert result.code == 2
    assert "image 'a'" in result.err and "'sizes'" in result.err and "5000" in result.err
    assert "1024 px" in result.err


def test_formats_accept_the_spelling_of_outputs(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest("""
        version = 1
        [images.b]
        prompt = "y"
        formats = ["jpg", "webp"]
    """)
    assert run_cli("plan", "-f", str(project.manifest)).code == 0
    project.write_manifest("""
        version = 1
        [images.b]
        prompt = "y"
        formats = ["gif"]
    """)
    refused = run_cli("plan", "-f", str(project.manifest))
    assert refused.code == 2 and "'gif'" in refused.err


def test_commands_find_the_manifest_upward_and_accept_f_first(
        project: ProjectDir, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write_manifest(MATRIX)
    deeper = project.root / "src" / "pages"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    found = run_cli("plan")
    assert found.code == 0 and "4 images: 4 new" in found.out
    first = run_cli("-f", str(project.manifest), "plan", "product[product=rope,bg=oak]")
    assert first.code == 0 and "1 image: 1 new" in first.out
    (project.root / "src" / ".git").mkdir()  # a nested repository: the search stops there
    missing = run_cli("plan")
    assert missing.code == 2 and "assetbuild.toml" in missing.err


def test_matrix_names_and_slices_as_targets(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest(MATRIX)
    manifest = str(project.manifest)
    exact = run_cli("plan", "-f", manifest, "product[product=anvil,bg=pine]")
    assert exact.code == 0 and "1 image: 1 new" in exact.out
    sliced = run_cli("plan", "-f", manifest, "product[product=anvil]")
    assert sliced.code == 0 and "2 images: 2 new" in sliced.out
    assert "rope" not in sliced.out
    nothing = run_cli("plan", "-f", manifest, "product[product=brick]")
    assert nothing.code == 2


def test_a_dry_run_of_a_shard_lists_only_that_shard(project: ProjectDir,
                                                    run_cli: RunCli) -> None:
    project.write_manifest(MATRIX)
    manifest = str(project.manifest)
    halves = [run_cli("build", "-f", manifest, "--dry-run", "--shard", f"{k}/2")
              for k in (1, 2)]
    listed = [set(re.findall(r"^(product\[\S+\])", half.out, re.MULTILINE))
              for half in halves]
    assert all(half.code == 0 for half in halves)
    assert listed[0] and listed[1] and not listed[0] & listed[1]
    assert len(listed[0] | listed[1]) == 4
    assert not (project.root / "generated").exists(), "a dry run builds nothing"


def test_a_corrupted_spec_hash_is_named_as_such(simple_project: ProjectDir,
                                                run_cli: RunCli) -> None:
    lock_as_built(simple_project)
    lockfile = simple_project.root / "assetbuild.lock"
    text = lockfile.read_text()
    hero = text.index("[images.hero]")
    start = text.index('spec_hash = "', hero) + len('spec_hash = "')
    lockfile.write_text(text[:start] + "0" * 64 + text[start + 64:])
    result = run_cli("plan", "-f", str(simple_project.manifest))
    hero_line = next(line for line in result.out.splitlines() if line.startswith("hero "))
    assert "spec_hash does not match" in hero_line and "references" not in hero_line


def test_words_of_one_image_and_of_unknown_prices(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "x"
    """)
    result = run_cli("plan", "-f", str(project.manifest))
    assert "1 image: 1 new" in result.out and "1 images" not in result.out
    assert "about 0 points" not in result.out and "not known yet" in result.out


def test_render_says_what_upload_stands_for(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "x"
        references = ["ref.png"]
    """)
    Path(project.root / "ref.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = run_cli("render", "-f", str(project.manifest), "a")
    assert result.code == 0 and '"upload:ref.png"' in result.out
    assert "not uploaded yet" in result.err
