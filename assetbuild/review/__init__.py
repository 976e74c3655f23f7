"""``assetbuild review``: what a build made, beside what was there before, as a page.

:func:`make_review` compares the lockfile with its base (a git revision, or the last
build's), finds the old and new pictures, and writes a self-contained folder whose
``index.html`` opens from disk with no server, no network and no key.

>>> review = make_review(Project.load("assetbuild.toml"), ReviewOptions())
...                                                            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assetbuild.errors import UsageError
from assetbuild.lockfile import LockEntry, Take
from assetbuild.project import Project
from assetbuild.review.base import Base, keep_review_base, open_base
from assetbuild.review.changes import SECTIONS, Change, ImageChange, compare, select
from assetbuild.review.pictures import Missing, Picture, PictureFolder, Wanted, find_pictures

__all__ = ["Review", "ReviewCard", "ReviewOptions", "keep_review_base", "make_review"]

DEFAULT_FOLDER = "assetbuild-review"
MARKER = ".assetbuild-review"
"""A file every review folder holds: only such a folder is ever replaced."""


@dataclass(frozen=True)
class ReviewOptions:
    """What to review and where to write it."""

    targets: tuple[str, ...] = ()
    since: str | None = None
    """A git revision; None: ``HEAD`` in git, else the last build."""
    folder: Path = Path(DEFAULT_FOLDER)
    cache_dir: Path | None = None
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TakeView:
    """One take on the contact sheet."""

    number: int
    chosen: bool
    task_id: str
    picture: Picture | Missing


@dataclass(frozen=True)
class ReviewCard:
    """One image's card: its change and the pictures on either side."""

    change: ImageChange
    old: Picture | Missing | None = None
    new: Picture | Missing | None = None
    takes: tuple[TakeView, ...] = ()


@dataclass(frozen=True)
class Review:
    """A written review: its folder, what it compared with, and its cards."""

    manifest: str
    base: str
    folder: Path
    cards: tuple[ReviewCard, ...] = field(default_factory=tuple)

    @property
    def page(self) -> Path:
        """The review's ``index.html``."""
        return self.folder / "index.html"

    def section(self, change: Change) -> list[ReviewCard]:
        """The cards of one section, by name."""
        return [card for card in self.cards if card.change.change == change]

    def counts(self) -> dict[str, int]:
        """How many images each section holds."""
        return {change: len(self.section(change)) for change in SECTIONS}


def make_review(project: Project, options: ReviewOptions) -> Review:
    """Compare, gather the pictures and write the review folder (replacing an older
    review there, never any other folder); return what it shows."""
    from assetbuild.cache import ResultCache, default_cache_dir
    from assetbuild.review.page import write_page

    _check_folder(options.folder)
    base = open_base(project, options.since)
    cache = ResultCache(options.cache_dir or default_cache_dir(options.environ))
    scratch = Path(tempfile.mkdtemp(prefix=f".{options.folder.name}-",
                                    dir=_parent(options.folder)))
    try:
        old, new = base.lockfile(), project.read_lockfile()
        names = select(old, new, options.targets, str(project.manifest.path))
        changes = compare(old, new, names)
        cards = _cards(changes, base, PictureFolder(scratch), project.root,
                       cache.read_blob, options.environ)
        review = Review(shown_path(project.manifest.path), base.description, options.folder,
                        tuple(cards))
        write_page(review, scratch)
        (scratch / MARKER).write_text("A review written by assetbuild; safe to delete.\n")
        _swap_in(scratch, options.folder)
    finally:
        base.close()
        cache.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return review


def _cards(changes: list[ImageChange], base: Base, folder: PictureFolder, root: Path,
           read_cached: Callable[[str], bytes | None],
           environ: Mapping[str, str] | None) -> list[ReviewCard]:
    found = find_pictures(_wanted(changes, base), folder, root=root,
                          read_cached=read_cached, environ=environ)
    return [_card(change, found) for change in changes]


def _wanted(changes: list[ImageChange], base: Base) -> list[Wanted]:
    """The pictures the cards show: none for an unchanged image."""
    wanted: list[Wanted] = []
    for change in changes:
        if change.change == "unchanged":
            continue
        if change.old is not None:
            wanted.append(_old_wanted(change.old, base))
        if change.new is not None:
            wanted.append(_new_wanted(change.new))
            wanted += [_take_wanted(take) for take in _sheet(change.new)]
    return wanted


def _card(change: ImageChange, found: Mapping[str, Picture | Missing]) -> ReviewCard:
    if change.change == "unchanged":
        return ReviewCard(change)
    old = found.get(_first_sha(change.old)) if change.old else None
    new: Picture | Missing | None = None
    takes: tuple[TakeView, ...] = ()
    if change.new is not None:
        new = found.get(_first_sha(change.new))
        takes = tuple(TakeView(number, number == change.new.take, take.task_id,
                               found[take.sha256[0]])
                      for number, take in enumerate(_sheet(change.new), start=1))
    return ReviewCard(change, old, new, takes)


def shown_path(path: Path) -> str:
    """A path as the page shows it: relative to the working folder when below it."""
    try:
        return path.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def _sheet(entry: LockEntry) -> tuple[Take, ...]:
    """The takes a contact sheet shows: all of them, when there is more than one."""
    return entry.takes if len(entry.takes) > 1 else ()


def _first_sha(entry: LockEntry | None) -> str:
    return entry.outputs[0].sha256 if entry is not None and entry.outputs else ""


def _old_wanted(entry: LockEntry, base: Base) -> Wanted:
    output = entry.outputs[0]
    return Wanted(output.sha256, output.path, lambda: base.file(output.path),
                  entry.first_url)


def _new_wanted(entry: LockEntry) -> Wanted:
    output = entry.outputs[0]
    return Wanted(output.sha256, output.path, None, entry.first_url)


def _take_wanted(take: Take) -> Wanted:
    return Wanted(take.sha256[0], None, None, take.result_urls[0])


def _parent(folder: Path) -> Path:
    parent = folder.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _check_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or (
            any(folder.iterdir()) and not (folder / MARKER).exists())):
        raise UsageError(f"review -o {folder}: it exists and is not a review folder "
                         f"(no {MARKER} file in it), so it is left alone; name a new folder "
                         "or an older review's")


def _swap_in(scratch: Path, folder: Path) -> None:
    """Move the finished review into place; an older review there is removed first."""
    if folder.exists():
        retired = scratch.with_name(scratch.name + "-old")
        folder.rename(retired)
        shutil.rmtree(retired, ignore_errors=True)
    scratch.rename(folder)
    with contextlib.suppress(OSError):
        folder.chmod(0o755)  # mkdtemp made it private; the page is for sharing
