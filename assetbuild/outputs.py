"""Output files: put verified downloads in place (converting formats), restore them.

Every output is written to a temporary file beside it and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from assetbuild.errors import DownloadError
from assetbuild.formats import BY_NAME, BY_SUFFIX
from assetbuild.fsutil import place, replacing
from assetbuild.hashing import sha256_file
from assetbuild.lockfile import OutputRecord

if TYPE_CHECKING:
    from assetbuild.cache import ResultCache
    from assetbuild.providers.downloads import Download
    from assetbuild.providers.see2ai import See2AIClient
    from assetbuild.resolve import ResolvedImage

_IMAGES_PER_BATCH = 400
"""Images restored per read of their small blobs: bounds the bytes held at once."""


def wanted_format(path: str | Path) -> str:
    """The image format an output path's extension asks for."""
    return BY_SUFFIX[PurePosixPath(str(path)).suffix.lower()].name


def place_download(download: Download, destination: Path,
                   target_format: str | None = None) -> tuple[str, int]:
    """Move a verified download to ``destination``, converting it if ``target_format``
    (default: what the destination's extension asks for) is another format; return
    the written file's sha256 and size."""
    target_format = target_format or wanted_format(destination)
    if target_format == download.kind:
        place(download.path, destination)
        return download.sha256, download.size
    try:
        return convert_image(download.path, destination, target_format)
    finally:
        download.path.unlink(missing_ok=True)


def convert_image(source: Path, destination: Path, target_format: str) -> tuple[str, int]:
    """Re-encode ``source`` as ``target_format`` into ``destination`` atomically."""
    from PIL import Image

    with replacing(destination) as tmp, Image.open(source) as image:
        image.load()
        converted = image.convert("RGB") if target_format == "jpeg" else image
        options = {"quality": 92} if target_format in ("jpeg", "webp") else {}
        converted.save(tmp, format=BY_NAME[target_format].pillow, **options)
        return sha256_file(tmp), tmp.stat().st_size


def derive_outputs(root: Path, image: ResolvedImage) -> tuple[OutputRecord, ...]:
    """Write the files derived from the image's first output (resized and converted
    copies, for responsive images); return their records. No API call."""
    from PIL import Image

    targets = image.derived_outputs()
    if not targets:
        return ()
    records = []
    with Image.open(root / image.output) as original:
        original.load()
        for path, width, fmt in targets:
            picture: Image.Image = original
            if width is not None and width < original.width:
                height = max(1, round(original.height * width / original.width))
                picture = original.resize((width, height), Image.Resampling.LANCZOS)
            if fmt in ("jpeg", "webp") and picture.mode not in ("RGB", "L"):
                picture = picture.convert("RGB")
            records.append(_save_derived(picture, root / path, path, fmt))
    return tuple(records)


def _save_derived(picture: Any, destination: Path, path: str, fmt: str) -> OutputRecord:
    with replacing(destination) as tmp:
        options = {"quality": 90} if fmt in ("jpeg", "webp") else {}
        picture.save(tmp, format=BY_NAME[fmt].pillow, **options)
        return OutputRecord(path, sha256_file(tmp), tmp.stat().st_size)


async def restore_outputs(
    root: Path,
    paths: Sequence[str],
    records: Sequence[OutputRecord],
    result_urls: Sequence[str],
    cache: ResultCache,
    client: Callable[[], See2AIClient] | None,
) -> tuple[OutputRecord, ...]:
    """Bring each output back to its locked bytes: from the cache, else the locked URL.

    ``paths`` are where the outputs belong now (they may have moved since locking);
    ``client`` gives the HTTP client, called only if an output must be downloaded.
    Raise DownloadError when neither source can give the locked bytes.
    """
    restored = []
    for index, (path, record) in enumerate(zip(paths, records, strict=True)):
        destination = root / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        # File work, off the event loop.
        restored_here = await asyncio.to_thread(_restore_file, str(destination), record,
                                                 cache)
        if restored_here is None:
            await _fetch_locked(destination, record, result_urls, index, client)
        restored.append(OutputRecord(path, record.sha256, record.bytes))
    return tuple(restored)


def restore_many_from_cache(
    root: Path, work: Sequence[tuple[Sequence[str], Sequence[OutputRecord]]],
    cache: ResultCache,
) -> list[tuple[os.stat_result, ...] | None]:
    """For each (paths, records): write every output from the cache and return their
    stats, or None if the cache lacks one of them (left for :func:`restore_outputs`).

    The outputs of these images are known to be missing or modified (the plan looked),
    so they are written without looking again. One plain loop over path strings, the
    small blobs read a batch at a time: restoring 10,000 small files is system calls,
    and threads only add contention for the GIL (a pool of 4 was slower on 2 cores).
    """
    base = str(root)
    for folder in {os.path.dirname(f"{base}/{p}") for paths, _ in work for p in paths}:  # noqa: PTH120
        with contextlib.suppress(OSError):  # the image's own restore reports it
            os.makedirs(folder, exist_ok=True)  # noqa: PTH103 - strings on the hot path
    results: list[tuple[os.stat_result, ...] | None] = []
    for start in range(0, len(work), _IMAGES_PER_BATCH):
        batch = work[start:start + _IMAGES_PER_BATCH]
        inline = cache.inline_blobs({r.sha256 for _, records in batch for r in records})
        for paths, records in batch:
            stats = []
            for path, record in zip(paths, records, strict=True):
                try:
                    stat = cache.restore(record.sha256, f"{base}/{path}",
                                         inline.get(record.sha256))
                except OSError:  # left to the image's own restore, which reports it
                    stat = None
                if stat is None:
                    break
                stats.append(stat)
            results.append(tuple(stats) if len(stats) == len(records) else None)
    return results


def _restore_file(destination: str, record: OutputRecord,
                  cache: ResultCache) -> os.stat_result | None:
    """The stat of ``destination`` once it holds the locked bytes (already, or from the
    cache); None if it does not and the cache cannot give them."""
    try:
        stat = os.stat(destination)  # noqa: PTH116 - strings on the hot path
    except (FileNotFoundError, NotADirectoryError):
        return cache.restore(record.sha256, destination)
    if stat.st_size == record.bytes and sha256_file(Path(destination)) == record.sha256:
        return stat
    return cache.restore(record.sha256, destination)


async def _fetch_locked(
    destination: Path, record: OutputRecord, result_urls: Sequence[str], index: int,
    client: Callable[[], See2AIClient] | None,
) -> None:
    if client is None or index >= len(result_urls):
        raise DownloadError(f"{destination.name}: not in the local cache and no locked URL "
                            "to fetch it from")
    download = await client().download(result_urls[index], destination)
    with replacing(destination) as tmp:
        digest, _ = place_download(download, tmp, wanted_format(destination))
        if digest != record.sha256:
            raise DownloadError(f"{result_urls[index]} no longer serves the locked image "
                                f"(sha256 {digest[:12]}..., locked {record.sha256[:12]}...)")
