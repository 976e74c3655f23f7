"""What an unexpected error (a bug) leaves behind: a crash log with every secret of the
environment redacted, and one paragraph that says it is a bug and where the log is.

The log goes to the user's cache folder (``crash/`` under ``ASSETBUILD_CACHE_DIR`` or
the platform's cache folder), not to the project: the project's state folder may be
what is broken, or may be committed, and a log must never be shared by accident.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from assetbuild import __version__

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
"""Environment variables whose values are redacted from a crash log."""


def secrets_of(environ: Mapping[str, str]) -> list[str]:
    """The values of the environment's secret-looking variables, longest first."""
    values = {value for name, value in environ.items()
              if SECRET_NAME.search(name) and len(value) >= 4}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``[redacted]``."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def write_crash_log(error: BaseException, argv: Sequence[str], folder: Path,
                    environ: Mapping[str, str] | None = None) -> Path | None:
    """Write the traceback of ``error`` (redacted) to a new file in ``folder``, readable
    by the user alone; None when even that cannot be written."""
    env = os.environ if environ is None else environ
    text = (f"assetbuild {__version__} on Python {sys.version.split()[0]}\n"
            f"command: assetbuild {' '.join(argv)}\n\n"
            + "".join(traceback.format_exception(error)))
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as log:
            log.write(redact(text, secrets_of(env)))
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return path


def bug_message(error: BaseException, log: Path | None) -> str:
    """The paragraph shown for a bug, naming the error's type but not its text (which
    may quote a secret or a prompt)."""
    where = (f"The details are in {log} (secrets redacted); please attach it to a bug "
             "report." if log else "The crash log could not be written.")
    return (f"error: this is a bug in assetbuild ({type(error).__name__}), not a problem "
            f"with your manifest or the API. {where} Files are written atomically, so "
            "none was left half-written, and paid tasks stay journaled for the next build.")
