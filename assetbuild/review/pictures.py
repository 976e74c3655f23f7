"""The pictures a review shows, found and copied into its folder with a thumbnail each.

A picture is wanted by its digest and may come from, in this order: the working tree
(the new side), git at the base revision (the old side), the result cache, and last its
result URL (downloaded with the same client, checks and limits as a build's). Whatever
is found is checked against its digest and decoded with Pillow's bomb limits before it
is written; the page only ever points into its own folder.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from assetbuild.errors import AssetbuildError
from assetbuild.fsutil import atomic_write_bytes, resolve_inside
from assetbuild.hashing import sha256_bytes

THUMB_SIZE = 480
MAX_PICTURE_BYTES = 64 * 1024 * 1024
FULL_FOLDER = "pictures"
THUMB_FOLDER = "thumbs"


@dataclass(frozen=True)
class Picture:
    """A picture copied into the review folder (paths relative to it)."""

    full: str
    thumb: str
    width: int
    height: int
    bytes: int
    sha256: str
    source: str
    """Where its bytes came from: ``working tree``, ``git``, ``result cache``, ``URL``."""


@dataclass(frozen=True)
class Missing:
    """A picture the review could not show, and why."""

    sha256: str
    reason: str


@dataclass(frozen=True)
class Wanted:
    """A picture by digest and the places it may be found."""

    sha256: str
    path: str | None = None
    """Its output path (relative to the manifest's folder), for the working tree."""
    old: Callable[[], bytes | None] | None = None
    """Reads it from the base (git), when it is an old output."""
    url: str | None = None


class PictureFolder:
    """Writes pictures and their thumbnails into the review folder, each digest once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, sha256: str, data: bytes, source: str) -> Picture | Missing:
        """Copy ``data`` (checked against ``sha256``) in and make its thumbnail."""
        if sha256_bytes(data) != sha256:
            return Missing(sha256, f"the bytes found ({source}) are not the locked picture")
        try:
            picture = _write(self.folder, sha256, data, source)
        except (AssetbuildError, OSError, ValueError) as exc:
            return Missing(sha256, f"cannot be shown ({exc})")
        return picture


def _write(folder: Path, sha256: str, data: bytes, source: str) -> Picture:
    import warnings

    from PIL import Image

    from assetbuild.providers.safety import verify_image

    kind = verify_image(data)
    name = sha256[:20]
    full = f"{FULL_FOLDER}/{name}.{'jpg' if kind == 'jpeg' else kind}"
    thumb = f"{THUMB_FOLDER}/{name}.jpg"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((THUMB_SIZE, THUMB_SIZE))
            small = io.BytesIO()
            image.convert("RGB").save(small, "JPEG", quality=82, optimize=True)
    atomic_write_bytes(folder / full, data)
    atomic_write_bytes(folder / thumb, small.getvalue())
    return Picture(full, thumb, width, height, len(data), sha256, source)


def find_pictures(wanted: list[Wanted], folder: PictureFolder, *, root: Path,
                  read_cached: Callable[[str], bytes | None],
                  environ: Mapping[str, str] | None = None) -> dict[str, Picture | Missing]:
    """Every wanted picture, by digest: found locally, else downloaded, else Missing."""
    found: dict[str, Picture | Missing] = {}
    downloads: dict[str, str] = {}
    resolved_root = root.resolve()
    for want in wanted:
        if want.sha256 in found:
            continue
        local = _local(want, resolved_root, read_cached)
        if local is not None:
            found[want.sha256] = folder.add(want.sha256, *local)
        elif want.url and _reachable(want.url):
            downloads.setdefault(want.sha256, want.url)
        else:
            found[want.sha256] = Missing(want.sha256, _not_available(want))
    for sha256, result in download_all(downloads, environ).items():
        found[sha256] = (folder.add(sha256, result, "URL") if isinstance(result, bytes)
                         else Missing(sha256, result))
    return found


def _local(want: Wanted, root: Path, read_cached: Callable[[str], bytes | None]
           ) -> tuple[bytes, str] | None:
    if want.path is not None:
        data = _working_file(root, want.path)
        if data is not None and sha256_bytes(data) == want.sha256:
            return data, "working tree"
    if want.old is not None:
        old = want.old()
        if old is not None and sha256_bytes(old) == want.sha256:
            return old, "git"
    cached = read_cached(want.sha256)
    return (cached, "result cache") if cached is not None else None


def _working_file(root: Path, path: str) -> bytes | None:
    """The file at ``path`` below ``root``, unless it leaves it or is over the size cap."""
    try:
        found = resolve_inside(root, path)
        if found.stat().st_size > MAX_PICTURE_BYTES:
            return None
        return found.read_bytes()
    except (OSError, ValueError):
        return None


def _not_available(want: Wanted) -> str:
    where = "in git, " if want.old is not None else "in the working tree, "
    url = "" if not want.url else " (its URL cannot be reached from here)"
    return f"not available: not {where}not in the result cache{url}"


def _reachable(url: str) -> bool:
    """Whether a URL could be downloaded at all: ``.invalid`` hosts never resolve (the
    in-process emulator's), so they are not tried."""
    host = urlsplit(url).hostname or ""
    return bool(host) and not (host == "invalid" or host.endswith(".invalid"))


def download_all(urls: Mapping[str, str], environ: Mapping[str, str] | None = None
                 ) -> dict[str, bytes | str]:
    """Download each digest's URL at once, one try each: the bytes, or why not."""
    if not urls:
        return {}
    return asyncio.run(_download_all(urls, environ))


async def _download_all(urls: Mapping[str, str], environ: Mapping[str, str] | None
                        ) -> dict[str, bytes | str]:
    from assetbuild.providers import Provider
    from assetbuild.providers.retries import RetryPolicy
    from assetbuild.providers.see2ai import See2AIClient

    provider = Provider.choose("see2ai", environ)
    retry = RetryPolicy(attempts=1, rate_limited_attempts=1, download_deadline=60)
    with tempfile.TemporaryDirectory(prefix="assetbuild-review-") as scratch:
        async with See2AIClient(api_key="", base_url=provider.base_url, retry=retry) as client:
            async def one(sha256: str, url: str) -> tuple[str, bytes | str]:
                destination = Path(scratch) / sha256
                try:
                    download = await client.download(url, destination)
                    return sha256, download.path.read_bytes()
                except (AssetbuildError, OSError) as exc:
                    return sha256, f"not available: its URL could not be downloaded ({exc})"

            results = await asyncio.gather(*(one(sha, url) for sha, url in urls.items()))
    return dict(results)
