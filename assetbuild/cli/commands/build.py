"""build and pull: the commands that reach the API or the result URLs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from assetbuild.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    cli,
    echo,
    exit_code_for,
    json_option,
    load_project,
    manifest_option,
    provider_option,
    remote_options,
    targets_argument,
    verbosity_options,
)
from assetbuild.cli.commands.inspect import print_plan


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
@remote_options
@json_option
@verbosity_options
def build(manifest_path: Path, targets: tuple[str, ...], jobs: int | None, force: bool,
          fail_fast: bool, dry_run: bool, no_wait: bool, shard: str | None, max_cost: int | None,
          provider: str | None, remote: str | None, remote_readonly: bool | None,
          as_json: bool, quiet: bool, verbose: bool) -> int:
    """Build what is stale (and what it depends on): files and lockfile."""
    from assetbuild.build import build as run_build
    from assetbuild.outcomes import BuildOptions

    project = load_project(manifest_path)
    from assetbuild.shard import parse_shard

    if dry_run:
        return _dry_run(project, targets, provider, parse_shard(shard) if shard else None,
                        as_json, quiet)
    options = BuildOptions(targets=targets, force=force, jobs=jobs, provider=provider,
                           fail_fast=fail_fast, max_cost=max_cost, remote=remote,
                           remote_readonly=remote_readonly,
                           shard=parse_shard(shard) if shard else None)
    with build_reporter(as_json, quiet, verbose) as reporter:
        report = run_build(project, options, reporter=reporter, wait=not no_wait,
                           on_wait=lambda message: echo(message, err=True),
                           on_plan=reporter.planned)
    return finish_build(report, as_json, quiet)


def _dry_run(project: Any, targets: tuple[str, ...], provider: str | None,
             shard: tuple[int, int] | None, as_json: bool, quiet: bool) -> int:
    """What ``build`` would do (with ``--shard``, this shard's part only); no network."""
    from assetbuild.shard import shard_of_plan

    the_plan = project.plan(targets, provider=provider)
    print_plan(shard_of_plan(the_plan, shard) if shard else the_plan, as_json, quiet)
    return EXIT_OK


@cli.command()
@manifest_option
@targets_argument
@click.option("--no-wait", is_flag=True, help="Exit instead of waiting for a running build.")
@provider_option
@remote_options
@json_option
@verbosity_options
def pull(manifest_path: Path, targets: tuple[str, ...], no_wait: bool, provider: str | None,
         remote: str | None, remote_readonly: bool | None, as_json: bool, quiet: bool,
         verbose: bool) -> int:
    """Restore missing or modified outputs from the cache or the locked URLs (never generates)."""
    from assetbuild.build import pull as run_pull

    project = load_project(manifest_path)
    with build_reporter(as_json, quiet, verbose) as reporter:
        report = run_pull(project, targets, provider=provider, reporter=reporter,
                          wait=not no_wait, on_plan=reporter.planned, remote=remote)
    return finish_build(report, as_json, quiet)


def build_reporter(as_json: bool, quiet: bool, verbose: bool) -> Any:
    from assetbuild.progress import PlainReporter, RichReporter

    if as_json or quiet or not sys.stderr.isatty():
        return PlainReporter(quiet=quiet or as_json, verbose=verbose)
    return RichReporter(verbose=verbose)


def finish_build(report: Any, as_json: bool, quiet: bool) -> int:
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
    if report.unanswered:
        echo(f"warning: may have been charged twice: {', '.join(report.unanswered)}. An "
             "earlier build was stopped or killed while their submits were on the wire, "
             "before the task ids came back; this build submitted them anew. The account's "
             "task log shows whether the API had created the first tasks.", err=True)
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


