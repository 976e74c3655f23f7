"""Adaptive polling: dense until a task finishes, then just after the learned duration."""

from __future__ import annotations

import asyncio

import pytest

from assetbuild.build import build
from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.outcomes import BuildOptions
from assetbuild.polling import MAX_DELAY, PollSchedule
from assetbuild.project import Project
from tests.conftest import ProjectDir


def test_polls_densely_until_a_duration_is_learned() -> None:
    schedule = PollSchedule(initial=0.5)
    assert schedule.typical is None
    assert 0.45 <= schedule.delay(elapsed=0.0) <= 0.55
    assert schedule.delay(elapsed=100.0) <= MAX_DELAY * 1.1


def test_the_scout_is_polled_densely_until_a_duration_is_learned() -> None:
    schedule = PollSchedule(initial=0.5)
    assert schedule.delay(elapsed=0.0, scout=True) == 0.1
    assert schedule.delay(elapsed=6.0, scout=True) >= 0.5, "dense only for the first 5 s"
    schedule.observe(2.0)
    assert schedule.delay(elapsed=0.0, scout=True) > 2.0, "learned: no scout any more"


def test_one_task_of_the_first_wave_scouts_for_the_others(project: ProjectDir) -> None:
    """Three tasks of 1 s, polled first after 1 s: one of them is polled every 0.1 s
    (about ten polls) and wakes the other two when it ends (one poll each); without a
    scout all three would be polled about twice."""
    project.write_manifest("""
        version = 1
        [images.tile]
        prompt = "tile {{ n }}"
        matrix = { n = [0, 1, 2] }
    """)
    emulator = Emulator(EmulatorConfig(latency_min=1.0, latency_max=1.0, plain_images=True))
    report = build(Project.load(project.manifest),
                   BuildOptions(provider="emulator", jobs=3, first_poll=1.0),
                   emulator=emulator)
    assert report.count("built") == 3
    assert 8 <= emulator.stats.status_polls <= 16, emulator.stats.status_polls


def test_polls_just_after_the_typical_duration_then_back_off() -> None:
    schedule = PollSchedule(initial=0.5)
    for seconds in (1.9, 2.0, 2.1):
        schedule.observe(seconds)
    assert schedule.typical == 2.0
    first = schedule.delay(elapsed=0.0)
    assert 2.0 < first <= 2.05, "one poll, just after the typical duration"
    assert schedule.delay(elapsed=first) <= 0.05, "a late task is polled soon"
    assert schedule.delay(elapsed=40.0) == 0.25 * (40.0 - 2.0), "grows when overdue"
    assert schedule.delay(elapsed=100.0) == MAX_DELAY


def test_the_first_finished_task_wakes_the_tasks_waiting_on_the_dense_schedule() -> None:
    async def scenario() -> tuple[bool, bool, float]:
        schedule = PollSchedule(initial=10.0)
        waiting = asyncio.create_task(schedule.wait(10.0))
        await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        schedule.observe(1.0)
        woken_early = not await waiting
        waited = asyncio.get_running_loop().time() - started
        full_sleep = await schedule.wait(0.01)  # learned: a plain sleep now
        return woken_early, full_sleep, waited

    woken_early, full_sleep, waited = asyncio.run(scenario())
    assert woken_early and full_sleep
    assert waited < 5.0, "not the 10 s dense interval"


@pytest.mark.slow
def test_a_latency_bound_build_polls_about_once_per_image(project: ProjectDir) -> None:
    """24 images of 0.6 s, 4 at a time: fixed polling every 0.25 s would poll 3 times
    per image; the learned schedule polls the first batch densely, then about once."""
    project.write_manifest("""
        version = 1
        [images.tile]
        prompt = "tile {{ n }}"
        matrix = { n = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                        19, 20, 21, 22, 23] }
    """)
    emulator = Emulator(EmulatorConfig(latency_min=0.6, latency_max=0.6, plain_images=True))
    report = build(Project.load(project.manifest),
                   BuildOptions(provider="emulator", jobs=4, first_poll=0.25),
                   emulator=emulator)
    assert report.count("built") == 24
    assert emulator.stats.status_polls / 24 <= 2.0
