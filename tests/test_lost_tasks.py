"""A task the API loses (404 on its status): right after the submit, and when a later
build resumes it. Each path says whether the image will be paid for again."""

from __future__ import annotations

from pathlib import Path

from assetbuild.journal import Journal
from assetbuild.project import Project
from tests.conftest import ProjectDir, RunCli, Served

LOST = """
version = 1
[images.logo]
prompt = "a [[lost]] logo"
"""

SLOW = """
version = 1
[settings]
timeout = {timeout}
[images.logo]
prompt = "a logo"
[images.hero]
prompt = "a hero"
"""


def _journaled(project: ProjectDir, served: Served) -> dict[str, str]:
    journal = Journal(Project.load(project.manifest).state_dir, served.base_url,
                      served.api_key)
    try:
        return {entry.name: entry.task_id for entry in journal.entries()}
    finally:
        journal.close()


def test_a_task_lost_right_after_its_submit_fails_saying_it_is_paid_again(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    project.write_manifest(LOST)
    first = run_cli("build", "-f", str(project.manifest))
    assert first.code == 1
    assert "the API lost task emu-" in first.err and "right after accepting it" in first.err
    assert "the next build submits it anew (and pays again" in first.err
    assert _journaled(project, served) == {}, "a lost task is not resumed"
    assert run_cli("build", "-f", str(project.manifest)).code == 1
    assert served.emulator.stats.submits == 2


def test_a_resumed_task_the_api_lost_is_submitted_anew_with_a_warning(
        project: ProjectDir, run_cli: RunCli, served: Served) -> None:
    project.write_manifest(SLOW.format(timeout=1))
    served.emulator.configure(latency=2.5)
    first = run_cli("build", "-f", str(project.manifest))
    assert first.code == 1 and "the next build resumes polling it" in first.err
    journaled = _journaled(project, served)
    assert set(journaled) == {"logo", "hero"}
    served.emulator.expire(journaled["logo"])
    served.emulator.configure(latency=0)
    project.write_manifest(SLOW.format(timeout=30))
    second = run_cli("build", "-f", str(project.manifest))
    assert second.code == 0, second.err
    assert f"the API lost task {journaled['logo']}" in second.err
    assert "it is submitted anew, which the API charges again" in second.err
    assert "1 built, 1 resumed" in second.err
    assert served.emulator.stats.submits == 3, "hero resumed; logo submitted anew"
    assert _journaled(project, served) == {}
    assert Path(project.root / "generated/logo.png").exists()
