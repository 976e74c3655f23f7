"""Fitting into a repository: `assetbuild init` and the pre-commit hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ProjectDir, RunCli, Served

REPO = Path(__file__).resolve().parents[1]


def test_init_writes_a_working_starter(project: ProjectDir, run_cli: RunCli) -> None:
    (project.root / ".gitignore").write_text("node_modules/\n")
    result = run_cli("init", "-f", str(project.manifest))
    assert result.code == 0 and "assetbuild build" in result.out
    assert (project.root / ".gitignore").read_text() == "node_modules/\n.assetbuild/\n"
    plan = run_cli("plan", "-f", str(project.manifest), "--json")
    assert plan.code == 0 and '"icon[color=orange]"' in plan.out
    again = run_cli("init", "-f", str(project.manifest))
    assert again.code == 2 and "exists already" in again.err
    assert run_cli("init", "-f", str(project.manifest), "--force").code == 0
    assert (project.root / ".gitignore").read_text().count(".assetbuild/") == 1


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True)


@dataclass(frozen=True)
class HookSource:
    """This checkout as a repository a user's config names, and a shared pre-commit home
    (the hook's environment is installed once for every hook test)."""

    repo: Path
    rev: str
    home: Path

    def config(self) -> str:
        return (f"repos:\n  - repo: {self.repo}\n    rev: {self.rev}\n"
                "    hooks:\n      - id: assetbuild-check\n")


@pytest.fixture(scope="session")
def hook_source(tmp_path_factory: pytest.TempPathFactory) -> HookSource:
    """The working tree as it is (committed or not, less what git ignores), committed
    into a scratch repository, as `pre-commit try-repo` would, but once."""
    source = tmp_path_factory.mktemp("hook-source")
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "hook source", cwd=source)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, check=True,
                         capture_output=True, text=True).stdout.strip()
    return HookSource(source, rev, tmp_path_factory.mktemp("pre-commit-home"))


