"""The offline commands end to end: plan, check, render, list, graph; exit codes; --json."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from tests.conftest import ProjectDir, RunCli, lock_as_built


def test_plan_and_check_on_a_new_project(simple_project: ProjectDir, run_cli: RunCli) -> None:
    manifest = str(simple_project.manifest)
    result = run_cli("plan", "-f", manifest)
    assert result.code == 0
    assert "6 images: 6 new" in result.out
    check = run_cli("check", "-f", manifest)
    assert check.code == 1 and "hero" in check.out and "assetbuild build" in check.out


def test_json_shapes(simple_project: ProjectDir, run_cli: RunCli) -> None:
    lock_as_built(simple_project)
    (simple_project.root / "generated/hero.png").unlink()
    data = json.loads(run_cli("plan", "-f", str(simple_project.manifest), "--json").out)
    assert data["up_to_date"] is False
    assert data["counts"] == {"up-to-date": 5, "missing-output": 1}
    assert data["actions"] == {"build": 0, "resume": 0, "restore": 1, "none": 5}
    hero = next(i for i in data["images"] if i["name"] == "hero")
    assert set(hero) == {"name", "status", "action", "reason", "changed", "output",
                         "spec_hash", "dependencies"}
    assert (hero["status"], hero["dependencies"]) == ("missing-output", ["logo"])
    check = run_cli("check", "-f", str(simple_project.manifest), "--json")
    assert check.code == 1 and json.loads(check.out)["counts"]["missing-output"] == 1


def test_hand_made_lockfile_then_one_prompt_edit(project: ProjectDir, run_cli: RunCli) -> None:
    """The acceptance check: a lockfile written by hand, as a build would write it."""
    project.write_manifest("""
        version = 1
        [images.hero]
        prompt = "A calm hero banner"
        aspect_ratio = "16:9"
        [images.logo]
        prompt = "A logo"
    """)
    lines = ["version = 1", ""]
    for name, prompt, aspect in (("hero", "A calm hero banner", "16:9"),
                                 ("logo", "A logo", "auto")):
        spec = {"action": "see2ai_image_generation_v1", "provider": "see2ai", "prompt": prompt,
                "aspect_ratio": aspect, "resolution": "2K", "references": []}
        spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"),
                                              ensure_ascii=False).encode()).hexdigest()
        data = f"png bytes of {name}".encode()
        project.write(f"generated/{name}.png", "")
        (project.root / f"generated/{name}.png").write_bytes(data)
        lines += [
            f'[images.{name}]', f'spec_hash = "{spec_hash}"', 'provider = "see2ai"',
            f'task_id = "t-{name}"', 'state = "completed"', 'model = "m"',
            f'result_urls = ["https://cdn.example/{name}.png"]',
            f'outputs = [{{ path = "generated/{name}.png", sha256 = '
            f'"{hashlib.sha256(data).hexdigest()}", bytes = {len(data)} }}]',
            f'request = {{ prompt = "{prompt}", input_urls = [], aspect_ratio = "{aspect}", '
            'resolution = "2K" }', "",
        ]
    project.write("assetbuild.lock", "\n".join(lines))
    assert run_cli("check", "-f", str(project.manifest)).code == 0

    project.manifest.write_text(project.manifest.read_text().replace("A logo", "A bold logo"))
    result = run_cli("check", "-f", str(project.manifest))
    assert result.code == 1
    assert "logo" in result.out and "prompt changed" in result.out
    assert "hero" not in result.out


def test_check_passes_quietly_when_up_to_date(simple_project: ProjectDir, run_cli: RunCli) -> None:
    lock_as_built(simple_project)
    result = run_cli("check", "-f", str(simple_project.manifest), "-q")
    assert (result.code, result.out) == (0, "")
    assert "6 images up to date." in run_cli("check", "-f", str(simple_project.manifest)).out


def test_render_prints_the_request(simple_project: ProjectDir, run_cli: RunCli) -> None:
    urls = lock_as_built(simple_project)
    result = run_cli("render", "-f", str(simple_project.manifest), "hero")
    assert result.code == 0
    assert json.loads(result.out) == {
        "prompt": "A calm hero banner for Acme",
        "input_urls": ["https://example.com/ref.jpg", urls["logo"]],
        "aspect_ratio": "16:9",
        "resolution": "2K",
    }
    several = json.loads(run_cli("render", "-f", str(simple_project.manifest), "card*").out)
    assert len(several) == 4 and several["card[color=red,ratio=9:16]"]["aspect_ratio"] == "9:16"


def test_list_and_graph(simple_project: ProjectDir, run_cli: RunCli) -> None:
    manifest = str(simple_project.manifest)
    listed = json.loads(run_cli("list", "-f", manifest, "--json").out)
    assert [i["name"] for i in listed][:2] == ["logo", "hero"]
    assert "generated/cards/red-1x1.png" in run_cli("list", "-f", manifest).out
    dot = run_cli("graph", "-f", manifest).out
    assert dot.startswith("digraph assetbuild {") and '"logo" -> "hero";' in dot
    mermaid = run_cli("graph", "-f", manifest, "--format", "mermaid").out
    assert mermaid.startswith("flowchart LR") and "n0 --> n1" in mermaid
    edges = json.loads(run_cli("graph", "-f", manifest, "--json").out)["edges"]
    assert edges == [{"from": "logo", "to": "hero"}]


def test_usage_errors_exit_2(simple_project: ProjectDir, run_cli: RunCli) -> None:
    result = run_cli("plan", "-f", str(simple_project.manifest), "nope*")
    assert result.code == 2 and "no image matches target 'nope*'" in result.err
    assert run_cli("plan", "--bogus").code == 2
    assert run_cli("plan", "-f", str(simple_project.root / "missing.toml")).code == 2


def test_manifest_errors_have_no_traceback(project: ProjectDir) -> None:
    project.write_manifest(
        "version = 1\n[images.hero]\nprompt = '{{ nope }}'\naspect_ratio='2:1'\n")
    result = subprocess.run(
        [sys.executable, "-m", "assetbuild", "check", "-f", str(project.manifest)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    where = f"{project.manifest}:3: image 'hero': field 'prompt': undefined variable"
    assert where in result.stderr
    assert "field 'aspect_ratio': '2:1' is not one of" in result.stderr


def test_version_and_help(run_cli: RunCli) -> None:
    assert "assetbuild, version" in run_cli("--version").out
    assert "plan" in run_cli("--help").out
