"""Hostile templates in a checkout: deep nesting, huge loops, huge numbers and strings.
Each is a manifest error (exit 2, naming the image and the field) within seconds; no
traceback, no runaway CPU or memory."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ProjectDir, RunCli

HOSTILE = {
    "300 nested parentheses": "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "21 nested for": "".join(f"{{% for a{i} in [1] %}}" for i in range(21)) + "x"
                     + "{% endfor %}" * 21,
    "200 nested if": "{% if true %}" * 200 + "x" + "{% endif %}" * 200,
    "attribute of a list": "{{ [1].x or 1 }}",
    "nested range loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
                          "{% endfor %}{% endfor %}",
    "tower of powers": "{{ ((9**999)**999)**999 }}",
    "huge join": "{{ range(100000)|join('x'*99999) }}",
    "huge replace": "{{ ('x'*99999)|replace('x', 'y'*99999) }}",
    "doubling through a dict": "{% set d = dict(s='x') %}{% for i in range(64) %}"
                               "{% set _ = d.update(s=d.s ~ d.s) %}{% endfor %}{{ d.s }}",
    "a centred giant": "{{ 'x'|center(10**9) }}",
    "a file that includes itself": "x {% include 'p.j2' %}",
    "macro fan-out": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                     "{% endmacro %}{{ f(40) }}",
    "string iteration": "{% for a in 'x'*99999 %}{% for b in 'y'*99999 %}{% endfor %}"
                        "{% endfor %}",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_template_is_a_manifest_error(project: ProjectDir, run_cli: RunCli,
                                                case: str) -> None:
    (project.root / "p.j2").write_text(HOSTILE[case], encoding="utf-8")
    project.write_manifest("""
        version = 1
        [images.inline]
        prompt = "ok"
        output = "inline.png"
        [images.evil]
        prompt_file = "p.j2"
        """)
    started = time.monotonic()
    result = run_cli("check", "-f", str(project.manifest))
    assert time.monotonic() - started < 20, "bounded"
    assert result.code == 2, result.out + result.err
    assert "image 'evil'" in result.err and "prompt" in result.err
    assert "Traceback" not in result.err


def test_a_plain_prompt_over_the_limit_is_refused(project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest(f"""
        version = 1
        [images.long]
        prompt = "{'x' * 20_001}"
        """)
    result = run_cli("check", "-f", str(project.manifest))
    assert result.code == 2 and "image 'long'" in result.err and "20000" in result.err.replace(
        ",", "")
