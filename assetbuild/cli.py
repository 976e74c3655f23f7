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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from assetbuild import __version__
from assetbuild.errors import (
    AssetbuildError,
    AuthError,
    BalanceError,
    LockedError,
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
    if isinstance(error, LockedError):
        return EXIT_FAILED
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
    return click.option("--provider", type=click.Choice(["see2ai", "emulator"]),
                        help="Override settings.provider.")(func)


def verbosity_options(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose``."""
    func = click.option("-v", "--verbose", is_flag=True, help="Say more.")(func)
    return click.option("-q", "--quiet", is_flag=True, help="Print only errors.")(func)


def _complete_images(ctx: click.Context, param: click.Parameter,
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
    return click.argument("targets", nargs=-1, shell_complete=_complete_images)(func)


def status_options(func: F) -> F:
    """The options of the commands that report statuses: -f, targets, --provider,
    --json, -q, -v."""
    for option in (verbosity_options, json_option, provider_option, targets_argument,
                   manifest_option):
        func = option(func)
    return func


def _project(manifest_path: Path) -> Any:
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


@cli.command()
@click.option("-f", "--file", "manifest_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("assetbuild.toml"), show_default=True, help="The manifest to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
def init(manifest_path: Path, force: bool) -> int:
    """Write a starter manifest, ignore .assetbuild/ in git, and say what to run next."""
    from assetbuild.scaffold import write_starter

    gitignore = write_starter(manifest_path, force=force)
    echo(f"Wrote {manifest_path} and ignored .assetbuild/ in {gitignore}. Next:")
    echo(f"  assetbuild plan -f {manifest_path}     # what would be built")
    echo(f"  assetbuild build -f {manifest_path}    # placeholders (provider = \"emulator\")")
    echo("  then set provider = \"see2ai\" and SEE2AI_API_KEY=sk-... for the real images")
    return EXIT_OK


@cli.command()
@status_options
def plan(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
         as_json: bool, quiet: bool, verbose: bool) -> int:
    """Show each image's status, the reason, and what build would do (no network)."""
    _print_plan(_project(manifest_path).plan(targets, provider=provider), as_json, quiet)
    return EXIT_OK


def _print_plan(the_plan: Any, as_json: bool, quiet: bool) -> None:
    from assetbuild import report

    if as_json:
        echo(report.dumps(report.plan_json(the_plan)))
    elif not quiet:
        for line in report.plan_lines(the_plan):
            echo(line)
        echo(report.plan_summary(the_plan))


@cli.command()
@status_options
@click.option("--git", "in_git", is_flag=True,
              help="Also fail when the lockfile or an output it lists is not tracked by git "
                   "(the pre-commit hook's mode: a commit must carry its images).")
def check(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
          as_json: bool, quiet: bool, verbose: bool, in_git: bool) -> int:
    """Exit 1 if any image is not up to date (for pre-commit and CI); no network."""
    from assetbuild import report
    from assetbuild.prune import leftover_entries

    project = _project(manifest_path)
    the_plan = project.plan(targets, provider=provider)
    leftovers = leftover_entries(project, the_plan.lockfile)
    unstaged = _untracked_files(project, the_plan) if in_git else []
    if as_json:
        echo(report.dumps(report.plan_json(the_plan) | {"undeclared": list(leftovers),
                                                         "untracked": unstaged}))
    elif not quiet or not the_plan.up_to_date or unstaged:
        for line in report.plan_lines(the_plan, only_stale=not verbose):
            echo(line)
        echo(report.plan_summary(the_plan))
        _advise(the_plan, unstaged, manifest_path)
    if leftovers and not as_json and not quiet:
        echo(f"note: the lockfile holds {len(leftovers)} image(s) the manifest no longer "
             "declares; `assetbuild prune` lists them (this does not fail the check).")
    return EXIT_OK if the_plan.up_to_date and not unstaged else EXIT_FAILED


def _untracked_files(project: Any, the_plan: Any) -> list[str]:
    from assetbuild.gitcheck import expected_files, untracked

    return untracked(project.root, expected_files(the_plan))


def _advise(the_plan: Any, unstaged: list[str], manifest_path: Path) -> None:
    """The one command that fixes what check found: build, pull, or git add."""
    stale = [item for item in the_plan.images if item.action != "none"]
    if any(item.action == "build" for item in stale):
        echo(f"Run `assetbuild build -f {manifest_path}` to bring them up to date.")
    elif stale:
        echo(f"Run `assetbuild pull -f {manifest_path}`: the lockfile's results only need "
             "restoring (nothing to generate).")
    if unstaged:
        shown = " ".join(unstaged[:10]) + (" ..." if len(unstaged) > 10 else "")
        echo(f"{len(unstaged)} file(s) the lockfile lists are not tracked by git; "
             f"stage them with: git add {shown}")


@cli.command()
@manifest_option
@click.argument("targets", nargs=-1, required=True, shell_complete=_complete_images)
@provider_option
@json_option
def render(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
           as_json: bool) -> int:
    """Print the exact request JSON a build would send for TARGET (no network).

    One image prints its request; several print an object keyed by image name. The
    output is always JSON; --json is accepted for symmetry with the other commands.
    """
    from assetbuild import report

    project = _project(manifest_path)
    lockfile = project.read_lockfile()
    uploaded = project.cached_uploads(provider)
    from assetbuild.plan import matching_names

    named = {name for t in targets for name in matching_names(t, project.resolved.images)}
    requests = {
        image.name: project.preview_request(image, lockfile, uploaded)
        for image in project.select(targets)  # raises a usage error for an unknown target
        if image.name in named
    }
    if len(requests) == 1:
        echo(report.dumps(next(iter(requests.values()))))
    else:
        echo(report.dumps(requests))
    if any(url.startswith("upload:") for body in requests.values()
           for url in body["input_urls"]):
        echo("note: upload:PATH stands for a local reference not uploaded yet; a build "
             "uploads it and sends its hosted URL instead.", err=True)
    return EXIT_OK


@cli.command()
@manifest_option
@targets_argument
@click.option("-j", "--jobs", type=click.IntRange(1, 4096), help="Most images in flight at once.")
@click.option("--force", is_flag=True, help="Generate the selected images again.")
@click.option("--fail-fast", is_flag=True, help="Submit nothing new after the first failure.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop (same as plan).")
@click.option("--no-wait", is_flag=True, help="Exit instead of waiting for another build.")
@click.option("--shard", default=None, metavar="K/N",
              help="Build shard K of N (for CI fan-out); merge with `assetbuild lock merge`.")
@click.option("--max-cost", type=click.IntRange(0), default=None, metavar="POINTS",
              help="Refuse to start beyond this many points; stop submitting on reaching it.")
@provider_option
@json_option
@verbosity_options
def build(manifest_path: Path, targets: tuple[str, ...], jobs: int | None, force: bool,
          fail_fast: bool, dry_run: bool, no_wait: bool, shard: str | None, max_cost: int | None,
          provider: str | None, as_json: bool, quiet: bool, verbose: bool) -> int:
    """Build what is stale (and what it depends on): files and lockfile."""
    from assetbuild.build import build as run_build
    from assetbuild.outcomes import BuildOptions

    project = _project(manifest_path)
    from assetbuild.shard import parse_shard

    if dry_run:
        return _dry_run(project, targets, provider, parse_shard(shard) if shard else None,
                        as_json, quiet)
    options = BuildOptions(targets=targets, force=force, jobs=jobs, provider=provider,
                           fail_fast=fail_fast, max_cost=max_cost,
                           shard=parse_shard(shard) if shard else None)
    with _reporter(as_json, quiet, verbose) as reporter:
        report = run_build(project, options, reporter=reporter, wait=not no_wait,
                           on_wait=lambda message: echo(message, err=True),
                           on_plan=reporter.planned)
    return _finish(report, as_json, quiet)


def _dry_run(project: Any, targets: tuple[str, ...], provider: str | None,
             shard: tuple[int, int] | None, as_json: bool, quiet: bool) -> int:
    """What ``build`` would do (with ``--shard``, this shard's part only); no network."""
    from assetbuild.shard import shard_of_plan

    the_plan = project.plan(targets, provider=provider)
    _print_plan(shard_of_plan(the_plan, shard) if shard else the_plan, as_json, quiet)
    return EXIT_OK


@cli.command()
@manifest_option
@targets_argument
@click.option("--no-wait", is_flag=True, help="Exit instead of waiting for a running build.")
@provider_option
@json_option
@verbosity_options
def pull(manifest_path: Path, targets: tuple[str, ...], no_wait: bool, provider: str | None,
         as_json: bool, quiet: bool, verbose: bool) -> int:
    """Restore missing or modified outputs from the cache or the locked URLs (never generates)."""
    from assetbuild.build import pull as run_pull

    project = _project(manifest_path)
    with _reporter(as_json, quiet, verbose) as reporter:
        report = run_pull(project, targets, provider=provider, reporter=reporter,
                          wait=not no_wait, on_plan=reporter.planned)
    return _finish(report, as_json, quiet)


def _reporter(as_json: bool, quiet: bool, verbose: bool) -> Any:
    from assetbuild.progress import PlainReporter, RichReporter

    if as_json or quiet or not sys.stderr.isatty():
        return PlainReporter(quiet=quiet or as_json, verbose=verbose)
    return RichReporter(verbose=verbose)


def _finish(report: Any, as_json: bool, quiet: bool) -> int:
    from assetbuild import report as reports
    from assetbuild.outcomes import plural
    from assetbuild.progress import report_json, summary_line

    if as_json:
        echo(reports.dumps(report_json(report)))
    elif not quiet:
        echo(summary_line(report), err=True)
    if report.unjournaled:
        echo(f"error: {len(report.unjournaled)} paid task(s) could not be written to the "
             "journal (the disk refused). Keep these ids: once the disk has room, the "
             "next build cannot resume them by itself.", err=True)
        for name, task_id in report.unjournaled:
            echo(f"  {name}: task {task_id}", err=True)
    if report.aborted is not None:
        echo(f"error: the API stopped the build: {report.aborted}", err=True)
        return exit_code_for(report.aborted)
    if report.failed:
        if not as_json:
            verb = "not built" if report.generated else "not restored"
            echo(f"error: {plural(len(report.failed), 'image')} {verb}:", err=True)
            _show_failures(report.failed)
        return EXIT_FAILED
    return EXIT_OK


def _show_failures(failed: list[Any]) -> None:
    """One line per failed image, except that a reason many share is said once."""
    by_message: dict[str, list[str]] = {}
    for result in failed:
        by_message.setdefault(result.message, []).append(result.name)
    for message, names in by_message.items():
        if len(names) <= 3:
            for name in names:
                echo(f"  {name}: {message}", err=True)
        else:
            shown = ", ".join(names[:3])
            echo(f"  {len(names)} images ({shown}, ...): {message}", err=True)


@cli.command()
@manifest_option
@click.option("--yes", is_flag=True, help="Remove them (otherwise only list them).")
@json_option
def prune(manifest_path: Path, yes: bool, as_json: bool) -> int:
    """List lock entries and output files the manifest no longer declares; --yes removes them."""
    from assetbuild import report
    from assetbuild.build import build_lock
    from assetbuild.prune import find_leftovers, remove_leftovers

    project = _project(manifest_path)
    with build_lock(project, wait=False):
        lockfile = project.read_lockfile()
        leftovers = find_leftovers(project, lockfile)
        if yes:
            remove_leftovers(project, lockfile, leftovers)
    if as_json:
        echo(report.dumps({"entries": list(leftovers.entries), "files": list(leftovers.files),
                           "removed": yes}))
        return EXIT_OK
    for name in leftovers.entries:
        echo(f"lock entry  {name}")
    for path in leftovers.files:
        echo(f"file        {path}")
    verb = "removed" if yes else "found (remove them with --yes)"
    echo(f"{len(leftovers.entries)} lock entries and {len(leftovers.files)} files {verb}.")
    return EXIT_OK


@cli.group()
def lock() -> None:
    """The lockfile: merge the partial lockfiles of a sharded build."""


@lock.command(name="merge")
@manifest_option
@click.argument("partials", nargs=-1, type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path))
@click.option("--remove", is_flag=True, help="Delete the partial lockfiles once merged.")
def lock_merge(manifest_path: Path, partials: tuple[Path, ...], remove: bool) -> int:
    """Merge shard lockfiles (default: every LOCKFILE.shard-K-of-N beside it) into the lockfile."""
    from assetbuild.shard import find_partials, merge_lockfiles

    project = _project(manifest_path)
    main = project.manifest.lockfile_path
    found = list(partials) or find_partials(main)
    if not found:
        raise UsageError(f"no partial lockfiles ({main.name}.shard-K-of-N) beside {main}")
    taken = merge_lockfiles(main, found)
    if remove:
        for partial in found:
            partial.unlink()
    echo(f"merged {len(found)} partial lockfile(s) into {main}: {len(taken)} image(s) updated")
    return EXIT_OK


@lock.command(name="files")
@manifest_option
@click.argument("lockfile", required=False, type=click.Path(exists=True, dir_okay=False,
                                                            path_type=Path))
def lock_files(manifest_path: Path, lockfile: Path | None) -> int:
    """Print the files a lockfile vouches for (outputs and derived files, one a line,
    relative to the current folder), and the lockfile itself: what a shard uploads."""
    import os

    from assetbuild.lockfile import read_lockfile

    project = _project(manifest_path)
    path = lockfile or project.manifest.lockfile_path
    entries = read_lockfile(path).entries
    files = [project.root / record.path for name in sorted(entries)
             for record in (*entries[name].outputs, *entries[name].derived)]
    for file in [path, *files]:
        echo(os.path.relpath(file))
    return EXIT_OK


@cli.group()
def cache() -> None:
    """The local result cache (shared by all projects of this user)."""


@cache.command(name="info")
@json_option
def cache_info(as_json: bool) -> int:
    """Where the cache is and how much it holds."""
    from assetbuild import report as reports
    from assetbuild.cache import ResultCache, default_cache_dir

    result_cache = ResultCache(default_cache_dir())
    try:
        info = result_cache.info()
    finally:
        result_cache.close()
    if as_json:
        echo(reports.dumps(info))
    else:
        echo(f"{info['path']}: {info['results']} results, {info['blobs']} images, "
             f"{info['bytes'] / 1e6:.1f} MB of {info['size_limit'] / 1e6:.0f} MB")
    return EXIT_OK


@cache.command(name="clear")
def cache_clear() -> int:
    """Remove everything from the cache (lockfiles and outputs are untouched)."""
    from assetbuild.cache import ResultCache, default_cache_dir

    result_cache = ResultCache(default_cache_dir())
    try:
        removed = result_cache.clear()
    finally:
        result_cache.close()
    echo(f"removed {removed} cache entries from {result_cache.folder}")
    return EXIT_OK


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--latency", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds from submit to a terminal state (the minimum, with --latency-max).")
@click.option("--latency-max", default=None, type=click.FloatRange(0),
              help="Upper bound of the latency: each task takes a random time between.")
