"""Placeholder images: real PNGs sized by resolution x aspect ratio, showing the prompt.

The same prompt, aspect ratio, resolution, index and variant always give the same bytes;
each task has its own variant, so two tasks of one spec give two pictures, as the
platform's do.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
from functools import lru_cache

LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
RATIOS = {"auto": (1, 1), "1:1": (1, 1), "9:16": (9, 16), "16:9": (16, 9), "4:3": (4, 3),
          "3:4": (3, 4)}


def image_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Pixel size: the long side follows the resolution, ``auto`` is square."""
    long_side = LONG_SIDE[resolution]
    w, h = RATIOS[aspect_ratio]
    if w >= h:
        return long_side, round(long_side * h / w)
    return round(long_side * w / h), long_side


def _seed(prompt: str, index: int, variant: int) -> bytes:
    salt = f"\0{variant}" if variant else ""  # variant 0: the bytes of earlier versions
    return hashlib.sha256(f"{prompt}\0{index}{salt}".encode()).digest()


def plain_png(prompt: str, aspect_ratio: str, resolution: str, index: int = 0,
              variant: int = 0) -> bytes:
    """A flat image of the right size in a colour drawn from the prompt (no caption).

    About 5 ms instead of 20: for load tests, where the server's drawing would
    otherwise be what is measured.
    """
    from PIL import Image

    seed = _seed(prompt, index, variant)
    image = Image.new("P", image_size(aspect_ratio, resolution), 0)
    image.putpalette(list(seed[:3]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@lru_cache(maxsize=32)
def placeholder_png(prompt: str, aspect_ratio: str, resolution: str, index: int = 0,
                    variant: int = 0) -> bytes:
    """A PNG that shows the prompt and its own size, in colours drawn from the prompt."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = image_size(aspect_ratio, resolution)
    seed = _seed(prompt, index, variant)
    background = (24 + seed[0] // 3, 24 + seed[1] // 3, 24 + seed[2] // 3)
    accent = (255, 214, 90)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    border = max(4, width // 128)
    draw.rectangle((border, border, width - border - 1, height - border - 1), outline=accent,
                   width=border)
    font_size = max(14, width // 40)
    font = ImageFont.load_default(size=font_size)
    caption = f"{width}x{height} | {aspect_ratio} | {resolution} | SEE2AI emulator"
    if index:
        caption += f" | result {index + 1}"
    if variant:
        caption += f" | #{variant % 10_000:04d}"
    columns = max(20, int(width / (font_size * 0.55)) - 4)
    lines = textwrap.wrap(prompt, columns)[: max(1, height // (font_size * 2) - 3)]
    y = border * 3
    draw.rectangle((border, border, width - border - 1, y + int(font_size * 1.4)),
                   fill=(0, 0, 0))
    draw.text((border * 3, y), caption, fill=accent, font=font)
    for line in lines:
        y += int(font_size * 1.4)
        draw.text((border * 3, y), line, fill=(245, 245, 245), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
