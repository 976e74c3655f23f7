"""Takes through the CLI against the emulator over loopback: ``takes = N`` pays for N
tasks of one spec and keeps them all; ``pick`` switches the output with no task;
``reroll`` pays on purpose; a ``takes`` change pays only for the difference."""

from __future__ import annotations

import json
import shutil
import tomllib
from typing import Any

import pytest

from assetbuild.hashing import sha256_file
from tests.conftest import ProjectDir, RunCli, Served

HERO = """
version = 1
[images.hero]
prompt = "a lighthouse at dusk, wide"
resolution = "1K"
takes = {takes}
[images.plain]
prompt = "a plain sky"
resolution = "1K"
"""


def _entry(project: ProjectDir, name: str = "hero") -> dict[str, Any]:
    lock = tomllib.loads((project.root / "assetbuild.lock").read_text())
    entry: dict[str, Any] = lock["images"][name]
    return entry


def _built(project: ProjectDir, run_cli: RunCli, takes: int = 3) -> dict[str, Any]:
    project.write_manifest(HERO.format(takes=takes))
    result = run_cli("build", "-f", str(project.manifest))
    assert result.code == 0, result.err
    return _entry(project)


def _output(project: ProjectDir) -> str:
    return sha256_file(project.root / "generated" / "hero.png")


