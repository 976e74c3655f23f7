"""The command line: a thin click layer over :mod:`assetbuild.project`.

Exit codes, chosen here and only here (:func:`exit_code_for`):

* 0 -- success; everything up to date
* 1 -- an image failed to build, or ``check`` found images not up to date
* 2 -- usage, manifest, lockfile or state error (nothing was sent to the API)
* 3 -- the API aborted the build: 401 bad key or 402 insufficient balance
* 4 -- an internal error: a bug (one paragraph and a redacted crash log)
* 130 / 143 -- stopped by SIGINT (Ctrl-C) / SIGTERM; journaled tasks resume on the next build
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from assetbuild.cli.app import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    cli,
    echo,
    exit_code_for,
    find_manifest,
)
from assetbuild.cli.commands import (  # noqa: F401 - registers them
    build,
    emulator,
    inspect,
    remote,
    review,
    stores,
    takes,
)
from assetbuild.errors import AssetbuildError, BuildStopped, ManifestError

__all__ = ["cli", "exit_code_for", "find_manifest", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    terminated: list[int] = []
    previous = _stop_gracefully_on_sigterm(terminated)
    try:
        result = cli.main(args=args, prog_name="assetbuild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except BuildStopped as exc:  # a graceful stop: what was sent is journaled
        echo(f"Stopped by {'SIGTERM' if terminated else 'Ctrl-C'}: {exc}.", err=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except (click.exceptions.Abort, KeyboardInterrupt):  # a second Ctrl-C, or not a build
        signal_name = "SIGTERM" if terminated else "Ctrl-C"
        echo(f"Stopped by {signal_name}; journaled tasks resume on the next build.", err=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except AssetbuildError as exc:
        _show_error(exc)
        return exit_code_for(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: one paragraph, never a traceback
        return _report_bug(exc, args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result if isinstance(result, int) else EXIT_OK


def _stop_gracefully_on_sigterm(terminated: list[int]) -> Any:
    """Make SIGTERM (what CI runners send on timeout or cancel) stop a command as Ctrl-C
    does: a build stops submitting, journals what it sent and writes its lockfile.
    Returns the handler it replaced (None off the main thread, where none is set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        handler = signal.getsignal(signal.SIGINT)  # asyncio's while a build runs
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, on_sigterm)


def _report_bug(error: Exception, args: list[str]) -> int:
    from assetbuild.cache import default_cache_dir
    from assetbuild.crash import bug_message, write_crash_log

    log = write_crash_log(error, args, default_cache_dir() / "crash")
    echo(bug_message(error, log), err=True)
    return EXIT_BUG


def _show_error(error: AssetbuildError) -> None:
    text = str(error)
    if isinstance(error, ManifestError) and len(error.problems) > 1:
        echo(f"error: the manifest has {len(error.problems)} problems:", err=True)
        for problem in error.problems:
            echo(f"  {problem}", err=True)
        return
    echo(f"error: {text}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