def _hook_runner(project: ProjectDir, hook_source: HookSource, env: dict[str, str],
                 *args: str) -> Callable[[], subprocess.CompletedProcess[str]]:
    """Runs the hook as a user's repository does, through its .pre-commit-config.yaml."""
    project.write(".pre-commit-config.yaml", hook_source.config())
    git("add", ".pre-commit-config.yaml", cwd=project.root)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "assetbuild-check", *args],
            cwd=project.root, env=env, capture_output=True, text=True, timeout=600,
            check=False)

    return hook


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_hook_fails_on_a_stale_image_and_passes_after_a_build(
    project: ProjectDir, isolated_environment: Path, hook_source: HookSource
) -> None:
    """The hook as a user's repository runs it, through its pre-commit config."""
    project.write_manifest("""
        version = 1
        [settings]
        provider = "emulator"
        [images.logo]
        prompt = "A flat logo for a coffee roaster"
    """)
    env = {**os.environ, "PRE_COMMIT_HOME": str(hook_source.home),
           "ASSETBUILD_CACHE_DIR": str(isolated_environment)}
    project.write(".gitignore", ".assetbuild/\n")  # as `assetbuild init` writes it
    git("init", "-q", cwd=project.root)
    git("add", "-A", cwd=project.root)
    hook = _hook_runner(project, hook_source, env, "--all-files")

    stale = hook()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "logo" in stale.stdout and "new" in stale.stdout
    built = subprocess.run([sys.executable, "-m", "assetbuild", "build", "-q"],
                           cwd=project.root, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    git("add", "-A", cwd=project.root)
    fresh = hook()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    project.manifest.write_text(project.manifest.read_text().replace("flat", "bold"))
    git("add", "-A", cwd=project.root)
    changed = hook()
    assert changed.returncode == 1 and "prompt changed" in changed.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_hook_sees_what_the_commit_holds(project: ProjectDir, isolated_environment: Path,
                                             hook_source: HookSource) -> None:
    """Unstaged images, deleted images and prompt files of any extension: the hook
    runs on every commit and judges what would be committed."""
    project.write_manifest("""
        version = 1
        [settings]
        provider = "emulator"
        [images.logo]
        prompt_file = "logo.prompt"
    """)
    project.write("logo.prompt", "A flat logo for a coffee roaster\n")
    project.write(".gitignore", ".assetbuild/\n")
    env = {**os.environ, "PRE_COMMIT_HOME": str(hook_source.home),
           "ASSETBUILD_CACHE_DIR": str(isolated_environment)}
    git("init", "-q", cwd=project.root)
    hook = _hook_runner(project, hook_source, env)

    built = subprocess.run([sys.executable, "-m", "assetbuild", "build", "-q"],
                           cwd=project.root, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    git("add", "assetbuild.toml", "assetbuild.lock", "logo.prompt", ".gitignore",
        cwd=project.root)
    unstaged = hook()
    assert unstaged.returncode == 1, unstaged.stdout
    assert "git add generated/logo.png" in unstaged.stdout
    git("add", "generated/logo.png", cwd=project.root)
    staged = hook()
    assert staged.returncode == 0, staged.stdout + staged.stderr
    git("commit", "-q", "-m", "art", cwd=project.root)

    git("rm", "-q", "generated/logo.png", cwd=project.root)
    deleted = hook()
    assert deleted.returncode == 1 and "missing-output" in deleted.stdout, deleted.stdout
    assert "assetbuild pull" in deleted.stdout
    git("checkout", "HEAD", "--", "generated/logo.png", cwd=project.root)

    project.write("logo.prompt", "A bold logo for a coffee roaster\n")
    git("add", "logo.prompt", cwd=project.root)
    edited = hook()
    assert edited.returncode == 1 and "prompt changed" in edited.stdout, edited.stdout


def test_prune_lists_then_removes_what_is_no_longer_declared(
    simple_project: ProjectDir, run_cli: RunCli
) -> None:
    from tests.conftest import lock_as_built

    lock_as_built(simple_project)
    manifest = str(simple_project.manifest)
    (simple_project.root / "generated" / "old" / "stray.png").parent.mkdir()
    (simple_project.root / "generated" / "old" / "stray.png").write_bytes(b"old")
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text[: text.index("[images.card]")])
    check = run_cli("check", "-f", manifest)
    assert check.code == 0 and "holds 4 image(s) the manifest no longer declares" in check.out
    listed = run_cli("prune", "-f", manifest)
    assert listed.code == 0 and "lock entry  card[color=red,ratio=1:1]" in listed.out
    assert "file        generated/old/stray.png" in listed.out
    assert "file        generated/cards/red-1x1.png" in listed.out
    assert (simple_project.root / "generated/old/stray.png").exists(), "listing removes nothing"
    removed = run_cli("prune", "-f", manifest, "--yes", "--json")
    assert '"removed": true' in removed.out
    assert not (simple_project.root / "generated/old").exists()
    assert not (simple_project.root / "generated/cards").exists()
    assert (simple_project.root / "generated/hero.png").exists()
    assert "card" not in (simple_project.root / "assetbuild.lock").read_text()
    assert run_cli("prune", "-f", manifest).out.startswith("0 lock entries and 0 files")
    assert run_cli("check", "-f", manifest).code == 0


@pytest.mark.slow
def test_the_pytest_plugin_serves_an_emulator_to_user_tests(
    pytester: pytest.Pytester, isolated_environment: Path
) -> None:
    """A user's test file, run by pytest with the installed plugin, builds on the emulator."""
    pytester.makepyfile(test_pipeline='''
        import pytest
        from assetbuild.build import build
        from assetbuild.outcomes import BuildOptions
        from assetbuild.project import Project

        def test_pipeline(see2ai_emulator, monkeypatch, tmp_path):
            monkeypatch.setenv("SEE2AI_BASE_URL", see2ai_emulator.base_url)
            monkeypatch.setenv("SEE2AI_API_KEY", see2ai_emulator.api_key)
            manifest = tmp_path / "assetbuild.toml"
            manifest.write_text('version = 1\\n[images.a]\\nprompt = "a test image"\\n')
            report = build(Project.load(manifest), BuildOptions())
            assert report.count("built") == 1
            assert see2ai_emulator.stats().submits == 1
            assert (tmp_path / "generated" / "a.png").exists()

        def test_wrong_key_is_refused(see2ai_emulator, monkeypatch, tmp_path):
            monkeypatch.setenv("SEE2AI_BASE_URL", see2ai_emulator.base_url)
            monkeypatch.setenv("SEE2AI_API_KEY", "sk-wrong")
            manifest = tmp_path / "assetbuild.toml"
            manifest.write_text('version = 1\\n[images.a]\\nprompt = "another image"\\n')
            report = build(Project.load(manifest), BuildOptions())
            assert report.aborted is not None
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


COST_GRID = """
version = 1
[settings]
jobs = 1
[images.tile]
prompt = "{prefix} tile {{{{ n }}}} of a priced set"
resolution = "1K"
matrix = {{ n = [0, 1, 2, 3, 4, 5] }}
"""


def test_plan_estimates_points_and_max_cost_refuses_beyond_it(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    import json

    project.write_manifest(COST_GRID.format(prefix="first"))
    manifest = str(project.manifest)
    assert run_cli("build", "-f", manifest).code == 0
    assert served.emulator.stats.submits == 6
    project.write_manifest(COST_GRID.format(prefix="second"))
    estimate = json.loads(run_cli("plan", "-f", manifest, "--json").out)
    assert (estimate["estimated_points"], estimate["unpriced_images"]) == (60, 0)
    assert "Estimated cost: about 60 points" in run_cli("plan", "-f", manifest).out
    refused = run_cli("build", "-f", manifest, "--max-cost", "30")
    assert refused.code == 1 and "would spend about 60 points, more than --max-cost 30" in (
        refused.err)
    assert served.emulator.stats.submits == 6, "nothing was submitted"


def test_max_cost_stops_submitting_mid_build(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    project.write_manifest(COST_GRID.format(prefix="fresh"))
    result = run_cli("build", "-f", str(project.manifest), "--max-cost", "25")
    assert result.code == 1 and "--max-cost 25 reached" in result.err
    assert served.emulator.stats.submits == 2 and served.emulator.stats.points_spent == 20
    assert "2 built" in result.err and "20 points spent" in result.err


def test_max_cost_holds_on_a_first_build_with_no_price_known(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    grid = COST_GRID.format(prefix="first").replace('resolution = "1K"', 'resolution = "4K"')
    project.write_manifest(grid)
    tiny = run_cli("build", "-f", str(project.manifest), "--max-cost", "5")
    assert tiny.code == 1 and "--max-cost 5 reached" in tiny.err
    assert served.emulator.stats.submits == 0, "a 4K image may cost more than 5 points"
    some = run_cli("build", "-f", str(project.manifest), "--max-cost", "100", "-j", "6")
    assert some.code == 1 and "--max-cost 100 reached" in some.err
    assert 0 < served.emulator.stats.points_spent <= 100, "the budget is never passed"
    assert served.emulator.stats.max_in_flight == 1, "one at a time until a price is known"



def test_price_ceilings_in_settings_replace_the_default_ones(
    project: ProjectDir, run_cli: RunCli, served: Served
) -> None:
    grid = COST_GRID.format(prefix="first").replace('resolution = "1K"', 'resolution = "4K"')
    project.write_manifest(grid)
    default = run_cli("build", "-f", str(project.manifest), "--max-cost", "50")
    assert default.code == 1 and served.emulator.stats.submits == 0, "80 set aside at 4K"
    project.write_manifest(grid.replace("jobs = 1", 'jobs = 1\nprice_ceilings = { "4K" = 45 }'))
    ours = run_cli("build", "-f", str(project.manifest), "--max-cost", "50")
    assert ours.code == 1 and "--max-cost 50 reached" in ours.err
    assert served.emulator.stats.submits == 1 and served.emulator.stats.points_spent == 40
    project.write_manifest(grid.replace("jobs = 1", 'jobs = 1\nprice_ceilings = { "8K" = 1 }'))
    bad = run_cli("plan", "-f", str(project.manifest))
    assert bad.code == 2 and "price_ceilings" in bad.err and "1K, 2K, 4K" in bad.err

SHARDED = """
version = 1
[images.logo]
prompt = "a logo for the sharded set"
[images.banner]
prompt = "a banner with the logo"
references = ["image:logo"]
[images.tile]
prompt = "sharded tile {{ n }}"
resolution = "1K"
matrix = { n = [0, 1, 2, 3, 4, 5, 6, 7] }
"""


def test_two_shards_merge_into_the_lockfile_one_build_writes(
    tmp_path: Path, run_cli: RunCli
) -> None:
    import tomllib

    single, sharded = tmp_path / "single", tmp_path / "sharded"
    for folder in (single, sharded):
        folder.mkdir()
        (folder / "assetbuild.toml").write_text(SHARDED)
    assert run_cli("build", "-f", str(single / "assetbuild.toml"), "--provider",
                   "emulator").code == 0
    manifest = str(sharded / "assetbuild.toml")
    built: list[set[str]] = []
    for k in (1, 2):
        result = run_cli("build", "-f", manifest, "--provider", "emulator", "--shard",
                         f"{k}/2", "--json")
        assert result.code == 0, result.err
        built.append({i["name"] for i in json.loads(result.out)["images"]})
        assert (sharded / f"assetbuild.lock.shard-{k}-of-2").exists()
    assert built[0] and built[1] and not built[0] & built[1]
    assert len(built[0] | built[1]) == 10
    assert any({"logo", "banner"} <= names for names in built), "linked images stay together"
    assert not (sharded / "assetbuild.lock").exists()
    merged = run_cli("lock", "merge", "-f", manifest, "--remove")
    assert merged.code == 0 and "10 image(s) updated" in merged.out
    assert not list(sharded.glob("assetbuild.lock.shard-*"))

    def comparable(folder: Path) -> dict[str, dict[str, object]]:
        images: dict[str, dict[str, Any]] = tomllib.loads(
            (folder / "assetbuild.lock").read_text())["images"]
        for name, entry in images.items():
            for volatile in ("task_id", "result_urls", "cost_time"):
                entry.pop(volatile, None)
            entry["request"].pop("input_urls")
            if name == "banner":  # its spec holds the logo's result URL, new per task
                entry.pop("spec_hash")
                entry["spec"].pop("references")
        return images

    assert comparable(sharded) == comparable(single)
    assert run_cli("check", "-f", manifest, "--provider", "emulator").code == 0


def test_shard_arguments_are_checked(simple_project: ProjectDir, run_cli: RunCli) -> None:
    for bad in ("3/2", "0/2", "a/b", "2"):
        result = run_cli("build", "-f", str(simple_project.manifest), "--shard", bad)
        assert result.code == 2 and "--shard" in result.err


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    """Every page builds, every link resolves, and the CLI reference covers each command."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300,
        check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "site" / "cli" / "index.html").read_text()
    for command in ("build", "check", "plan", "pull", "render", "graph", "prune", "init",
                    "lock merge", "cache info", "emulator", "--max-cost", "--shard"):
        assert command in reference, command


def test_shell_completion_script() -> None:
    result = subprocess.run([sys.executable, "-m", "assetbuild"], capture_output=True,
                            text=True, timeout=30, check=False,
                            env={**os.environ, "_ASSETBUILD_COMPLETE": "bash_source"})
    assert "_assetbuild_completion" in result.stdout
    assert "complete -o nosort -F _assetbuild_completion assetbuild" in result.stdout


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stderr on a pseudo-terminal (so rich shows its live display)."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "assetbuild", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=follower, stdin=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(60)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_no_color_is_respected_on_a_terminal(tmp_path: Path) -> None:
    import re

    colour = re.compile(r"\x1b\[[0-9;]*m")
    outputs = {}
    for name, extra in (("plain", {"NO_COLOR": "1"}), ("coloured", {"FORCE_COLOR": "1"})):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "assetbuild.toml").write_text(
            f'version = 1\n[images.a]\nprompt = "a {name} image on a terminal"\n')
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        env |= extra | {"ASSETBUILD_CACHE_DIR": str(folder / "cache"), "TERM": "xterm"}
        outputs[name] = run_on_a_terminal(
            ["build", "-f", str(folder / "assetbuild.toml"), "--provider", "emulator"], env)
    assert "1 built" in outputs["plain"] and "1 built" in outputs["coloured"]
    assert colour.search(outputs["coloured"]), "the terminal display does use colour"
    assert not colour.search(outputs["plain"]), "NO_COLOR turns it off"


@pytest.mark.slow
@pytest.mark.timeout(900)  # a fresh virtual environment and the dev install: 1-3 minutes
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_readme_quick_start_ends_in_a_green_check(tmp_path: Path,
                                                       isolated_environment: Path) -> None:
    """The README's first command block, run as written in a fresh copy of the project
    (its own virtual environment and install), then `check` as a hook would run it."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    copy = tmp_path / "fresh"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    script = f"set -e\n{block}\nassetbuild check -f examples/see2ai.toml\n"
    ran = subprocess.run(["bash", "-c", script], cwd=copy, env=env, capture_output=True,
                         text=True, timeout=900, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert "images up to date" in ran.stdout + ran.stderr
    assert "examples/generated" in ran.stdout
