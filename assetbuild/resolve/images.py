"""Resolved images as plain frozen data: a manifest's images with matrices expanded,
templates rendered, references classified and hashed, and outputs placed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from assetbuild.formats import BY_NAME, BY_SUFFIX
from assetbuild.hashing import stat_key
from assetbuild.manifest import Manifest


@dataclass(frozen=True)
class Reference:
    """One reference image: a URL, another image of the manifest, or a local file."""

    kind: Literal["url", "image", "file"]
    value: str
    """The URL, the image name, or the file's path relative to the manifest's folder."""
    sha256: str | None = None
    """The local file's content digest (files only)."""


@dataclass(frozen=True)
class ResolvedImage:
    """An image with every template rendered: exactly what would be requested."""

    name: str
    base_name: str
    prompt: str
    aspect_ratio: str
    resolution: str
    references: tuple[Reference, ...]
    output: str
    """The primary output path, relative to the manifest's folder (POSIX)."""
    sizes: tuple[int, ...] = ()
    formats: tuple[str, ...] = ()
    takes: int = 1
    """Tasks of this spec a build pays for and keeps (not in the spec hash)."""

    def derived_outputs(self) -> list[tuple[str, int | None, str]]:
        """(path, width or None, format) of each file derived from the primary output:
        every requested format at full size and at each width; ``hero-640w.webp``."""
        if not self.sizes and not self.formats:
            return []  # the common case, asked for 10,000 times by a no-op check
        primary = PurePosixPath(self.output)
        own = BY_SUFFIX[primary.suffix.lower()].name
        derived = []
        for fmt in dict.fromkeys((own, *self.formats)):
            for width in (None, *self.sizes):
                if fmt == own and width is None:
                    continue
                stem = f"{primary.stem}-{width}w" if width else primary.stem
                suffix = primary.suffix if fmt == own else BY_NAME[fmt].suffixes[0]
                derived.append((str(primary.with_name(stem + suffix)), width, fmt))
        return derived

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Names of the images this one references with ``image:NAME``."""
        return tuple(r.value for r in self.references if r.kind == "image")

    def output_paths(self, count: int) -> list[str]:
        """Output paths for ``count`` results: name.png, name-2.png, name-3.png, ..."""
        if count == 1:
            return [self.output]
        primary = PurePosixPath(self.output)
        return [self.output] + [
            str(primary.with_name(f"{primary.stem}-{i}{primary.suffix}"))
            for i in range(2, count + 1)
        ]


@dataclass(frozen=True)
class ResolutionInputs:
    """What a resolution read besides the manifest, to tell whether it still holds."""

    files: tuple[tuple[str, tuple[int, int, int]], ...] = ()
    """Template and reference files with their (size, mtime_ns, inode)."""
    folders: tuple[tuple[str, str], ...] = ()
    """Output folders and where they resolved to (symlinks followed)."""

    def unchanged(self) -> bool:
        """Whether every file and folder is as it was (one stat or resolve each)."""
        try:
            for name, key in self.files:
                if stat_key(Path(name).stat()) != key:
                    return False
        except OSError:
            return False
        return all(str(Path(name).resolve()) == resolved for name, resolved in self.folders)


@dataclass(frozen=True)
class ResolvedManifest:
    """All images of a manifest, in dependency order (every image after its references)."""

    manifest: Manifest
    images: tuple[ResolvedImage, ...]
    inputs: ResolutionInputs = field(default_factory=ResolutionInputs)
    warnings: tuple[str, ...] = ()
    """What is allowed but unwise (an output name web servers refuse), to show."""
    token: str = ""
    """Names this resolution in the state folder (memos made from it carry it)."""

    def by_name(self) -> dict[str, ResolvedImage]:
        """Images keyed by name."""
        return {image.name: image for image in self.images}


LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}


def picture_width(resolution: str, aspect: str) -> int:
    """The width of a generated picture (the long side follows the resolution; for
    ``auto``, the largest it can be)."""
    long_side = LONG_SIDE[resolution]
    if aspect == "auto":
        return long_side
    across, down = (int(n) for n in aspect.split(":"))
    return long_side if across >= down else round(long_side * across / down)
