"""The build engine through the library API, against the in-process emulator."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from PIL import Image

from assetbuild.build import build, pull
from assetbuild.emulator import Emulator, EmulatorConfig
from assetbuild.hashing import sha256_file
from assetbuild.outcomes import BuildOptions, BuildReport
from assetbuild.project import Project
from tests.conftest import ProjectDir


def run_build(project: ProjectDir, emulator: Emulator, **options: object) -> BuildReport:
    return build(Project.load(project.manifest),
                 BuildOptions(provider="emulator", **options),  # type: ignore[arg-type]
                 emulator=emulator)


def lock_of(project: ProjectDir) -> dict[str, dict[str, object]]:
    data = tomllib.loads((project.root / "assetbuild.lock").read_text())
    images: dict[str, dict[str, object]] = data["images"]
    return images


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(seed=3))


def test_first_build_writes_images_and_lockfile(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    report = run_build(simple_project, emulator)
    assert report.count("built") == 6 and not report.failed
    assert emulator.stats.submits == 6
    lock = lock_of(simple_project)
    hero = lock["hero"]
    assert hero["request"]["aspect_ratio"] == "16:9"  # type: ignore[index]
    assert hero["request"]["input_urls"] == [  # type: ignore[index]
        "https://example.com/ref.jpg", lock["logo"]["result_urls"][0]]  # type: ignore[index]
    for entry in lock.values():
        for output in entry["outputs"]:  # type: ignore[attr-defined]
            path = simple_project.root / output["path"]
            assert sha256_file(path) == output["sha256"]
            assert path.stat().st_size == output["bytes"]
    with Image.open(simple_project.root / "generated/hero.png") as image:
        assert image.size == (2048, 1152)
    assert Project.load(simple_project.manifest).plan(provider="emulator").up_to_date


def test_second_build_submits_nothing(simple_project: ProjectDir, emulator: Emulator) -> None:
    run_build(simple_project, emulator)
    before = (simple_project.root / "assetbuild.lock").read_bytes()
    report = run_build(simple_project, emulator)
    assert report.count("up-to-date") == 6 and emulator.stats.submits == 6
    assert (simple_project.root / "assetbuild.lock").read_bytes() == before


def test_one_prompt_edit_rebuilds_it_and_its_dependents(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    run_build(simple_project, emulator)
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text.replace("Logo for", "A new logo for"))
    report = run_build(simple_project, emulator)
    assert {r.name for r in report.results if r.outcome == "built"} == {"logo", "hero"}
    assert emulator.stats.submits == 8


def test_renaming_or_deleting_outputs_submits_nothing(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    run_build(simple_project, emulator)
    old = (simple_project.root / "generated/hero.png").read_bytes()
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text.replace('output = "hero.png"',
                                                    'output = "banners/hero.png"'))
    (simple_project.root / "generated/cards/red-1x1.png").unlink()
    report = run_build(simple_project, emulator)
    assert report.count("restored") == 2 and emulator.stats.submits == 6
    assert (simple_project.root / "generated/banners/hero.png").read_bytes() == old
    assert lock_of(simple_project)["hero"]["outputs"][0]["path"] == (  # type: ignore[index]
        "generated/banners/hero.png")


def test_reverting_a_prompt_comes_back_from_the_cache(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    run_build(simple_project, emulator)
    original = simple_project.manifest.read_text()
    simple_project.manifest.write_text(original.replace("sneakers", "boots"))
    run_build(simple_project, emulator)
    assert emulator.stats.submits == 10
    simple_project.manifest.write_text(original)
    report = run_build(simple_project, emulator)
    assert report.count("cached") == 4 and emulator.stats.submits == 10
    assert Project.load(simple_project.manifest).plan(provider="emulator").up_to_date


def test_failed_images_do_not_stop_the_others(project: ProjectDir, emulator: Emulator) -> None:
    project.write_manifest("""
        version = 1
        [images.good]
        prompt = "a good image"
        [images.bad]
        prompt = "a bad image [[fail]]"
        [images.child]
        prompt = "depends on bad"
        references = ["image:bad"]
    """)
    report = run_build(project, emulator)
    outcomes = {r.name: (r.outcome, r.message) for r in report.results}
    assert outcomes["good"][0] == "built"
    assert outcomes["bad"][0] == "failed" and "Emulated generation failure" in outcomes["bad"][1]
    assert outcomes["child"] == ("skipped", "dependency bad was not built")
    assert set(lock_of(project)) == {"good"}
    again = run_build(project, emulator)
    assert emulator.stats.submits_by_prompt["a bad image [[fail]]"] == 2, "failed: submitted anew"
    assert again.count("up-to-date") == 1


def test_concurrency_never_exceeds_jobs(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [images.grid]
        prompt = "tile {{ n }}"
        matrix = { n = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] }
    """)
    emulator = Emulator(EmulatorConfig(latency_min=0.2, latency_max=0.4, seed=1))
    report = run_build(project, emulator, jobs=3)
    assert report.count("built") == 16
    assert 2 <= emulator.stats.max_in_flight <= 3


