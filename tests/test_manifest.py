"""Manifest validation: every field, every error named with file, image, field, line."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetbuild.errors import ManifestError
from assetbuild.manifest import load_manifest
from tests.conftest import ProjectDir


def problems_of(project: ProjectDir, text: str) -> list[str]:
    project.write_manifest(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(project.manifest)
    return [str(p) for p in info.value.problems]


def test_valid_manifest_reads_every_section(simple_project: ProjectDir) -> None:
    manifest = load_manifest(simple_project.manifest)
    assert manifest.settings.jobs == 8 and manifest.settings.provider == "see2ai"
    assert manifest.vars == {"brand": "Acme"}
    names = [image.name for image in manifest.images]
    assert names == ["logo", "hero", "card"]
    card = manifest.images[2]
    assert card.matrix == (("color", ("red", "blue")), ("ratio", ("1:1", "9:16")))
    assert manifest.images[1].references == ("https://example.com/ref.jpg", "image:logo")


def test_settings_are_read(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [settings]
        out_dir = "art"
        lockfile = "locks/art.lock"
        jobs = 3
        provider = "emulator"
        timeout = 60
        [defaults]
        resolution = "4K"
        aspect_ratio = "3:4"
    """)
    manifest = load_manifest(project.manifest)
    assert manifest.settings.out_dir == "art"
    assert manifest.lockfile_path == project.root / "locks/art.lock"
    assert (manifest.settings.jobs, manifest.settings.provider) == (3, "emulator")
    assert manifest.settings.timeout == 60.0
    assert (manifest.defaults.resolution, manifest.defaults.aspect_ratio) == ("4K", "3:4")


def test_unknown_keys_suggest_the_closest_name(project: ProjectDir) -> None:
    found = problems_of(project, """
        version = 1
        [setings]
        jobs = 2
        [images.hero]
        promt = "x"
        prompt = "y"
    """)
    assert any("'setings'" in p and "did you mean 'settings'" in p and ":2:" in p
               for p in found)
    assert any("image 'hero'" in p and "'promt'" in p and "did you mean 'prompt'" in p
               and ":5:" in p for p in found)


def test_every_problem_is_reported_at_once(project: ProjectDir) -> None:
    found = problems_of(project, """
        version = 1
        [settings]
        jobs = 0
        provider = "see2aii"
        timeout = -1
        out_dir = "../elsewhere"
        [images.a]
        prompt = 3
        [images.b]
        prompt = "x"
        prompt_file = "p.j2"
        [images."bad name"]
        prompt = "x"
        [images.c]
        prompt = "x"
        matrix = { color = [] }
        references = "not-a-list"
    """)
    text = "\n".join(found)
    for expected in ("field 'jobs'", "field 'provider'", "did you mean 'see2ai'",
                     "field 'timeout'", "field 'out_dir'", "image 'a': field 'prompt': must be "
                     "a string", "not both", "image 'bad name'", "field 'matrix'",
                     "field 'references'"):
        assert expected in text, expected
    assert len(found) == 9


def test_every_problem_names_the_file(project: ProjectDir) -> None:
    for problem in problems_of(project, "version = 1\n[images.a]\nprompt = 1\n"):
        assert problem.startswith(f"{project.manifest}:3:")


@pytest.mark.parametrize(("text", "expected"), [
    ("[images.a]\nprompt = 'x'\n", "is required: add `version = 1`"),
    ("version = 2\n", "manifest version 2 is not supported"),
    ("version = '1'\n", "must be the integer 1"),
    ("version = 1\nimages = 3\n", "field 'images': must be a table"),
    ("version = 1\n[images.a]\n", "field 'prompt': is required"),
    ("version = 1\n[images.a]\nprompt_file = '/etc/passwd'\n", "is an absolute path"),
    ("version = 1\n[images.a]\nprompt = 'x'\nvars = { 1x = 2 }\n", "not a valid identifier"),
    ("version = 1\n[images.a]\nprompt = 'x'\nmatrix = { c = ['r', 'r'] }\n", "lists a value twice"),
    ("version = 1\n[defaults]\nresolution = 2\n", "field 'resolution': must be a string"),
    ("version = 1\n[images.a]\nprompt = 'x'\nsizes = [640, 640]\n", "distinct widths"),
    ("version = 1\n[images.a]\nprompt = 'x'\nsizes = [8]\n", "from 16 to 16384"),
    ("version = 1\n[images.a]\nprompt = 'x'\nformats = ['gif']\n", "png, jpeg, webp"),
])
def test_single_problems(project: ProjectDir, text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(project, text))


def test_broken_toml_gives_the_line(project: ProjectDir) -> None:
    found = problems_of(project, "version = 1\n[images.x\nprompt = 'a'\n")
    assert len(found) == 1
    assert f"{project.manifest}:2:" in found[0] and "not valid TOML" in found[0]


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such manifest file"):
        load_manifest(tmp_path / "nope.toml")


def test_inline_image_tables_are_located(project: ProjectDir) -> None:
    found = problems_of(project, 'version = 1\n[images]\nhero = { prompt = 1 }\n')
    assert found and ":3:" in found[0] and "image 'hero'" in found[0]
