"""Limits a hostile (or careless) manifest meets before anything is paid for: names and
paths the filesystem would refuse or fold together, and expansions too large to run."""

from __future__ import annotations

import pytest

from tests.conftest import ProjectDir, RunCli


def check(project: ProjectDir, run_cli: RunCli, manifest: str) -> str:
    project.write_manifest(manifest)
    result = run_cli("check", "-f", str(project.manifest))
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    return result.err


def test_deeply_dotted_vars_are_refused(project: ProjectDir, run_cli: RunCli) -> None:
    key = ".".join(["a"] * 20_000)
    err = check(project, run_cli, f'version = 1\n[vars]\n{key} = 1\n'
                                  '[images.x]\nprompt = "p"\n')
    assert "dotted more than" in err or "nested too deeply" in err


def test_the_whole_matrix_expansion_is_capped(project: ProjectDir, run_cli: RunCli) -> None:
    values = ", ".join(str(i) for i in range(100))
    images = "".join(f'[images.m{i}]\nprompt = "{{{{ a }}}} {{{{ b }}}}"\n'
                     f'matrix = {{ a = [{values}], b = [{values}] }}\n' for i in range(30))
    err = check(project, run_cli, "version = 1\n" + images)
    assert "images in all" in err


def test_a_reference_path_component_over_255_characters(project: ProjectDir,
                                                         run_cli: RunCli) -> None:
    err = check(project, run_cli, f"""
        version = 1
        [images.x]
        prompt = "p"
        references = ["{'r' * 300}.png"]
        """)
    assert "image 'x'" in err and "references" in err and "255" in err


def test_an_output_name_over_255_characters_fails_check(project: ProjectDir,
                                                         run_cli: RunCli) -> None:
    err = check(project, run_cli, f"""
        version = 1
        [images.x]
        prompt = "p"
        output = "{'o' * 300}.png"
        """)
    assert "image 'x'" in err and "output" in err and "255" in err


@pytest.mark.parametrize(("first", "second"), [("Straße.png", "STRASSE.png"),
                                                ("caf\u00e9.png", "cafe\u0301.png"),
                                                ("Hero.png", "hero.png")])
def test_outputs_that_one_filesystem_folds_together_collide(
        project: ProjectDir, run_cli: RunCli, first: str, second: str) -> None:
    err = check(project, run_cli, f"""
        version = 1
        [images.a]
        prompt = "a"
        output = "{first}"
        [images.b]
        prompt = "b"
        output = "{second}"
        """)
    assert "same file" in err or "collide" in err


def test_a_derived_size_that_collides_with_another_output(project: ProjectDir,
                                                          run_cli: RunCli) -> None:
    err = check(project, run_cli, """
        version = 1
        [images.a]
        prompt = "a"
        output = "hero.png"
        sizes = [640]
        [images.b]
        prompt = "b"
        output = "hero-640w.png"
        """)
    assert "hero-640w.png" in err


def test_vars_nested_too_deeply_are_refused(project: ProjectDir, run_cli: RunCli) -> None:
    nested = "[" * 40 + "1" + "]" * 40
    err = check(project, run_cli, f'version = 1\n[vars]\nx = {nested}\n'
                                  '[images.x]\nprompt = "p"\n')
    assert "nested too deeply" in err and "vars" in err


def test_an_output_where_another_image_numbers_its_results(project: ProjectDir,
                                                           run_cli: RunCli) -> None:
    err = check(project, run_cli, """
        version = 1
        [images.a]
        prompt = "a"
        output = "hero.png"
        [images.b]
        prompt = "b"
        output = "hero-2.png"
        """)
    assert "further result of image 'a'" in err
