"""The command line: a thin click layer over :mod:`assetbuild.project`.

Exit codes, chosen here and only here (:func:`exit_code_for`):

* 0 -- success; everything up to date
* 1 -- an image failed to build, or ``check`` found images not up to date
* 2 -- usage, manifest, lockfile or state error (nothing was sent to the API)
* 3 -- the API aborted the build: 401 bad key or 402 insufficient balance
* 130 -- interrupted (Ctrl-C); journaled tasks resume on the next build
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from assetbuild import __version__
from assetbuild.errors import (
    AssetbuildError,
    AuthError,
    BalanceError,
    LockfileError,
    ManifestError,
    StateError,
    UsageError,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API_ABORT = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(error: AssetbuildError) -> int:
    """The exit code for an error that reached the user."""
    if isinstance(error, AuthError | BalanceError):
        return EXIT_API_ABORT
    if isinstance(error, UsageError | ManifestError | LockfileError | StateError):
        return EXIT_USAGE
    return EXIT_FAILED


def manifest_option(func: F) -> F:
    """``-f/--file``: the manifest to read."""
    return click.option(
        "-f", "--file", "manifest_path", type=click.Path(dir_okay=False, path_type=Path),
        default=Path("assetbuild.toml"), show_default=True, help="The manifest to read.",
    )(func)


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON on stdout.")(func)


def provider_option(func: F) -> F:
    """``--provider``: override the manifest's provider."""
    return click.option("--provider", type=click.Choice(["see2ai", "emulator"]),
                        help="Override settings.provider.")(func)


def verbosity_options(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose``."""
    func = click.option("-v", "--verbose", is_flag=True, help="Say more.")(func)
    return click.option("-q", "--quiet", is_flag=True, help="Print only errors.")(func)


def targets_argument(func: F) -> F:
    """Image names or shell-style globs; none means every image."""
    return click.argument("targets", nargs=-1)(func)


def _project(manifest_path: Path) -> Any:
    from assetbuild.project import Project

    return Project.load(manifest_path)


def echo(text: str = "", *, err: bool = False) -> None:
    """Print a line (stdout, or stderr with ``err``)."""
    click.echo(text, err=err)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assetbuild")
def cli() -> None:
    """Build AI-generated images from a declarative manifest, like make.

    Only images whose spec changed are sent to the SEE2AI API; results, task ids and
    file digests go to a lockfile you commit.
    """


@cli.command()
@manifest_option
@targets_argument
@provider_option
@json_option
@verbosity_options
def plan(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
         as_json: bool, quiet: bool, verbose: bool) -> int:
    """Show each image's status, the reason, and what build would do (no network)."""
    from assetbuild import report

    the_plan = _project(manifest_path).plan(targets, provider=provider)
    if as_json:
        echo(report.dumps(report.plan_json(the_plan)))
    elif not quiet:
        for line in report.plan_lines(the_plan):
            echo(line)
        echo(report.plan_summary(the_plan))
    return EXIT_OK


@cli.command()
@manifest_option
@targets_argument
@provider_option
@json_option
@verbosity_options
def check(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
          as_json: bool, quiet: bool, verbose: bool) -> int:
    """Exit 1 if any image is not up to date (for pre-commit and CI); no network."""
    from assetbuild import report

    the_plan = _project(manifest_path).plan(targets, provider=provider)
    if as_json:
        echo(report.dumps(report.plan_json(the_plan)))
    elif not quiet or not the_plan.up_to_date:
        for line in report.plan_lines(the_plan, only_stale=not verbose):
            echo(line)
        echo(report.plan_summary(the_plan))
        if not the_plan.up_to_date:
            echo(f"Run `assetbuild build -f {manifest_path}` to bring them up to date.")
    return EXIT_OK if the_plan.up_to_date else EXIT_FAILED


@cli.command()
@manifest_option
@click.argument("targets", nargs=-1, required=True)
def render(manifest_path: Path, targets: tuple[str, ...]) -> int:
    """Print the exact request JSON a build would send for TARGET (no network).

    One image prints its request; several print an object keyed by image name.
    """
    from assetbuild import report

    project = _project(manifest_path)
    lockfile = project.read_lockfile()
    uploaded = _cached_uploads(project)
    requests = {
        image.name: project.preview_request(image, lockfile, uploaded)
        for image in project.select(targets)
        if any(image.name == t or image.base_name == t or _glob(image.name, t) for t in targets)
    }
    if len(requests) == 1:
        echo(report.dumps(next(iter(requests.values()))))
    else:
        echo(report.dumps(requests))
    return EXIT_OK


def _glob(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _cached_uploads(project: Any) -> dict[str, str]:
    return {}


@cli.command(name="list")
@manifest_option
@provider_option
@json_option
def list_images(manifest_path: Path, provider: str | None, as_json: bool) -> int:
    """List images with their outputs and status (no network)."""
    from assetbuild import report

    the_plan = _project(manifest_path).plan(provider=provider)
    if as_json:
        echo(report.dumps([
            {"name": i.name, "output": i.image.output, "status": i.status,
             "aspect_ratio": i.image.aspect_ratio, "resolution": i.image.resolution,
             "dependencies": list(i.image.dependencies)}
            for i in the_plan.images
        ]))
        return EXIT_OK
    width = min(max((len(i.name) for i in the_plan.images), default=4), 48)
    for item in the_plan.images:
        echo(f"{item.name:<{width}}  {item.image.output}  {item.status}")
    return EXIT_OK


@cli.command()
@manifest_option
@provider_option
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot",
              show_default=True, help="Graphviz DOT or a Mermaid flowchart.")
@json_option
def graph(manifest_path: Path, provider: str | None, fmt: str, as_json: bool) -> int:
    """Print the dependency graph of the images (image:NAME references)."""
    from assetbuild import graph as graphs
    from assetbuild import report

    project = _project(manifest_path)
    the_plan = project.plan(provider=provider)
    statuses = {item.name: item.status for item in the_plan.images}
    images = project.resolved.images
    if as_json:
        echo(report.dumps({
            "nodes": [{"name": i.name, "status": statuses[i.name]} for i in images],
            "edges": [{"from": d, "to": i.name} for i in images for d in i.dependencies],
        }))
    else:
        text = graphs.to_dot(images, statuses) if fmt == "dot" else graphs.to_mermaid(
            images, statuses)
        click.echo(text, nl=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None,
                          prog_name="assetbuild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.Abort:
        echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except AssetbuildError as exc:
        _show_error(exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        echo("Interrupted; journaled tasks resume on the next build.", err=True)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


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
