"""Hostile and broken input: fuzzed manifests, escapes, corrupt state; never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetbuild.cli import main
from tests.conftest import ProjectDir, RunCli, lock_as_built

KEYS = ["version", "settings", "vars", "defaults", "images", "prompt", "prompt_file", "output",
        "aspect_ratio", "resolution", "references", "matrix", "jobs", "provider", "timeout",
        "out_dir", "lockfile", "hero", "card[x]", "../x", "", "ünïcödé", "a" * 300]
scalars = st.one_of(
    st.text(max_size=40), st.integers(), st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=False), st.booleans(),
    st.sampled_from(["{{ x }}", "{% for i in range(99999999) %}", "../../etc/passwd",
                     "/etc/passwd", "image:hero", "image:nope", "file:///etc/passwd",
                     "{{ ''.__class__ }}", "1:1", "4K", "see2ai", "x" * 25_000]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children,
                        max_size=5),
    ),
    max_leaves=25,
)
documents = st.fixed_dictionaries(
    {}, optional={"version": st.one_of(st.just(1), scalars),
                  "settings": values, "vars": values, "defaults": values,
                  "images": st.dictionaries(st.sampled_from(KEYS), values, max_size=4)})


def run_quietly(args: list[str]) -> int:
    return main(args)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=documents)
def test_fuzzed_manifests_exit_0_or_2_with_a_message(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "assetbuild.toml"
        path.write_text(tomli_w.dumps(document), encoding="utf-8")
        for command in ("plan", "check"):
            code = run_quietly([command, "-f", str(path), "--json"])
            assert code in (0, 1, 2)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "assetbuild.toml"
        path.write_bytes(raw)
        assert run_quietly(["plan", "-f", str(path)]) in (0, 2)


def test_deep_nesting_is_an_error_not_a_crash(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest("version = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_cli("plan", "-f", str(project.manifest))
    assert result.code == 2 and result.err.startswith("error:")


def test_corrupt_state_is_reported_not_overwritten(
    simple_project: ProjectDir, run_cli: RunCli
) -> None:
    lock_as_built(simple_project)
    import shutil

    state = simple_project.root / ".assetbuild" / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    result = run_cli("check", "-f", str(simple_project.manifest))
    assert result.code == 2 and "cannot open this cache" in result.err
    assert "delete the folder" in result.err
    assert (state / "cache.db").read_bytes() == b"this is not a sqlite database" * 100


def test_corrupt_lockfile_stops_a_build_before_anything_is_sent(
    simple_project: ProjectDir, run_cli: RunCli
) -> None:
    (simple_project.root / "assetbuild.lock").write_text("version = 1\n[images.x\n")
    result = run_cli("build", "-f", str(simple_project.manifest), "--provider", "emulator")
    assert result.code == 2 and "is not valid TOML" in result.err
    assert (simple_project.root / "assetbuild.lock").read_text() == "version = 1\n[images.x\n"
    assert not (simple_project.root / "generated").exists()


def test_output_paths_cannot_escape(project: ProjectDir, run_cli: RunCli) -> None:
    outside = project.root.parent / "outside"
    outside.mkdir()
    (project.root / "generated").mkdir()
    (project.root / "generated" / "link").symlink_to(outside)
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "a"
        output = "link/a.png"
        [images.b]
        prompt = "b"
        output = "../../b.png"
        [images.c]
        prompt = "c"
        output = "/tmp/c.png"
    """)
    result = run_cli("build", "-f", str(project.manifest), "--provider", "emulator")
    assert result.code == 2
    for name in ("a", "b", "c"):
        assert f"image '{name}': field 'output'" in result.err
    assert list(outside.iterdir()) == []
