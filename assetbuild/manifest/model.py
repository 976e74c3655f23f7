"""Read and validate an assetbuild manifest (TOML) into plain, frozen data.

Validation collects every problem it finds, each naming the file, the image, the
field and (where the text allows) the line, and raises one :class:`ManifestError`.
Templates are not rendered here: see :mod:`assetbuild.render`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetbuild.errors import Problem

DEFAULT_MANIFEST = "assetbuild.toml"
MANIFEST_VERSION = 1
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_MATRIX_IMAGES = 1_000_000
"""Images one matrix may expand to."""
MAX_IMAGES = 250_000
"""Images a whole manifest may expand to (every matrix together)."""
MAX_KEY_DOTS = 64
"""Dots one key may have (``a.b.c = 1``)."""
MAX_VARS_DEPTH = 32
"""How deeply tables and lists in ``vars`` may nest."""

TOP_KEYS = ("version", "settings", "vars", "defaults", "images")
SETTINGS_KEYS = ("out_dir", "lockfile", "jobs", "provider", "timeout", "price_ceilings",
                 "remote", "remote_readonly")
DEFAULTS_KEYS = ("resolution", "aspect_ratio", "output", "takes")
IMAGE_KEYS = (
    "prompt", "prompt_file", "output", "aspect_ratio", "resolution",
    "references", "vars", "matrix", "sizes", "formats", "takes",
)
MAX_TAKES = 8
"""Takes an image may ask for, and keep."""
FORMAT_SPELLINGS = {"jpg": "jpeg", "JPG": "jpeg", "PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


@dataclass(frozen=True)
class Settings:
    """The ``[settings]`` table."""

    out_dir: str = "generated"
    lockfile: str = "assetbuild.lock"
    jobs: int = 8
    provider: str = "see2ai"
    timeout: float = 900.0
    price_ceilings: tuple[tuple[str, float], ...] = ()
    remote: str = ""
    """The team's remote result store (a URL), or "" for none."""
    remote_readonly: bool = False
    """Points ``--max-cost`` sets aside per image at a resolution whose price is not
    known yet, where the project's own differ from :data:`assetbuild.cost.PRICE_CEILINGS`."""


@dataclass(frozen=True)
class Defaults:
    """The ``[defaults]`` table: fields an image takes when it does not set them."""

    resolution: str = "2K"
    aspect_ratio: str = "auto"
    output: str | None = None
    takes: int = 1


@dataclass(frozen=True)
class ImageDecl:
    """One ``[images.NAME]`` table as written, before templates are rendered."""

    name: str
    prompt: str | None
    prompt_file: str | None
    output: str | None
    aspect_ratio: str | None
    resolution: str | None
    references: tuple[str, ...]
    vars: Mapping[str, Any]
    matrix: tuple[tuple[str, tuple[Any, ...]], ...]
    lines: Mapping[str, int] = field(default_factory=dict)
    sizes: tuple[int, ...] = ()
    """Widths of resized copies derived from the generated image (no API call)."""
    formats: tuple[str, ...] = ()
    """Formats of converted copies derived from the generated image."""
    takes: int | None = None
    """Tasks of the same spec to pay for and keep (None: the default's)."""

    def line(self, field_name: str | None = None) -> int | None:
        """The line of ``field_name`` in the manifest, else of the image's table."""
        if field_name and field_name in self.lines:
            return self.lines[field_name]
        return self.lines.get("")


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: settings, global vars, defaults and image declarations."""

    path: Path
    settings: Settings
    vars: Mapping[str, Any]
    defaults: Defaults
    images: tuple[ImageDecl, ...]

    @property
    def root(self) -> Path:
        """The manifest's folder, resolved: every relative path is inside it."""
        return self.path.parent

    @property
    def lockfile_path(self) -> Path:
        """Where the lockfile lives."""
        return self.root / self.settings.lockfile

    @property
    def state_dir(self) -> Path:
        """The project's state folder (stat cache, journal, build lock)."""
        return self.root / ".assetbuild"

    def problem(
        self, message: str, image: ImageDecl | None = None, field_name: str | None = None
    ) -> Problem:
        """A :class:`Problem` located in this manifest."""
        return Problem(
            file=self.path,
            message=message,
            image=image.name if image else None,
            field=field_name,
            line=image.line(field_name) if image else None,
        )


def matrix_label(value: Any) -> str:
    """How a matrix value is spelled in an image name: TOML's spelling for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
