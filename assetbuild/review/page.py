"""The review page: one ``index.html`` with its styles inside, pictures beside it.

Rendered with Jinja's autoescaping on: prompts and names come from the manifest and the
lockfile, which a pull request may have written, and none of it may become markup.
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetbuild.fsutil import atomic_write_bytes
from assetbuild.review.changes import SECTIONS
from assetbuild.review.pictures import Missing, Picture

if TYPE_CHECKING:
    from assetbuild.review import Review

TITLES = {"changed": "Changed", "new": "New", "removed": "Removed",
          "unchanged": "Unchanged"}
SOURCES = {"working tree": "from the working tree", "git": "from git",
           "result cache": "from the result cache", "URL": "downloaded from its URL"}


def write_page(review: Review, folder: Path) -> None:
    """Write ``index.html`` for ``review`` into ``folder``."""
    atomic_write_bytes(folder / "index.html", render_page(review).encode("utf-8"))


def render_page(review: Review) -> str:
    """The page's HTML."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    environment.filters["size"] = human_size
    environment.filters["shell"] = shlex.quote
    environment.tests["picture"] = lambda value: isinstance(value, Picture)
    environment.tests["missing"] = lambda value: isinstance(value, Missing)
    source = resources.files("assetbuild.review").joinpath("page.html.j2").read_text("utf-8")
    template = environment.from_string(source)
    return template.render(review=review, sections=_sections(review), titles=TITLES,
                           sources=SOURCES)


def _sections(review: Review) -> list[tuple[str, list[Any]]]:
    return [(change, review.section(change)) for change in SECTIONS]


def human_size(count: int) -> str:
    """Bytes as people read them: ``1.4 MB``, ``980 KB``, ``312 bytes``."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1_000:
        return f"{count / 1_000:.0f} KB"
    return f"{count} bytes"
