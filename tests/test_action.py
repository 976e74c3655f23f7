"""The GitHub Action: its steps run as a script in a temporary repository (as the
runner would run them, with its files for outputs and the step summary), and it and
the documented workflow pass actionlint and zizmor."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # mkdocs brings it; no stubs needed for a test

from tests.conftest import ProjectDir
from tests.review.conftest import git

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class ActionRun:
    """Runs a composite action's steps the way the runner does, in ``workdir``."""

    def __init__(self, workdir: Path, inputs: dict[str, str], temp: Path) -> None:
        action = yaml.safe_load((ROOT / "action.yml").read_text())
        self.steps: list[dict[str, Any]] = action["runs"]["steps"]
        defaults = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
        self.inputs = defaults | inputs
        self.workdir, self.temp = workdir, temp
        self.outputs: dict[str, dict[str, str]] = {}
        self.summary = temp / "summary.md"
        self.uploaded: dict[str, Path] = {}
        self.failed = False
        self.ran: list[str] = []

    def value(self, expression: str) -> str:
        context = {"github.action_path": str(ROOT), "runner.temp": str(self.temp),
                   "github.event.pull_request.base.sha": ""}
        if expression in context:
            return context[expression]
        if expression.startswith("inputs."):
            return self.inputs[expression.removeprefix("inputs.")]
        step, _, name = expression.removeprefix("steps.").partition(".outputs.")
        return self.outputs.get(step, {}).get(name, "")

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m[1]), text)

    def condition(self, text: str) -> bool:
        """The few ``if:`` forms the action uses: always(), ==, != and &&."""
        result = True
        for part in text.split("&&"):
            part = part.strip()
            if part == "always()":
                continue
            left, op, right = re.fullmatch(r"(\S+) (==|!=) '(.*)'", part).groups()  # type: ignore[union-attr]
            result = result and ((self.value(left) == right) == (op == "=="))
        return result

    def run(self) -> int:
        """Run every step; return the exit code of the last step that ran (0 if all passed)."""
        code = 0
        for step in self.steps:
            guard = step.get("if", "success()")
            if "always()" not in guard and self.failed:
                continue
            if guard != "success()" and not self.condition(guard):
                continue
            self.ran.append(step["name"])
            code = self._uses(step) if "uses" in step else self._run(step)
            self.failed = self.failed or code != 0
        return code

    def _uses(self, step: dict[str, Any]) -> int:
        assert re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", step["uses"]), "pinned to a commit"
        assert step["uses"].startswith("actions/upload-artifact@"), step["uses"]
        self.uploaded[self.substitute(step["with"]["name"])] = Path(
            self.substitute(step["with"]["path"]))
        return 0

    def _run(self, step: dict[str, Any]) -> int:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "no expression inside a script (template injection)"
        output = self.temp / f"output-{len(self.ran)}"
        output.touch()
        env = {**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY":
               str(self.summary), "RUNNER_TEMP": str(self.temp),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env |= {key: self.substitute(str(value)) for key, value in step.get("env", {}).items()}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               step["run"]], cwd=self.workdir, env=env, timeout=300,
                              check=False)
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text().splitlines() if line]
            self.outputs[step["id"]] = dict(pairs)
        return done.returncode


@pytest.fixture
def site(project: ProjectDir) -> ProjectDir:
    """A website repository with two images, built on the emulator and committed."""
    project.write_manifest('version = 1\n[settings]\nprovider = "emulator"\n'
                           '[images.hero]\nprompt = "a calm hero banner"\nresolution = "1K"\n'
                           '[images.icon]\nprompt = "a small cup icon"\nresolution = "1K"\n')
    project.write(".gitignore", ".assetbuild/\n")
    git(project.root, "init", "-q", "-b", "main")
    action = ActionRun(project.root, {"command": "build", "install": "false"},
                       project.root.parent / "temp-0")
    action.temp.mkdir()
    assert action.run() == 0
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", "first build")
    project.manifest.write_text(project.manifest.read_text().replace("calm", "stormy"))
    return project


def _action(site: ProjectDir, tmp_path: Path, **inputs: str) -> ActionRun:
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    return ActionRun(site.root, {"install": "false", **inputs}, temp)


def test_build_writes_the_review_to_the_summary_and_uploads_it(
        site: ProjectDir, tmp_path: Path) -> None:
    action = _action(site, tmp_path, command="build")
    assert action.run() == 0
    summary = action.summary.read_text()
    assert "| [hero](" in summary and "| changed |" in summary
    assert "[icon](" not in summary, "only the changed image has a row"
    uploaded = action.uploaded["assetbuild-review"]
    assert (uploaded / "index.html").exists() and any((uploaded / "thumbs").iterdir())
    assert action.outputs["command"]["exit-code"] == "0"


def test_a_stale_check_fails_the_action_after_the_review_is_written(
        site: ProjectDir, tmp_path: Path) -> None:
    action = _action(site, tmp_path, command="check")
    assert action.run() == 1, "check's exit code for a stale image"
    assert action.outputs["command"]["exit-code"] == "1"
    assert "No image changed." in action.summary.read_text(), "nothing was rebuilt"
    assert "Pass on the command's exit code" in action.ran
    assert "Upload the review" in action.ran


def test_a_command_that_is_not_check_or_build_is_refused(
        site: ProjectDir, tmp_path: Path) -> None:
    action = _action(site, tmp_path, command="prune --yes", review="false")
    assert action.run() != 0
    assert "Upload the review" not in action.ran
    assert (site.root / "assetbuild.lock").exists(), "nothing was pruned"


def _documented_workflow() -> str:
    text = (ROOT / "docs" / "recipes.md").read_text()
    found = re.search(r"<!-- workflow: images.yml -->\n```yaml\n(.*?)```", text, re.S)
    assert found is not None, "docs/recipes.md shows the workflow"
    return found[1]


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (the dev extra installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def test_the_action_and_the_documented_workflow_pass_actionlint_and_zizmor(
        tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "images.yml").write_text(_documented_workflow())
    shutil.copy(ROOT / ".github" / "workflows" / "assetbuild.yml", workflows)
    shutil.copy(ROOT / "action.yml", tmp_path)
    git(tmp_path, "init", "-q")  # actionlint finds its project by the repository
    for command in ([_tool("actionlint"), "-no-color"],
                    [_tool("zizmor"), "--offline", "--no-progress", "action.yml",
                     ".github/workflows"]):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_wrong_input(tmp_path: Path) -> None:
    # The lint is real: a workflow passing an input the action lacks fails it.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    wrong = (ROOT / ".github/workflows/assetbuild.yml").read_text().replace(
        "command: build", "comand: build")
    (workflows / "assetbuild.yml").write_text(wrong)
    shutil.copy(ROOT / "action.yml", tmp_path)
    git(tmp_path, "init", "-q")
    done = subprocess.run([_tool("actionlint"), "-no-color"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and '"comand" is not defined' in done.stdout
