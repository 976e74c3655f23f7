"""The errors assetbuild raises for users to read.

Every user-facing failure is an :class:`AssetbuildError`; the CLI turns each kind
into an exit code and a message in one place (``assetbuild.cli``)::

    AssetbuildError
     +-- UsageError          bad command-line arguments or targets
     +-- ManifestError       the manifest is invalid (carries every problem found)
     +-- LockfileError       the lockfile cannot be read or is from a newer version
     +-- StateError          a cache or state file is corrupt
     +-- LockedError         another build of the same manifest is running
     +-- BudgetError         the build would spend more than --max-cost
     +-- BuildStopped        Ctrl-C or SIGTERM stopped a build (carries what was kept)
     +-- ImageFailed         one image could not be built; the build goes on
     +-- ApiError            the SEE2AI API refused or failed a request
          +-- AuthError          401: the key is missing or wrong; aborts the build
          +-- BalanceError       402: insufficient balance; stops new submissions
          +-- RequestRejected    400: the API rejected this image's request
          +-- TaskGone           404: the task id is unknown to the API
          +-- SubmitUncertain    the submit may have created a task; not retried
          +-- TransientError     retries exhausted on 429/5xx/connection errors
               +-- Unreachable       the API's host cannot be reached at all
          +-- DownloadError      a result could not be fetched or is not an image

Errors keep their data in attributes and build their message in ``__str__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class AssetbuildError(Exception):
    """Base of every error meant for the user rather than a traceback."""


class UsageError(AssetbuildError):
    """The command line asked for something that does not exist or cannot be done."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, located as precisely as the parser allows."""

    file: Path
    message: str
    image: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        parts = [where]
        if self.image is not None:
            parts.append(f"image '{self.image}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return f"{': '.join(parts)}: {self.message}"


class ManifestError(AssetbuildError):
    """The manifest has one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class TemplateProblem(Exception):
    """A template failed to compile or render (internal: it becomes a manifest Problem)."""


class LockfileError(AssetbuildError):
    """The lockfile cannot be used; it is never silently overwritten."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.reason}. The lockfile was left as it is; fix it "
            "(for example with git checkout) or delete it to rebuild from scratch."
        )


class StateError(AssetbuildError):
    """A cache, journal or lock in the state folder is unusable."""


class LockedError(AssetbuildError):
    """Another build of the same manifest holds the build lock."""


class BuildStopped(AssetbuildError):
    """Ctrl-C or SIGTERM stopped a build: nothing new was submitted, the submits already
    sent were awaited, finished images are locked and paid tasks journaled."""

    def __init__(self, finished: int, journaled: int, unanswered: tuple[str, ...]) -> None:
        self.finished, self.journaled, self.unanswered = finished, journaled, unanswered
        super().__init__(str(self))

    def __str__(self) -> str:
        images = "image" if self.finished == 1 else "images"
        tasks = "task is" if self.journaled == 1 else "tasks are"
        text = (f"{self.finished} {images} finished and locked; {self.journaled} paid "
                f"{tasks} journaled and the next build resumes them, paying for none again")
        if self.unanswered:
            names = ", ".join(self.unanswered[:5]) + (", ..." if len(self.unanswered) > 5 else "")
            text += (f"; no answer came in time for the submit of {names} (it may have "
                     "been charged: the next build says so)")
        return text


class ImageFailed(AssetbuildError):
    """One image could not be built; the build goes on with the others."""


class BudgetError(AssetbuildError):
    """The build would spend more than its budget; nothing was submitted."""


class ApiError(AssetbuildError):
    """The SEE2AI API answered with an error or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        said = self.status is not None and f"HTTP {self.status}" in self.message
        prefix = f"HTTP {self.status}: " if self.status and not said else ""
        return f"{prefix}{self.message}"


class AuthError(ApiError):
    """401: the API key is missing or not accepted."""


class BalanceError(ApiError):
    """402: the account balance is too low for new tasks."""


class RequestRejected(ApiError):
    """400: the API rejected the request of one image."""


class TaskGone(ApiError):
    """404: the API does not know the task id (expired or never existed)."""


class SubmitUncertain(ApiError):
    """A submit was sent but no answer came: a task may exist and may be charged."""


class TransientError(ApiError):
    """Retries ran out on rate limits, server errors or connection failures."""


class Unreachable(TransientError):
    """Several connections in a row to the API's host failed: nothing more is sent."""


class DownloadError(ApiError):
    """A result URL could not be fetched, or what it served is not a valid image."""
