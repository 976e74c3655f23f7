"""The result cache: blobs of every size come back byte for byte, or not at all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from assetbuild.cache import SMALL_FILE, ResultCache


@pytest.mark.parametrize("size", [670, 40_000, SMALL_FILE + 1])
def test_a_cached_output_is_restored_byte_for_byte(tmp_path: Path, size: int) -> None:
    """Inline in the database, a diskcache file from bytes, or streamed from the file."""
    output = tmp_path / "out.png"
    data = os.urandom(size)
    output.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cache = ResultCache(tmp_path / "cache")
    cache.put("spec-1", {"task_id": "t-1"}, [(output, digest, size)])
    assert cache.entry("spec-1") == {"task_id": "t-1"}

    (tmp_path / "restored").mkdir()
    destination = tmp_path / "restored" / "again.png"
    stat = cache.restore(digest, str(destination))
    assert stat is not None and destination.read_bytes() == data
    assert (stat.st_size, stat.st_ino) == (size, destination.stat().st_ino)
    assert [p.name for p in destination.parent.iterdir()] == ["again.png"], "no temp left"


def test_bytes_that_no_longer_match_are_dropped_not_restored(tmp_path: Path) -> None:
    import diskcache

    output = tmp_path / "out.png"
    output.write_bytes(b"the real image")
    digest = hashlib.sha256(b"the real image").hexdigest()
    cache = ResultCache(tmp_path / "cache")
    cache.put("spec-1", {}, [(output, digest, 14)])
    cache.close()
    with diskcache.Cache(str(next((tmp_path / "cache").glob("results-*")))) as stored:
        stored.set(f"blob:{digest}", b"something else")

    cache = ResultCache(tmp_path / "cache")
    destination = tmp_path / "again.png"
    assert cache.restore(digest, str(destination)) is None
    assert not destination.exists()
    assert not cache.has_blob(digest), "the bad copy is removed"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_small_blobs_are_read_many_at_a_time_and_still_verified(tmp_path: Path) -> None:
    """``inline_blobs`` returns the bytes the database holds (all under 32 KB), leaves
    out file-backed and unknown digests, and ``restore`` checks what it is given."""
    cache = ResultCache(tmp_path / "cache")
    blobs = {size: os.urandom(size) for size in (10, 670, 40_000)}
    digests = {size: hashlib.sha256(data).hexdigest() for size, data in blobs.items()}
    for size, data in blobs.items():
        source = tmp_path / f"{size}.png"
        source.write_bytes(data)
        cache.put(f"spec-{size}", {}, [(source, digests[size], size)])
    many = [f"{n:064x}" for n in range(1200)]  # more than one query's worth of keys

    found = cache.inline_blobs([*digests.values(), *many])
    assert found == {digests[10]: blobs[10], digests[670]: blobs[670]}

    destination = tmp_path / "restored.png"
    assert cache.restore(digests[670], str(destination), b"not the cached image") is None
    assert not destination.exists() and not cache.has_blob(digests[670])
    stat = cache.restore(digests[10], str(destination), found[digests[10]])
    assert stat is not None and destination.read_bytes() == blobs[10]
