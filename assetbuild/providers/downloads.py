"""Saving a download: its body streamed to a temporary file within bounds, then checked
to be a sane image before anything is put in place."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from assetbuild.errors import DownloadError
from assetbuild.fsutil import open_temp_beside
from assetbuild.providers.bodies import BadEncoding, BodyTooLarge, decoded_chunks
from assetbuild.providers.safety import verify_image


@dataclass(frozen=True)
class Download:
    """A downloaded result: a verified image in a temporary file beside its destination."""

    path: Path
    sha256: str
    size: int
    kind: str
    """``png``, ``jpeg`` or ``webp``."""


class RetryableDownload(Exception):
    """A download failure worth another try (server error, truncated body, 429)."""

    def __init__(self, message: str, *, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited


async def save_download(response: httpx.Response, destination: Path, cap: int,
                        shown: str) -> Download:
    """Stream a download's answer to a temporary file beside ``destination``, within
    ``cap`` decoded bytes and its ``Content-Length``, and verify it is an image
    (``shown``: the URL as it may be printed)."""
    code = response.status_code
    if code == 429 or code >= 500:
        raise RetryableDownload(f"HTTP {code}", rate_limited=code == 429)
    if code != 200:
        raise DownloadError(f"{shown} answered HTTP {code}", status=code)
    expected = _content_length(response)
    if expected is not None and expected > cap:
        raise DownloadError(f"{shown} is larger than the {cap} byte cap")
    fd, tmp = open_temp_beside(destination)
    try:
        received = [0]
        with os.fdopen(fd, "wb") as handle:
            digest, size, first = await _stream_to(response, handle, received, cap)
        if expected is not None and received[0] != expected:
            raise RetryableDownload(f"truncated: {received[0]} of {expected} bytes")
        # An image that came in one chunk is checked from memory, not read again;
        # Pillow's work in a thread, so the event loop stays free for answers.
        kind = await asyncio.to_thread(verify_image, first if len(first) == size else tmp)
    except BodyTooLarge:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{shown} is larger than the {cap} byte cap") from None
    except BadEncoding as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{shown}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Download(tmp, digest, size, kind)


async def _stream_to(response: httpx.Response, handle: BinaryIO, received: list[int],
                     cap: int) -> tuple[str, int, bytes]:
    """Write the decoded body to ``handle``; its sha256, its size and its first chunk
    (``received`` counts the bytes on the wire)."""
    digest = hashlib.sha256()
    size = 0
    first = b""
    async for chunk in decoded_chunks(response, cap, received):
        size += len(chunk)
        digest.update(chunk)
        handle.write(chunk)
        first = first or chunk
    return digest.hexdigest(), size, first


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
