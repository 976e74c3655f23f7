"""A starter project: the manifest ``assetbuild init`` writes, and .assetbuild/ ignored."""

from __future__ import annotations

from pathlib import Path

from assetbuild.errors import UsageError
from assetbuild.fsutil import atomic_write_bytes

STARTER_MANIFEST = """\
# An assetbuild manifest (reference: docs/manifest.md in the assetbuild repository).
version = 1

[settings]
out_dir = "generated"
# "emulator" makes placeholder images with no key and no network; once you have a
# SEE2AI_API_KEY, set "see2ai" and build again (check then asks for the real images).
provider = "emulator"

[vars]
brand = "Acme"

[defaults]
resolution = "1K"

[images.hero]
prompt = "A calm, sunlit hero banner for {{ brand }}, wide composition, no text"
aspect_ratio = "16:9"
output = "hero.png"

[images.icon]
prompt = "A flat {{ color }} app icon for {{ brand }}"
output = "icons/{{ color }}.png"
aspect_ratio = "1:1"
matrix = { color = ["teal", "orange"] }
"""
"""Two images, one of them a matrix, that build on the emulator as they are."""

IGNORED_STATE = ".assetbuild/"


def write_starter(manifest_path: Path, *, force: bool = False) -> Path:
    """Write the starter manifest at ``manifest_path`` (UsageError if one is there and
    not ``force``) and make sure the .gitignore beside it ignores the state folder;
    return that .gitignore's path."""
    if manifest_path.exists() and not force:
        raise UsageError(f"{manifest_path} exists already; use --force to overwrite it")
    atomic_write_bytes(manifest_path, STARTER_MANIFEST.encode())
    gitignore = manifest_path.parent / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if not {IGNORED_STATE, ".assetbuild", "/.assetbuild/"} & {line.strip() for line in lines}:
        atomic_write_bytes(gitignore, "\n".join([*lines, IGNORED_STATE, ""]).encode())
    return gitignore