def test_several_results_become_numbered_files(project: ProjectDir, emulator: Emulator) -> None:
    project.write_manifest("""
        version = 1
        [images.trio]
        prompt = "three variants [[results=3]]"
        output = "trio.jpg"
    """)
    run_build(project, emulator)
    outputs = lock_of(project)["trio"]["outputs"]
    assert [o["path"] for o in outputs] == [  # type: ignore[attr-defined]
        "generated/trio.jpg", "generated/trio-2.jpg", "generated/trio-3.jpg"]
    with Image.open(project.root / "generated/trio-3.jpg") as image:
        assert image.format == "JPEG", "converted from the PNG the API returned"


def test_balance_stops_new_submissions(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [images.grid]
        prompt = "tile {{ n }}"
        resolution = "1K"
        matrix = { n = [1, 2, 3, 4, 5, 6] }
    """)
    emulator = Emulator(EmulatorConfig(balance=30, latency_min=0.2, latency_max=0.2))
    report = run_build(project, emulator, jobs=2)
    assert report.aborted is not None and "Insufficient balance" in str(report.aborted)
    assert report.count("built") == 3 == emulator.stats.submits
    assert len(lock_of(project)) == 3, "in-flight images finished and were locked"


def test_pull_restores_from_the_cache_and_never_generates(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    run_build(simple_project, emulator)
    for path in (simple_project.root / "generated").rglob("*.png"):
        path.unlink()
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text.replace("Logo for", "Another logo for"))
    report = pull(Project.load(simple_project.manifest), provider="emulator")
    assert report.count("restored") == 4
    skipped = {r.name for r in report.results if r.outcome == "skipped"}
    assert skipped == {"logo", "hero"}
    assert emulator.stats.submits == 6


def test_a_corrupted_cache_blob_is_never_restored(
    simple_project: ProjectDir, emulator: Emulator, isolated_environment: Path
) -> None:
    run_build(simple_project, emulator)
    hero = simple_project.root / "generated/hero.png"
    good = hero.read_bytes()
    import diskcache

    with diskcache.Cache(str(next(isolated_environment.glob("results-*")))) as stored:
        blobs = [key for key in stored.iterkeys() if str(key).startswith("blob:")]
        assert len(blobs) == 6, "the cache keeps each output's bytes"
        for key in blobs:
            stored.set(key, b"\x89PNG bytes that are not the image")
    hero.unlink()
    report = pull(Project.load(simple_project.manifest), provider="emulator")
    assert {r.name: r.outcome for r in report.results}["hero"] == "failed"
    assert not hero.exists(), "corrupt bytes were never put in place"
    downloads = emulator.stats.downloads
    report = run_build(simple_project, emulator)  # the locked URL still serves the image
    assert {r.name: r.outcome for r in report.results}["hero"] == "restored"
    assert hero.read_bytes() == good
    assert emulator.stats.downloads == downloads + 1, "fetched again from its locked URL"
    assert emulator.stats.submits == 6


def test_journaled_task_is_resumed_not_resubmitted(
    project: ProjectDir, tmp_path: Path
) -> None:
    """A task recorded in the journal (as a killed build leaves it) is polled, not paid again."""
    import asyncio

    from assetbuild.emulator import IN_PROCESS_BASE_URL, EmulatorTransport
    from assetbuild.hashing import spec_hash
    from assetbuild.journal import Journal
    from assetbuild.providers import EMULATOR_KEY
    from assetbuild.providers.see2ai import See2AIClient
    from assetbuild.spec import image_request, image_spec

    project.write_manifest('version = 1\n[images.solo]\nprompt = "a solo image"\n')
    loaded = Project.load(project.manifest)
    image = loaded.resolved.images[0]
    emulator = Emulator(EmulatorConfig(latency_min=0.3, latency_max=0.3))

    async def submit_like_a_killed_build() -> str:
        async with See2AIClient(api_key=EMULATOR_KEY, base_url=IN_PROCESS_BASE_URL,
                                transport=EmulatorTransport(emulator)) as client:
            return (await client.submit(image_request(image, []))).task_id

    task_id = asyncio.run(submit_like_a_killed_build())
    journal = Journal(loaded.manifest.state_dir, IN_PROCESS_BASE_URL, EMULATOR_KEY)
    journal.submitted(spec_hash(image_spec(image, "emulator", {})), "solo", task_id,
                      image_request(image, []))
    journal.close()
    report = build(loaded, BuildOptions(provider="emulator"), emulator=emulator)
    assert [r.outcome for r in report.results] == ["resumed"]
    assert emulator.stats.submits == 1
    assert lock_of(project)["solo"]["task_id"] == task_id


def test_build_regenerates_what_it_cannot_restore(
    simple_project: ProjectDir, isolated_environment: Path
) -> None:
    import shutil

    run_build(simple_project, Emulator())
    shutil.rmtree(isolated_environment)
    (simple_project.root / "generated/hero.png").unlink()
    fresh = Emulator()  # the old result URLs died with the old emulator
    report = run_build(simple_project, fresh)
    assert {r.name: r.outcome for r in report.results}["hero"] == "built"
    assert fresh.stats.submits == 1


def test_leftovers_of_a_killed_write_are_removed(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    """A write killed half way leaves a temp file; the next build removes it."""
    from assetbuild.fsutil import TEMP_PREFIX

    run_build(simple_project, emulator)
    beside_lock = simple_project.root / f"{TEMP_PREFIX}lock-half-written"
    beside_output = simple_project.root / "generated" / "cards" / f"{TEMP_PREFIX}png-half"
    beside_lock.write_bytes(b"version = 1\n[images.he")
    beside_output.write_bytes(b"\x89PNG half")
    run_build(simple_project, emulator)
    assert not beside_lock.exists() and not beside_output.exists()


def test_a_file_that_cannot_be_written_fails_its_image_clearly(
    project: ProjectDir, emulator: Emulator
) -> None:
    # A file where the output's folder should be fails the write even for root.
    project.write_manifest("""
        version = 1
        [images.ok]
        prompt = "an image that can be written"
        [images.blocked]
        prompt = "an image whose folder is a file"
        output = "blocked/x.png"
    """)
    (project.root / "generated").mkdir()
    (project.root / "generated" / "blocked").write_text("a file where a folder should be")
    report = run_build(project, emulator)
    outcomes = {r.name: (r.outcome, r.message) for r in report.results}
    assert outcomes["ok"][0] == "built"
    assert outcomes["blocked"][0] == "failed"
    assert "cannot write its files" in outcomes["blocked"][1]
    assert "stays journaled" in outcomes["blocked"][1]


def test_responsive_outputs_are_derived_checked_and_restored_without_the_api(
    project: ProjectDir, emulator: Emulator
) -> None:
    project.write_manifest("""
        version = 1
        [images.hero]
        prompt = "a hero banner in several sizes"
        resolution = "1K"
        aspect_ratio = "16:9"
        output = "hero.png"
        sizes = [256, 512]
        formats = ["webp"]
    """)
    run_build(project, emulator)
    out = project.root / "generated"
    expected = {"hero-256w.png": (256, 144), "hero-512w.png": (512, 288),
                "hero.webp": (1024, 576), "hero-256w.webp": (256, 144),
                "hero-512w.webp": (512, 288)}
    for name, size in expected.items():
        with Image.open(out / name) as image:
            assert image.size == size, name
    derived: list[dict[str, str]] = lock_of(project)["hero"]["derived"]  # type: ignore[assignment]
    assert [d["path"] for d in derived] == [f"generated/{n}" for n in (
        "hero-256w.png", "hero-512w.png", "hero.webp", "hero-256w.webp", "hero-512w.webp")]
    for record in derived:
        assert sha256_file(project.root / record["path"]) == record["sha256"]
    assert Project.load(project.manifest).plan(provider="emulator").up_to_date

    (out / "hero-256w.webp").unlink()
    status = Project.load(project.manifest).plan(provider="emulator").images[0]
    assert (status.status, status.reason) == (
        "missing-output", "derived file generated/hero-256w.webp is missing")
    run_build(project, emulator)
    assert (out / "hero-256w.webp").exists()

    project.manifest.write_text(project.manifest.read_text().replace("[256, 512]", "[128]"))
    status = Project.load(project.manifest).plan(provider="emulator").images[0]
    assert status.reason == "derived files (sizes, formats) changed"
    run_build(project, emulator)
    with Image.open(out / "hero-128w.webp") as image:
        assert image.size == (128, 72)
    assert Project.load(project.manifest).plan(provider="emulator").up_to_date
    assert emulator.stats.submits == 1, "sizes and formats never call the API"


def test_the_lockfile_is_written_during_a_build_not_only_at_its_end(
    project: ProjectDir
) -> None:
    from assetbuild.journal import Journal
    from assetbuild.outcomes import BuildEvent

    project.write_manifest("""
        version = 1
        [images.tile]
        prompt = "tile {{ n }}"
        matrix = { n = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }
    """)
    lockfile = project.root / "assetbuild.lock"
    seen: list[int] = []

    def look(event: BuildEvent) -> None:
        if event.kind == "finished":
            seen.append(len(tomllib.loads(lockfile.read_text()).get("images", {}))
                        if lockfile.exists() else 0)

    emulator = Emulator(EmulatorConfig(latency_min=0.2, latency_max=0.2, plain_images=True))
    report = build(Project.load(project.manifest),
                   BuildOptions(provider="emulator", jobs=2, lock_flush_interval=0.1),
                   reporter=look, emulator=emulator)
    assert report.count("built") == 12
    assert any(0 < count < 12 for count in seen), f"written along the way: {seen}"
    assert len(lock_of(project)) == 12
    from assetbuild.emulator import IN_PROCESS_BASE_URL
    from assetbuild.providers import EMULATOR_KEY

    journal = Journal(Project.load(project.manifest).manifest.state_dir, IN_PROCESS_BASE_URL,
                      EMULATOR_KEY)
    assert journal.entries() == [], "the lockfile holds every result: the journal is empty"
    journal.close()


def test_a_restored_output_is_not_read_again_by_the_next_check(
    simple_project: ProjectDir, emulator: Emulator
) -> None:
    import os

    run_build(simple_project, emulator)
    hero = simple_project.root / "generated/hero.png"
    hero.unlink()
    pull(Project.load(simple_project.manifest), provider="emulator")
    # Other bytes with the same size, mtime and inode: only the digest remembered at
    # restore time (not a fresh read) can call it up to date.
    stat, data = hero.stat(), hero.read_bytes()
    with hero.open("r+b") as handle:
        handle.write(bytes([data[0] ^ 0xFF]))
    os.utime(hero, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    plan = Project.load(simple_project.manifest).plan(provider="emulator")
    assert {i.name: i.status for i in plan.images}["hero"] == "up-to-date"


def test_a_large_build_keeps_a_window_of_image_tasks_not_one_per_image(
    project: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tasks are started as earlier ones end (four per job here), in plan order, so an
    image waiting for its reference never waits for a task not yet started."""
    import asyncio

    import assetbuild.engine.builder
    from assetbuild.outcomes import BuildEvent

    monkeypatch.setattr(assetbuild.engine.builder, "LIVE_TASKS", 1)
    project.write_manifest("""
        version = 1
        [images.tile]
        prompt = "tile {{ n }}"
        matrix = { n = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                        19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35] }
        [images.last]
        prompt = "like the last tile"
        references = ["image:tile[n=35]"]
    """)
    alive: list[int] = []

    def look(event: BuildEvent) -> None:
        images = [task for task in asyncio.all_tasks()
                  if getattr(task.get_coro(), "__qualname__", "") == "Builder._image"]
        alive.append(len(images))

    report = build(Project.load(project.manifest), BuildOptions(provider="emulator", jobs=1),
                   reporter=look, emulator=Emulator(EmulatorConfig(plain_images=True)))
    assert report.count("built") == 37
    assert 1 <= max(alive) <= 4, f"image tasks alive at once: {max(alive)}"
