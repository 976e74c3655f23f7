"""Canonical JSON, content digests and the spec hash that decides staleness.

The spec hash covers exactly what decides an image's pixels: the action, the
provider, the rendered prompt, the aspect ratio, the resolution and each reference's
identity. Output paths and manifest formatting are deliberately left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assetbuild._types import IMAGE_ACTION, JSON

CHUNK_SIZE = 1 << 16


def canonical_json(value: JSON) -> bytes:
    """Serialise ``value`` the same way every time: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 64 KiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def spec_document(
    *,
    provider: str,
    prompt: str,
    aspect_ratio: str,
    resolution: str,
    references: list[dict[str, Any]],
) -> dict[str, Any]:
    """The document whose canonical JSON is hashed into the spec hash."""
    return {
        "action": IMAGE_ACTION,
        "provider": provider,
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "resolution": resolution,
        "references": references,
    }


def spec_hash(document: Mapping[str, Any]) -> str:
    """The spec hash: sha256 of the canonical JSON of a :func:`spec_document`."""
    return sha256_bytes(canonical_json(dict(document)))


def take_key(spec_hash: str, number: int) -> str:
    """What the journal, the cache and the remote key take ``number`` of a spec by: the
    spec hash itself for take 1 (the one every image has), a digest of both after."""
    if number == 1:
        return spec_hash
    return sha256_text(f"assetbuild-take:{spec_hash}:{number}")


def locked_spec(document: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as kept in the lockfile: the prompt is replaced by its digest.

    The lockfile's ``request`` already holds the prompt; the digest is enough to
    say whether it changed.
    """
    kept = {k: v for k, v in document.items() if k != "prompt"}
    kept["prompt_sha256"] = sha256_text(str(document["prompt"]))
    return kept


def changed_fields(current: Mapping[str, Any], locked: Mapping[str, Any]) -> list[str]:
    """Names of the spec fields that differ between the current spec and a locked one.

    Only the fields the locked spec records are compared (a lockfile written by
    other tools may keep fewer).
    """
    now = locked_spec(current)
    fields = sorted(locked)
    names = [f for f in fields if now.get(f) != locked.get(f)]
    return ["prompt" if n == "prompt_sha256" else n for n in names]


def stat_key(stat: os.stat_result) -> tuple[int, int, int]:
    """What a file's stat says about its content: size, mtime in ns, inode."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)
