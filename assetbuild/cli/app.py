"""The command group, its shared options and the exit codes (chosen here and only
here: :func:`exit_code_for`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assetbuild import __version__
from assetbuild._types import PROVIDERS
from assetbuild.errors import (
    AssetbuildError,
    AuthError,
    BalanceError,
    BuildStopped,
    LockfileError,
    ManifestError,
    StateError,
    UsageError,
)

DEFAULT_MANIFEST_NAME = "assetbuild.toml"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API_ABORT = 3
EXIT_BUG = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(error: AssetbuildError) -> int:
    """The exit code for an error that reached the user."""
    if isinstance(error, AuthError | BalanceError):
        return EXIT_API_ABORT
    if isinstance(error, UsageError | ManifestError | LockfileError | StateError):
        return EXIT_USAGE
    if isinstance(error, BuildStopped):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def find_manifest(start: Path | None = None) -> Path:
    """``assetbuild.toml`` in ``start`` (the current folder) or the nearest folder above
    it, as git finds its repository, stopping at the repository's root; else the name
    alone (which then reads as "no such manifest file")."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / DEFAULT_MANIFEST_NAME).is_file():
            return candidate / DEFAULT_MANIFEST_NAME
        if (candidate / ".git").exists():
            break
    return Path(DEFAULT_MANIFEST_NAME)


def _manifest_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    if value is not None:
        return value
    given = ctx.find_root().params.get("manifest_path")  # `assetbuild -f X build`
    return given if isinstance(given, Path) else find_manifest()


def manifest_option(func: F) -> F:
    """``-f/--file``: the manifest to read (default: found upward from here)."""
    return click.option(
        "-f", "--file", "manifest_path", type=click.Path(dir_okay=False, path_type=Path),
        default=None, callback=_manifest_path, is_eager=True,
        help="The manifest to read (default: assetbuild.toml here or in a folder above, "
             "up to the git repository's root).",
    )(func)


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON on stdout.")(func)


def provider_option(func: F) -> F:
    """``--provider``: override the manifest's provider."""
    return click.option("--provider", type=click.Choice(PROVIDERS),
                        help="Override settings.provider.")(func)


def remote_options(func: F) -> F:
    """``--remote URL`` and ``--remote-readonly``: the team's remote result store."""
    func = click.option("--remote-readonly", "remote_readonly", is_flag=True, default=None,
                        help="Read the remote, write nothing to it (untrusted builds).")(func)
    return click.option("--remote", "remote", default=None, metavar="URL",
                        help="The team's remote store (file:///path, s3://bucket/prefix, "
                             "gs://..., az://...); '' for none. Overrides ASSETBUILD_REMOTE "
                             "and settings.remote.")(func)


def verbosity_options(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose``."""
    func = click.option("-v", "--verbose", is_flag=True, help="Say more.")(func)
    return click.option("-q", "--quiet", is_flag=True, help="Print only errors.")(func)


def complete_images(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[str]:
    """Image names (and matrix base names) of the manifest, for shell completion."""
    try:
        from assetbuild.project import Project

        given = ctx.params.get("manifest_path") or ctx.find_root().params.get("manifest_path")
        images = Project.load(given or find_manifest()).resolved.images
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []
    names = dict.fromkeys([i.base_name for i in images] + [i.name for i in images])
    return [name for name in names if name.startswith(incomplete)]


def targets_argument(func: F) -> F:
    """Image names, matrix slices or shell-style globs; none means every image."""
    return click.argument("targets", nargs=-1, shell_complete=complete_images)(func)


def status_options(func: F) -> F:
    """The options of the commands that report statuses: -f, targets, --provider,
    --json, -q, -v."""
    for option in (verbosity_options, json_option, provider_option, targets_argument,
                   manifest_option):
        func = option(func)
    return func


def load_project(manifest_path: Path) -> Any:
    """The project of ``manifest_path``, its warnings printed (on stderr)."""
    from assetbuild.project import Project

    project = Project.load(manifest_path)
    for notice in project.notices:
        echo(f"warning: {notice}", err=True)
    return project


def echo(text: str = "", *, err: bool = False) -> None:
    """Print a line (stdout, or stderr with ``err``)."""
    click.echo(text, err=err)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assetbuild")
@click.option("-f", "--file", "manifest_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The manifest every command reads (also accepted after "
                                 "the command).")
def cli(manifest_path: Path | None) -> None:
    """Build AI-generated images from a declarative manifest, like make.

    Only images whose spec changed are sent to the SEE2AI API; results, task ids and
    file digests go to a lockfile you commit.
    """


