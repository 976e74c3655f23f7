"""Leftovers: lock entries and output files the manifest no longer declares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assetbuild.fsutil import TEMP_PREFIX
from assetbuild.lockfile import Lockfile, LockfileWriter
from assetbuild.project import Project


@dataclass(frozen=True)
class Leftovers:
    """What a manifest no longer declares: lock entries by name, files by path."""

    entries: tuple[str, ...]
    files: tuple[str, ...]
    """Paths relative to the manifest's folder, under ``out_dir`` only."""

    def __bool__(self) -> bool:
        return bool(self.entries or self.files)


def leftover_entries(project: Project, lockfile: Lockfile) -> tuple[str, ...]:
    """Lock entries of images the manifest no longer declares (cheap: no file access)."""
    declared = {image.name for image in project.resolved.images}
    return tuple(sorted(set(lockfile.entries) - declared))


def find_leftovers(project: Project, lockfile: Lockfile) -> Leftovers:
    """Leftover lock entries, and files under ``out_dir`` that no declared image writes."""
    entries = leftover_entries(project, lockfile)
    wanted: set[str] = set()
    for image in project.resolved.images:
        entry = lockfile.get(image.name)
        wanted.update(image.output_paths(len(entry.outputs) if entry else 1))
        wanted.update(path for path, _, _ in image.derived_outputs())
    root = project.root
    out_dir = root / project.manifest.settings.out_dir
    files = sorted(
        path.relative_to(root).as_posix()
        for path in (out_dir.rglob("*") if out_dir.is_dir() else ())
        if path.is_file() and not path.name.startswith(TEMP_PREFIX)
        and path.relative_to(root).as_posix() not in wanted
    )
    return Leftovers(entries, tuple(files))


def remove_leftovers(project: Project, lockfile: Lockfile, leftovers: Leftovers) -> None:
    """Delete leftover files (and folders they leave empty) and drop leftover entries."""
    root = project.root
    for relative in leftovers.files:
        path = root / relative
        path.unlink(missing_ok=True)
        _remove_empty_parents(path.parent, root / project.manifest.settings.out_dir)
    if leftovers.entries:
        kept = {n: e for n, e in lockfile.entries.items() if n not in leftovers.entries}
        LockfileWriter().write(project.manifest.lockfile_path, kept)


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and stop in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
