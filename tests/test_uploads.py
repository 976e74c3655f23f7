"""Local references made acceptable to the platform's upload: PNG and JPEG as they are,
WebP and other formats converted to PNG, no spaces in the name sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from assetbuild.uploads import prepare_upload, upload_problem


def _picture(path: Path, image_format: str, mode: str = "RGB") -> Image.Image:
    picture = Image.new(mode, (24, 16), (200, 40, 90, 255)[:len(mode)])
    picture.putpixel((3, 5), (10, 220, 30, 128)[:len(mode)])
    picture.save(path, image_format, **({"lossless": True} if image_format == "WEBP" else {}))
    return picture


@pytest.mark.parametrize(("image_format", "content_type"), [("PNG", "image/png"),
                                                            ("JPEG", "image/jpeg")])
def test_png_and_jpeg_are_sent_as_they_are(tmp_path: Path, image_format: str,
                                           content_type: str) -> None:
    source = tmp_path / "my ref.img"
    _picture(source, image_format)
    sent = prepare_upload(source)
    assert sent.data == source.read_bytes() and sent.content_type == content_type
    assert sent.name == "my_ref.img" and sent.converted_from is None


@pytest.mark.parametrize(("image_format", "mode"), [("WEBP", "RGBA"), ("GIF", "P"),
                                                    ("BMP", "RGB"), ("TIFF", "RGB")])
def test_other_formats_are_converted_to_png_pixel_for_pixel(
        tmp_path: Path, image_format: str, mode: str) -> None:
    source = tmp_path / f"brand shot.{image_format.lower()}"
    _picture(source, image_format, mode if mode != "P" else "RGB")
    sent = prepare_upload(source)
    assert sent.name == "brand_shot.png" and sent.content_type == "image/png"
    assert sent.converted_from == image_format
    with Image.open(source) as original, Image.open(io.BytesIO(sent.data)) as converted:
        assert converted.format == "PNG" and converted.size == original.size
        assert converted.convert("RGBA").tobytes() == original.convert("RGBA").tobytes()


def test_bytes_no_image_library_knows_are_left_to_the_api(tmp_path: Path) -> None:
    source = tmp_path / "notes.png"
    source.write_bytes(b"reference bytes")
    sent = prepare_upload(source)
    assert sent.data == b"reference bytes" and sent.content_type == "application/octet-stream"


def test_a_broken_webp_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "broken.webp"
    _picture(source, "WEBP")
    source.write_bytes(source.read_bytes()[:40])
    with pytest.raises(ValueError, match="cannot be converted to PNG for the upload"):
        prepare_upload(source)


def test_what_the_upload_refuses_by_size() -> None:
    assert upload_problem(0) == "is empty (the upload refuses empty files)"
    assert upload_problem(50 * 1024 * 1024) is None
    assert upload_problem(50 * 1024 * 1024 + 1) == (
        "is 50.0 MB; the upload takes at most 50 MB")
