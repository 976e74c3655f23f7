"""Generated hostile manifests (and lockfiles beside them) through plan and check, in
process: every one ends in exit 0, 1 or 2 with no traceback and no hang.

The short run (300 examples) is in every test run; the long one (5,000) is marked
slow. Each example builds a manifest from pieces a hostile checkout would use:
template bombs, escapes, deep nesting, odd names and paths, huge or wrong values.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetbuild.cli import main
from tests.security.test_templates import HOSTILE

NAMES = ["hero", "card", "a.b-c_d", "x" * 300, "", "bad name", "ünï", "image:hero", "..",
         "Hero", "HERO", "ß", "SS"]
PATHS = ["out.png", "../escape.png", "/etc/passwd", "a/../../b.png", "x" * 300 + ".png",
         "sub/dir/y.webp", "bad.gif", "C:\\win.png", "nul\0.png", "{{ name }}.png",
         "{{ missing }}.png", "Straße.png", "STRASSE.png", "café.png", "cafe\u0301.png",
         "link/out.png", "."]
REFERENCES = ["https://example.com/r.png", "http://127.0.0.1/x", "file:///etc/passwd",
              "image:hero", "image:nope", "image:card", "prompts/p.j2", "missing.png",
              "../outside.png", "/abs.png", "r" * 300 + ".png", ""]
TEXT = st.text(max_size=30)
TEMPLATES = st.one_of(TEXT, st.sampled_from(list(HOSTILE.values())),
                      st.sampled_from(["{{ brand }}", "{{ name }}", "{% include 'p.j2' %}",
                                       "{{ ''.__class__.__mro__ }}", "{{ range(10**9) }}",
                                       "{{ cycler }}", "{{ self }}", "{{ x" * 3,
                                       "x" * 20_001, "{{ 'a' * 100001 }}"]))
SCALARS = st.one_of(TEXT, st.integers(), st.integers(min_value=10**19, max_value=10**30),
                    st.floats(), st.booleans(), st.sampled_from(["1:1", "4K", "auto"]))
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(st.sampled_from(NAMES), inner,
                                                     max_size=3)),
    max_leaves=12)


@st.composite
def images(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["prompt"] = draw(TEMPLATES)
    else:
        body["prompt_file"] = draw(st.sampled_from(["prompts/p.j2", "../p.j2", "nope.j2"]))
    optional = {
        "output": st.one_of(st.sampled_from(PATHS), TEMPLATES),
        "aspect_ratio": st.one_of(st.sampled_from(["16:9", "1:1", "{{ r }}", "5:4"]), SCALARS),
        "resolution": st.one_of(st.sampled_from(["1K", "2K", "4K", "8K"]), SCALARS),
        "references": st.lists(st.sampled_from(REFERENCES), max_size=3),
        "vars": st.dictionaries(st.sampled_from(["r", "brand", "mood", "1bad"]), VALUES,
                                max_size=3),
        "matrix": st.dictionaries(st.sampled_from(["r", "color", "x"]),
                                  st.lists(st.sampled_from(["1:1", "red", 1, True, 2.5]),
                                           max_size=4), max_size=2),
        "sizes": st.lists(st.one_of(st.integers(-5, 9000), SCALARS), max_size=3),
        "formats": st.lists(st.sampled_from(["png", "jpeg", "jpg", "webp", "gif"]),
                            max_size=3),
        "takes": SCALARS,
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            body[key] = draw(strategy)
    return body


@st.composite
def projects(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    document: dict[str, Any] = {"version": draw(st.one_of(st.just(1), SCALARS))}
    if draw(st.booleans()):
        document["settings"] = draw(st.fixed_dictionaries({}, optional={
            "out_dir": st.sampled_from(["generated", "..", "link", "/tmp", "a" * 300]),
            "lockfile": st.sampled_from(["assetbuild.lock", "link/x.lock", "../x.lock"]),
            "jobs": SCALARS, "timeout": SCALARS,
            "provider": st.sampled_from(["see2ai", "emulator", "other"])}))
    document["vars"] = draw(st.dictionaries(st.sampled_from(["brand", "r", "x-y"]), VALUES,
                                            max_size=3))
    document["images"] = draw(st.dictionaries(st.sampled_from(NAMES), images(), max_size=4))
    lockfile = None
    if draw(st.integers(0, 3)) == 0:
        entry = draw(st.fixed_dictionaries({}, optional={
            "spec_hash": st.one_of(TEXT, SCALARS), "provider": SCALARS, "task_id": SCALARS,
            "state": SCALARS, "result_urls": st.lists(SCALARS, max_size=2),
            "request": VALUES, "outputs": st.lists(VALUES, max_size=2),
            "cost_points": SCALARS, "cost_time": SCALARS, "input_tokens": SCALARS,
            "warnings": st.lists(SCALARS, max_size=2), "derived": VALUES}))
        lockfile = {"version": draw(st.one_of(st.just(1), SCALARS)),
                    "images": {draw(st.sampled_from(NAMES)): entry}}
    return document, lockfile


def _run_one(document: dict[str, Any], lockfile: dict[str, Any] | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "prompts").mkdir()
        (root / "prompts" / "p.j2").write_text("{{ brand }} {% include 'prompts/p.j2' %}")
        (root / "link").symlink_to("/tmp")
        path = root / "assetbuild.toml"
        try:
            path.write_text(tomli_w.dumps(document), encoding="utf-8")
            if lockfile is not None:
                (root / "assetbuild.lock").write_text(tomli_w.dumps(lockfile))
        except (ValueError, TypeError, UnicodeEncodeError):
            return  # not representable as TOML: nothing a checkout could hold
        for command in ("plan", "check"):
            started = time.monotonic()
            code = main([command, "-f", str(path), "--json"])
            assert code in (0, 1, 2), f"{command} exited {code}"
            assert time.monotonic() - started < 30, f"{command} took too long"


FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(case=projects())
def test_generated_manifests_never_crash(case: tuple[dict[str, Any], dict[str, Any] | None],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _run_one(*case)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.soak  # 4-6 minutes on the 2-core machine: `pytest --soak`; CI runs the 300 above
@pytest.mark.timeout(1200)  # each example is timed
@settings(FUZZ, max_examples=5_000)
@given(case=projects())
def test_many_generated_manifests_never_crash(
        case: tuple[dict[str, Any], dict[str, Any] | None],
        capsys: pytest.CaptureFixture[str]) -> None:
    _run_one(*case)
    assert "Traceback" not in capsys.readouterr().err
