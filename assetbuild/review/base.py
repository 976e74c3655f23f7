"""What a review compares against: the lockfile and outputs at a git revision, or
the lockfile as it was before the last build when the project is not in git.

Git is asked through one ``git cat-file --batch`` process, so reading the committed
lockfile and a thousand committed pictures costs one process, not a thousand. Paths
are the lockfile's own (relative to the manifest's folder); a path that would leave
that folder is never asked for.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from assetbuild.errors import UsageError
from assetbuild.fsutil import atomic_write_bytes, relative_path_problem
from assetbuild.lockfile import Lockfile
from assetbuild.lockread import parse_lockfile_bytes
from assetbuild.project import Project

REVIEW_BASE = "review-base.lock"
"""The lockfile's bytes before the last build that changed it, in the state folder."""
MAX_BLOB_BYTES = 64 * 1024 * 1024


class Base(Protocol):
    """The side of a review that came before."""

    description: str
    """Where it comes from, as the page says it (``git HEAD (1a2b3c4)``)."""

    def lockfile(self) -> Lockfile:
        """The lockfile as it was (empty if there was none)."""

    def file(self, path: str) -> bytes | None:
        """The bytes of an output as they were (``path`` relative to the manifest's
        folder), if the base holds them."""

    def close(self) -> None:
        """Let go of what the base holds open."""


def keep_review_base(project: Project) -> None:
    """Keep the lockfile's current bytes as what ``review`` outside git compares with;
    a build calls it before it changes anything."""
    path = project.manifest.lockfile_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    atomic_write_bytes(project.state_dir / REVIEW_BASE, data)


def open_base(project: Project, since: str | None) -> Base:
    """The base to review ``project`` against: git revision ``since`` (default
    ``HEAD``) when the manifest is in a git work tree, else the last build's.

    A UsageError (exit 2) if ``since`` is given and is not a revision, or the folder
    is not in a git repository."""
    top = _git_toplevel(project.root)
    if top is None:
        if since is not None:
            raise UsageError(f"review --since {since}: {project.root} is not in a git "
                             "repository (or git is not on PATH), so there is no revision to "
                             "compare with; leave out --since to compare with the last build")
        return LastBuild(project)
    return GitRevision.open(project, top, since or "HEAD")


@dataclass
class LastBuild:
    """The lockfile as the last build that changed it found it."""

    project: Project
    description: str = "the lockfile before the last build"

    def lockfile(self) -> Lockfile:
        """The kept lockfile; empty when no build kept one."""
        kept = self.project.state_dir / REVIEW_BASE
        if not kept.exists():
            self.description = "nothing (no build has run here yet)"
            return Lockfile()
        return _parse(kept.read_bytes(), kept)

    def file(self, path: str) -> bytes | None:
        """Nothing: outside git the old pictures come from the result cache."""
        return None

    def close(self) -> None:
        """Nothing to let go of."""


@dataclass
class GitRevision:
    """A commit of the git repository the manifest is in."""

    project: Project
    commit: str
    prefix: PurePosixPath
    """The manifest's folder relative to the repository's top."""
    description: str
    _batch: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, project: Project, top: Path, revision: str) -> GitRevision:
        """The commit ``revision`` names, or a UsageError if it names none."""
        found = _git(project.root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                     f"{revision}^{{commit}}")
        if found.returncode != 0 or not found.stdout.strip():
            hint = (" (this repository has no commits yet)" if revision == "HEAD" else "")
            raise UsageError(f"review --since {revision}: no such revision in the git "
                             f"repository at {top}{hint}; give a branch, tag or commit that "
                             "exists (`git log --oneline` lists them)")
        commit = found.stdout.decode().strip()
        prefix = PurePosixPath(project.root.resolve().relative_to(top.resolve()).as_posix())
        return cls(project, commit, prefix, f"git {revision} ({commit[:10]})")

    def lockfile(self) -> Lockfile:
        """The lockfile committed at the revision; empty if it was not committed."""
        path = self.project.manifest.lockfile_path
        data = self._show(path.relative_to(self.project.root).as_posix())
        return Lockfile() if data is None else _parse(data, path, self.description)

    def file(self, path: str) -> bytes | None:
        """The committed bytes of ``path``, if it was committed (and is a plain path)."""
        return None if relative_path_problem(path) else self._show(path)

    def _show(self, path: str) -> bytes | None:
        process = self._process()
        assert process.stdin is not None and process.stdout is not None
        name = (self.prefix / path).as_posix().removeprefix("./")
        if "\n" in name:
            return None
        process.stdin.write(f"{self.commit}:{name}\n".encode())
        process.stdin.flush()
        header = process.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            return None  # "<name> missing": not committed at this revision
        return _read_blob(process.stdout, int(header[2]))

    def _process(self) -> subprocess.Popen[bytes]:
        if self._batch is None:
            self._batch = subprocess.Popen(
                [_git_path(), "-C", str(self.project.root), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self._batch

    def close(self) -> None:
        """End the ``git cat-file`` process."""
        if self._batch is not None:
            if self._batch.stdin is not None:
                self._batch.stdin.close()
            self._batch.wait(timeout=30)
            if self._batch.stdout is not None:
                self._batch.stdout.close()
            self._batch = None


def _read_blob(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    stream.read(1)  # the newline after each object
    return data if size <= MAX_BLOB_BYTES else None


def _parse(data: bytes, path: Path, where: str = "") -> Lockfile:
    return parse_lockfile_bytes(data, Path(f"{path} at {where}" if where else str(path)))


def _git_path() -> str:
    git = shutil.which("git")
    if git is None:
        raise UsageError("review needs git on PATH to compare with a revision")
    return git


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([_git_path(), "-C", str(root), *args],
                          capture_output=True, timeout=120, check=False)


def _git_toplevel(root: Path) -> Path | None:
    if shutil.which("git") is None:
        return None
    found = _git(root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        return None
    return Path(found.stdout.decode().strip())
