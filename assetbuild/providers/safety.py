"""What a download must be before it is written: where it came from and what it is.

Only http(s) URLs, no internal addresses except the API's own host, and bytes that
are a PNG, JPEG or WebP image Pillow can read, of a pixel count that cannot exhaust
memory when decoded.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from assetbuild.errors import DownloadError
from assetbuild.formats import sniff

MAX_PIXELS = 4096 * 4096 * 4


def check_download_url(url: str, api_host: str) -> None:
    """Raise DownloadError unless ``url`` is http(s) and not an internal address
    (loopback, private, link-local, ``localhost``) other than ``api_host``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"refusing to download {url[:200]!r}: only http(s) URLs")
    host = parts.hostname
    if host == api_host:
        return
    internal = host == "localhost" or host.endswith(".localhost")
    with contextlib.suppress(ValueError):  # a name, not an address literal
        internal = internal or not ipaddress.ip_address(host).is_global
    if internal:
        raise DownloadError(f"refusing to download {url[:200]!r}: an internal address "
                            "that is not the API's host")


def verify_image(source: Path | bytes) -> str:
    """The image kind of a file (or of its bytes): png, jpeg or webp; raise
    DownloadError if it is not one.

    Checks the magic bytes, then reads the header with Pillow to refuse images whose
    pixel count could exhaust memory when decoded (decompression bombs).
    """
    with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as handle:
        return _checked_kind(handle)


def _checked_kind(handle: BinaryIO) -> str:
    head = handle.read(16)
    handle.seek(0)
    found = sniff(head)
    if found is None:
        raise DownloadError("the downloaded file is not a PNG, JPEG or WebP image")
    kind = found.name
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as image:
                width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise DownloadError(f"the downloaded {kind} image cannot be read ({exc})") from None
    if width * height > MAX_PIXELS:
        raise DownloadError(f"the downloaded image is {width}x{height} pixels, over the limit")
    return kind


