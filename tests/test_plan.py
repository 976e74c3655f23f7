"""Statuses: every reason an image is stale, and the stat cache behind output checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assetbuild.errors import UsageError
from assetbuild.project import Project
from assetbuild.state import FileDigests, StateStore
from tests.conftest import ProjectDir, lock_as_built


def statuses(project: ProjectDir, *targets: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    plan = Project.load(project.manifest).plan(targets)
    return {item.name: (item.status, item.changed) for item in plan.images}


def test_everything_is_new_without_a_lockfile(simple_project: ProjectDir) -> None:
    assert {s for s, _ in statuses(simple_project).values()} == {"new"}


def test_a_fresh_lockfile_is_up_to_date(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    plan = Project.load(simple_project.manifest).plan()
    assert plan.up_to_date and len(plan.images) == 6


def test_changed_names_the_fields(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(
        text.replace('aspect_ratio = "16:9"', 'aspect_ratio = "4:3"\nresolution = "4K"'))
    found = statuses(simple_project)
    assert found["hero"] == ("changed", ("aspect_ratio", "resolution"))
    assert found["logo"][0] == "up-to-date"


def test_dependents_of_a_stale_image_are_upstream_changed(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text.replace("Logo for", "New logo for"))
    found = statuses(simple_project)
    assert found["logo"] == ("changed", ("prompt",))
    assert found["hero"] == ("upstream-changed", ())


def test_missing_and_modified_outputs(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    (simple_project.root / "generated/hero.png").unlink()
    (simple_project.root / "generated/logo.png").write_bytes(b"edited by hand")
    found = statuses(simple_project)
    assert found["hero"][0] == "missing-output"
    assert found["logo"][0] == "modified-output"


def test_renamed_output_needs_a_restore_not_a_build(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    text = simple_project.manifest.read_text()
    simple_project.manifest.write_text(text.replace('output = "hero.png"', 'output = "h.webp"'))
    plan = Project.load(simple_project.manifest).plan()
    hero = next(i for i in plan.images if i.name == "hero")
    assert (hero.status, hero.action) == ("missing-output", "restore")
    assert "moved from generated/hero.png" in hero.reason


def test_provider_is_part_of_the_spec(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project, provider="emulator")
    plan = Project.load(simple_project.manifest).plan(provider="see2ai")
    assert {i.changed for i in plan.images} == {("provider",)}


def test_targets_select_globs_and_pull_in_dependencies(simple_project: ProjectDir) -> None:
    assert list(statuses(simple_project, "hero")) == ["logo", "hero"]
    assert len(statuses(simple_project, "card*")) == 4
    assert len(statuses(simple_project, "card")) == 4
    assert list(statuses(simple_project, "card[color=red,ratio=1:1]")) == [
        "card[color=red,ratio=1:1]"]
    with pytest.raises(UsageError, match="did you mean 'hero'"):
        statuses(simple_project, "heor")


def test_force_marks_selected_images_changed(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    plan = Project.load(simple_project.manifest).plan(["logo"], force=True)
    assert [(i.name, i.status, i.reason) for i in plan.images] == [("logo", "changed", "--force")]


def test_stat_cache_skips_unchanged_files(tmp_path: Path) -> None:
    state = tmp_path / ".assetbuild"
    target = tmp_path / "out.png"
    target.write_bytes(b"first")
    store = StateStore(state)
    digests = FileDigests(store)
    first = digests.digest(target)
    digests.save()
    store.close()

    # Same size, same mtime, same inode: the cached digest is trusted (as make trusts
    # mtimes), which is what lets a no-op check skip reading every file.
    stat = target.stat()
    with target.open("r+b") as handle:
        handle.write(b"FIRST")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert FileDigests(StateStore(state)).digest(target) == first

    # A new mtime means the file is read and hashed again.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = FileDigests(StateStore(state))
    assert again.digest(target) != first
    assert FileDigests(StateStore(state)).digest(tmp_path / "absent.png") is None


@pytest.mark.parametrize("size", [100, 20_000], ids=["small-in-one-thread", "large-in-two"])
def test_a_fresh_clones_outputs_are_hashed_ahead(tmp_path: Path, size: int) -> None:
    """prefetch fills the digest table for files it has never seen, so the plan's
    digest calls read nothing more; vanished files are left out, known ones untouched
    (small files in the calling thread, large ones in two threads)."""
    import hashlib

    files: list[str] = []
    for index in range(40):
        picture = tmp_path / f"{index}.png"
        picture.write_bytes(f"{index:>{size}}".encode())
        files.append(str(picture))
    digests = FileDigests(StateStore(tmp_path / ".assetbuild"))
    digests.prefetch([(name, size) for name in [*files, str(tmp_path / "gone.png")]])
    for name in files:
        Path(name).write_bytes(b"changed after the prefetch")  # a new size: read again
    table = digests._load()
    assert set(table) == set(files), "every readable file, and only those"
    first = files[0]
    assert table[first][3] == hashlib.sha256(f"{0:>{size}}".encode()).hexdigest()
    assert table[first][0] == size
    assert digests.digest(first) == hashlib.sha256(b"changed after the prefetch").hexdigest()


def test_cached_resolution_notices_every_input(project: ProjectDir) -> None:
    """The resolution kept in .assetbuild is dropped when anything it read changes."""
    project.write("prompts/p.j2", 'Hello {% include "prompts/part.j2" %}')
    project.write("prompts/part.j2", "world")
    project.write("ref.png", "reference one")
    project.write_manifest("""
        version = 1
        [images.a]
        prompt_file = "prompts/p.j2"
        references = ["ref.png"]
    """)
    lock_as_built(project)
    assert Project.load(project.manifest).plan().up_to_date
    assert Project.load(project.manifest).plan().up_to_date  # now from the cache

    (project.root / "prompts/part.j2").write_text("there, a longer include")
    assert statuses(project)["a"] == ("changed", ("prompt",))
    lock_as_built(project)
    (project.root / "ref.png").write_text("reference two, longer")
    assert statuses(project)["a"] == ("changed", ("references",))


def test_cached_resolution_is_reused_from_any_working_folder(
        project: ProjectDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run from another folder (``-f path/assetbuild.toml``, as CI does)
    reuses the resolution too: its output folders are checked by absolute name."""
    project.write_manifest('version = 1\n[images.a]\nprompt = "a"\noutput = "sub/a.png"\n')
    (project.root / "generated" / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    first = Project.load(project.manifest).resolved.token
    assert Project.load(project.manifest).resolved.token == first, "resolved again"
    monkeypatch.chdir(project.root)
    assert Project.load(project.manifest).resolved.token == first


def test_cached_resolution_rechecks_symlink_escapes(project: ProjectDir) -> None:
    import shutil

    from assetbuild.errors import ManifestError

    project.write_manifest('version = 1\n[images.a]\nprompt = "a"\noutput = "sub/a.png"\n')
    (project.root / "generated" / "sub").mkdir(parents=True)
    Project.load(project.manifest)
    shutil.rmtree(project.root / "generated" / "sub")
    (project.root / "generated" / "sub").symlink_to(project.root.parent)
    with pytest.raises(ManifestError, match="leads outside"):
        Project.load(project.manifest)


def test_cached_lockfile_notices_hand_edits(simple_project: ProjectDir) -> None:
    lock_as_built(simple_project)
    assert Project.load(simple_project.manifest).plan().up_to_date
    lock = simple_project.root / "assetbuild.lock"
    lock.write_text(lock.read_text().replace('spec_hash = "', 'spec_hash = "0', 1))
    assert not Project.load(simple_project.manifest).plan().up_to_date


def test_loading_and_planning_run_without_garbage_collections(project: ProjectDir) -> None:
    """Project.load and plan pause the collector (their objects live on and make no
    cycles) and put its state back afterwards: at most the one collection each that
    turning it back on starts, where 1,200 images took about two dozen."""
    import gc

    values = ", ".join(str(n) for n in range(400))
    project.write_manifest(f'version = 1\n[images.tile]\nprompt = "tile {{{{ a }}}}-{{{{ b }}}}"'
                           f'\nmatrix = {{ a = [{values}], b = [1, 2, 3] }}\n')
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        plan = Project.load(project.manifest).plan()
    finally:
        gc.callbacks.remove(count)
    assert len(plan.images) == 1200
    assert len(collections) <= 2, f"collections while loading: {len(collections)}"
    assert gc.isenabled()
    gc.disable()
    try:
        Project.load(project.manifest).plan()
        assert not gc.isenabled(), "a collector turned off stays off"
    finally:
        gc.enable()
