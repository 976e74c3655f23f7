"""Local reference images made acceptable to the platform's upload before they are sent.

The upload (``see2ai_storage_upload_v1``) takes at most 50 MB, refuses empty files,
refuses WebP with 422 ("convert to JPG or PNG first") and rewrites spaces in file
names. So: empty and oversized files are manifest errors (:func:`upload_problem`);
PNG and JPEG are sent as they are; any other format Pillow reads (WebP, GIF, BMP,
TIFF...) is converted to PNG first (:func:`prepare_upload`); the name sent has no
spaces. The spec hash and the upload cache key stay the source file's own content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from assetbuild._types import MAX_UPLOAD_BYTES
from assetbuild.formats import sniff


@dataclass(frozen=True)
class UploadFile:
    """What is sent for one reference: its name, bytes and type."""

    name: str
    data: bytes
    content_type: str
    converted_from: str | None = None
    """The source's format when it was converted to PNG (``WEBP``...), else None."""


def upload_problem(size: int) -> str | None:
    """Why the upload would refuse a file of ``size`` bytes, or None."""
    if size == 0:
        return "is empty (the upload refuses empty files)"
    if size > MAX_UPLOAD_BYTES:
        return (f"is {size / 1024 / 1024:.1f} MB; the upload takes at most "
                f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB")
    return None


def prepare_upload(path: Path) -> UploadFile:
    """The file at ``path`` as the upload takes it (file work: run it in a thread).

    Raises ValueError naming the reason when a file in a format the upload refuses
    cannot be converted."""
    data = path.read_bytes()
    name = path.name.replace(" ", "_")
    found = sniff(data[:16])
    if found is not None and found.uploadable:
        return UploadFile(name, data, found.media_type)
    converted = _as_png(data)
    if converted is None:  # not an image Pillow knows: the API has the last word
        return UploadFile(name, data, "application/octet-stream")
    png, source_format = converted
    return UploadFile(f"{Path(name).stem}.png", png, "image/png", source_format)


def _as_png(data: bytes) -> tuple[bytes, str] | None:
    """``data`` re-encoded as PNG (first frame), with its source format; None when
    Pillow does not recognise it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            source_format = image.format or "unknown"
            image.load()
            keep = image if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16") else (
                image.convert("RGBA" if "A" in image.getbands() else "RGB"))
            out = io.BytesIO()
            keep.save(out, "PNG")
    except UnidentifiedImageError:
        return None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot be converted to PNG for the upload ({exc})") from None
    return out.getvalue(), source_format
