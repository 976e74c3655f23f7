"""The manifest: read and validate an assetbuild manifest (TOML) into plain, frozen data.

:mod:`~assetbuild.manifest.model` holds the data (settings, defaults, image
declarations); :mod:`~assetbuild.manifest.validate` checks the TOML and says every
problem at once.
"""

from __future__ import annotations

from pathlib import Path

from assetbuild.errors import ManifestError, Problem
from assetbuild.manifest.model import (
    DEFAULT_MANIFEST,
    MANIFEST_VERSION,
    Defaults,
    ImageDecl,
    Manifest,
    Settings,
    matrix_label,
)
from assetbuild.manifest.validate import parse_manifest

__all__ = ["DEFAULT_MANIFEST", "MANIFEST_VERSION", "Defaults", "ImageDecl", "Manifest",
           "Settings", "load_manifest", "matrix_label", "parse_manifest", "read_manifest",
           "read_manifest_text"]


def load_manifest(path: Path) -> Manifest:
    """Read, parse and validate the manifest at ``path``; raise ManifestError on problems."""
    manifest, problems = read_manifest(path)
    if problems:
        raise ManifestError(problems)
    return manifest


def read_manifest(path: Path) -> tuple[Manifest, list[Problem]]:
    """Read and validate ``path``; return the valid part and every problem found.

    Raise ManifestError only when nothing can be read (missing file, broken TOML).
    """
    path = path.resolve()
    return parse_manifest(read_manifest_text(path), path)


def read_manifest_text(path: Path) -> str:
    """The manifest's text; a ManifestError if it is missing or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([Problem(path, "no such manifest file")]) from None
    except IsADirectoryError:
        raise ManifestError([Problem(path, "is a folder, not a manifest file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(path, f"cannot be read: {exc}")]) from None
