"""The image formats assetbuild reads and writes: one table, by name, suffix, magic
bytes and media type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    """One image format."""

    name: str
    """Our name for it (``png``, ``jpeg``, ``webp``), as manifests write it."""
    pillow: str
    """Pillow's name for it."""
    suffixes: tuple[str, ...]
    """File name suffixes, the usual one first."""
    media_type: str
    uploadable: bool
    """Whether the platform's upload takes it as it is (it refuses WebP)."""


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("png", "PNG", (".png",), "image/png", uploadable=True),
    ImageFormat("jpeg", "JPEG", (".jpg", ".jpeg"), "image/jpeg", uploadable=True),
    ImageFormat("webp", "WEBP", (".webp",), "image/webp", uploadable=False),
)
BY_NAME = {image_format.name: image_format for image_format in FORMATS}
FORMAT_NAMES = tuple(BY_NAME)
OUTPUT_SUFFIXES = tuple(suffix for image_format in FORMATS for suffix in image_format.suffixes)
BY_SUFFIX = {suffix: image_format for image_format in FORMATS
             for suffix in image_format.suffixes}


def sniff(head: bytes) -> ImageFormat | None:
    """The format whose magic bytes start ``head`` (16 bytes are enough), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return BY_NAME["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return BY_NAME["jpeg"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return BY_NAME["webp"]
    return None