@click.option("--failure-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of tasks that end as failed (refunded, as the platform does).")
@click.option("--rate-429", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 429 (rate limited).")
@click.option("--retry-after", default=1.0, type=click.FloatRange(0), show_default=True,
              help="Retry-After seconds sent with each 429.")
@click.option("--rate-500", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 500.")
@click.option("--rate-504", default=0.0, type=click.FloatRange(0, 1),
              help="Share of status polls answered 504.")
@click.option("--drop-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of connections dropped before any answer (no task is created).")
@click.option("--truncate-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of downloads cut short of their Content-Length.")
@click.option("--slow-status", default=0.0, type=click.FloatRange(0),
              help="Seconds added to every status answer.")
@click.option("--balance", default=None, type=click.IntRange(0),
              help="Points before 402 (default: unlimited).")
@click.option("--api-key", default=None, help="Accept only this key (default: any bearer key).")
@click.option("--seed", default=None, type=int, help="Seed the fault rolls.")
@click.option("--plain-images", is_flag=True, help="Flat images without captions (load tests).")
@click.option("--dialect", type=click.Choice(["vendor", "platform"]), default="vendor",
              show_default=True, help="Answer as the vendor page says (vendor) or as the "
                                      "platform's client scripts read it (platform).")
@click.option("--log", "log_requests", is_flag=True, help="Print a line per request.")
def emulator(host: str, port: int, latency: float, latency_max: float | None,
             log_requests: bool, **faults: Any) -> int:
    """Serve the SEE2AI-compatible emulator over HTTP (point SEE2AI_BASE_URL at it).

    POST /_emulator/config with a JSON object of these options' names (latency,
    latency_max, failure_rate, rate_429, ...) changes them while it runs; GET
    /_emulator/stats counts submits, polls, downloads and faults.
    """
    import socket

    from assetbuild.emulator import Emulator, EmulatorConfig
    from assetbuild.emulator.server import make_server

    if latency_max is not None and latency_max < latency:
        raise UsageError(f"--latency-max {latency_max:g} is below --latency {latency:g}; "
                         "give the minimum first and a larger maximum")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another "
                         "emulator may be running there; try another --port)") from None
    config = EmulatorConfig(latency_min=latency, latency_max=latency_max or latency, **faults)
    echo(f"SEE2AI emulator on http://{host}:{port} (SEE2AI_BASE_URL=http://{host}:{port})",
         err=True)
    make_server(Emulator(config), host, port,
                log_level="info" if log_requests else "warning",
                access_log=log_requests).run()
    return EXIT_OK


@cli.command(name="list")
@manifest_option
@provider_option
@json_option
def list_images(manifest_path: Path, provider: str | None, as_json: bool) -> int:
    """List images with their outputs and status (no network)."""
    from assetbuild import report

    the_plan = _project(manifest_path).plan(provider=provider)
    if as_json:
        echo(report.dumps(report.images_json(the_plan)))
        return EXIT_OK
    width = min(max((len(i.name) for i in the_plan.images), default=4), 48)
    out_width = min(max((len(i.image.output) for i in the_plan.images), default=6), 64)
    for item in the_plan.images:
        echo(f"{item.name:<{width}}  {item.image.output:<{out_width}}  {item.status}")
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
        echo(report.dumps(report.graph_json(images, statuses)))
    else:
        text = graphs.to_dot(images, statuses) if fmt == "dot" else graphs.to_mermaid(
            images, statuses)
        click.echo(text, nl=False)
    return EXIT_OK


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
    except (click.exceptions.Abort, KeyboardInterrupt):
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
