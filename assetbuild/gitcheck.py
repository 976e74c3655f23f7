"""What git would commit: outputs and lockfiles a commit would leave out.

A pre-commit hook runs on the working tree, where a freshly built image exists
whether or not it was staged; ``check --git`` also asks git which of the files the
lockfile vouches for it tracks, so a commit cannot carry a lockfile whose images it
lacks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from assetbuild.errors import UsageError
from assetbuild.plan import Plan


def expected_files(plan: Plan) -> list[str]:
    """Every file an up-to-date checkout of ``plan`` holds, relative to the manifest's
    folder: the lockfile, each locked output and each derived file."""
    manifest = plan.resolved.manifest
    files = [manifest.settings.lockfile] if manifest.lockfile_path.exists() else []
    for item in plan.images:
        if item.entry is not None:
            files += [record.path for record in item.entry.outputs]
            files += [record.path for record in item.entry.derived]
    return files


def untracked(root: Path, paths: list[str]) -> list[str]:
    """Those of ``paths`` (relative to ``root``) that git's index does not hold."""
    git = shutil.which("git")
    if git is None:
        raise UsageError("check --git needs git on PATH")
    found = subprocess.run([git, "-C", str(root), "ls-files", "-z", "--cached"],
                           capture_output=True, timeout=120, check=False)
    if found.returncode != 0:
        raise UsageError(f"check --git: {root} is not in a git repository "
                         f"({found.stderr.decode(errors='replace').strip()[:200]})")
    tracked = set(found.stdout.decode("utf-8", errors="surrogateescape").split("\0"))
    return [path for path in paths if path not in tracked]