def test_three_takes_pay_three_tasks_and_keep_every_one(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    entry = _built(project, run_cli)
    assert served.emulator.stats.submits == 4, "three takes of hero, one of plain"
    takes = entry["takes"]
    assert len(takes) == 3 and len({t["task_id"] for t in takes}) == 3
    assert len({t["sha256"][0] for t in takes}) == 3, "three tasks, three pictures"
    assert entry["take"] == 1 and entry["task_id"] == takes[0]["task_id"]
    assert _output(project) == takes[0]["sha256"][0], "take 1 is the output"
    assert "version = 2" in (project.root / "assetbuild.lock").read_text()
    assert "takes" not in _entry(project, "plain")
    listed = json.loads(run_cli("takes", "-f", str(project.manifest), "hero", "--json").out)
    assert [row["take"] for row in listed["takes"]] == [1, 2, 3]
    assert [row["chosen"] for row in listed["takes"]] == [True, False, False]
    assert all(row["cached"] for row in listed["takes"]), "the result cache holds them all"
    assert run_cli("check", "-f", str(project.manifest)).code == 0


def test_pick_switches_the_output_without_a_task(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    takes = _built(project, run_cli)["takes"]
    submits, polls = served.emulator.stats.submits, served.emulator.stats.status_polls
    picked = run_cli("pick", "-f", str(project.manifest), "hero", "3")
    assert picked.code == 0, picked.err
    assert served.emulator.stats.submits == submits and served.emulator.stats.status_polls == polls
    entry = _entry(project)
    assert entry["take"] == 3 and entry["task_id"] == takes[2]["task_id"]
    assert _output(project) == takes[2]["sha256"][0]
    assert entry["outputs"][0]["sha256"] == takes[2]["sha256"][0]
    assert run_cli("check", "-f", str(project.manifest)).code == 0
    back = run_cli("pick", "-f", str(project.manifest), "hero", "1")
    assert back.code == 0 and _output(project) == takes[0]["sha256"][0]


def test_pick_works_from_the_lockfile_alone_while_the_urls_live(
        project: ProjectDir, run_cli: RunCli, served: Served,
        isolated_environment: Any) -> None:
    takes = _built(project, run_cli)["takes"]
    shutil.rmtree(isolated_environment)  # another machine: no cache, the lockfile from git
    picked = run_cli("pick", "-f", str(project.manifest), "hero", "2")
    assert picked.code == 0, picked.err
    assert _output(project) == takes[1]["sha256"][0]
    assert served.emulator.stats.downloads == 4 + 1, "one download: take 2's picture"


def test_reroll_pays_for_exactly_one_more_and_keeps_the_output(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    _built(project, run_cli)
    before = _output(project)
    rerolled = run_cli("reroll", "-f", str(project.manifest), "hero")
    assert rerolled.code == 0, rerolled.err
    assert served.emulator.stats.submits == 5
    entry = _entry(project)
    assert len(entry["takes"]) == 4 and entry["take"] == 1 and _output(project) == before
    assert run_cli("check", "-f", str(project.manifest)).code == 0
    plan = json.loads(run_cli("plan", "-f", str(project.manifest), "--json").out)
    assert plan["estimated_points"] == 0, "a plan never counts a reroll"


def test_reroll_of_an_image_with_one_take_makes_it_two(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    _built(project, run_cli)
    assert run_cli("reroll", "-f", str(project.manifest), "plain", "--count", "2").code == 0
    assert served.emulator.stats.submits == 6
    assert len(_entry(project, "plain")["takes"]) == 3


def test_reroll_respects_max_cost(project: ProjectDir, run_cli: RunCli,
                                  served: Served) -> None:
    _built(project, run_cli)
    lock = (project.root / "assetbuild.lock").read_bytes()
    refused = run_cli("reroll", "-f", str(project.manifest), "hero", "--count", "3",
                      "--max-cost", "15")
    assert refused.code == 1 and "more than --max-cost 15" in refused.err
    assert served.emulator.stats.submits == 4
    assert (project.root / "assetbuild.lock").read_bytes() == lock


def test_more_takes_pay_for_the_difference_only(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    first = _built(project, run_cli)
    project.write_manifest(HERO.format(takes=4))
    checked = run_cli("check", "-f", str(project.manifest))
    assert checked.code == 1 and "more-takes" in checked.out + checked.err
    plan = json.loads(run_cli("plan", "-f", str(project.manifest), "--json").out)
    assert plan["estimated_points"] == 10, "one more take, at the price of one"
    rebuilt = run_cli("build", "-f", str(project.manifest))
    assert rebuilt.code == 0, rebuilt.err
    assert served.emulator.stats.submits == 5, "one more task, never four"
    entry = _entry(project)
    assert [t["task_id"] for t in entry["takes"][:3]] == [t["task_id"] for t in first["takes"]]
    project.write_manifest(HERO.format(takes=2))
    assert run_cli("check", "-f", str(project.manifest)).code == 0, "fewer: nothing dropped"
    assert len(_entry(project)["takes"]) == 4


def test_a_changed_prompt_pays_for_every_take_again(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    _built(project, run_cli, takes=2)
    project.write_manifest(HERO.format(takes=2).replace("at dusk", "at dawn"))
    assert run_cli("build", "-f", str(project.manifest)).code == 0
    assert served.emulator.stats.submits == 3 + 2


@pytest.mark.parametrize(("args", "said"), [
    (("pick", "hero", "4"), "image 'hero' has 3 takes in"),
    (("pick", "nothing", "1"), "no image matches target 'nothing'"),
    (("reroll", "nothing"), "no image matches target 'nothing'"),
    (("reroll", "hero", "--count", "6"), "an image keeps from 1 to 8"),
])
def test_bad_picks_and_rerolls_are_usage_errors_that_change_nothing(
        project: ProjectDir, run_cli: RunCli, served: Served, args: tuple[str, ...],
        said: str) -> None:
    _built(project, run_cli)
    lock, output = (project.root / "assetbuild.lock").read_bytes(), _output(project)
    result = run_cli(args[0], "-f", str(project.manifest), *args[1:])
    assert result.code == 2 and said in result.err, result.err
    assert "Traceback" not in result.err
    assert (project.root / "assetbuild.lock").read_bytes() == lock and _output(project) == output
    assert served.emulator.stats.submits == 4


def test_reroll_and_pick_of_an_image_never_built_are_usage_errors(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    project.write_manifest(HERO.format(takes=1))
    for args in (("reroll", "hero"), ("pick", "hero", "1"), ("takes", "hero")):
        result = run_cli(args[0], "-f", str(project.manifest), *args[1:])
        assert result.code == 2 and "image 'hero' was never built" in result.err, result.err
    assert served.emulator.stats.submits == 0
    assert not (project.root / "assetbuild.lock").exists()


def test_takes_out_of_range_in_the_manifest_name_the_image_and_field(
        project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest(HERO.format(takes=9))
    result = run_cli("plan", "-f", str(project.manifest))
    assert result.code == 2
    assert "image 'hero': field 'takes': 9 is not a number of takes from 1 to 8" in result.err
