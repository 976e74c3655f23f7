"""pick, reroll and takes: choosing among the takes of an image."""

from __future__ import annotations

from pathlib import Path

import click

from assetbuild.cli.app import (
    EXIT_OK,
    cli,
    complete_images,
    echo,
    json_option,
    load_project,
    manifest_option,
    provider_option,
    remote_options,
    verbosity_options,
)
from assetbuild.cli.commands.build import build_reporter, finish_build

image_argument = click.argument("name", shell_complete=complete_images)


@cli.command()
@manifest_option
@image_argument
@click.argument("number", type=click.IntRange(1))
@provider_option
@remote_options
@json_option
@verbosity_options
def pick(manifest_path: Path, name: str, number: int, provider: str | None,
         remote: str | None, remote_readonly: bool | None, as_json: bool, quiet: bool,
         verbose: bool) -> int:
    """Make take NUMBER of image NAME its output (no API call); `check` passes after."""
    from assetbuild.build import build as run_build
    from assetbuild.outcomes import BuildOptions

    project = load_project(manifest_path)
    options = BuildOptions(targets=(name,), provider=provider, remote=remote,
                           remote_readonly=remote_readonly, picks={name: number})
    with build_reporter(as_json, quiet, verbose) as reporter:
        report = run_build(project, options, reporter=reporter, on_plan=reporter.planned)
    return finish_build(report, as_json, quiet)


@cli.command()
@manifest_option
@image_argument
@click.option("--count", type=click.IntRange(1, 7), default=1, show_default=True,
              help="How many more takes to pay for.")
@click.option("--max-cost", type=click.IntRange(0), default=None, metavar="POINTS",
              help="Refuse to start beyond this many points.")
@provider_option
@remote_options
@json_option
@verbosity_options
def reroll(manifest_path: Path, name: str, count: int, max_cost: int | None,
           provider: str | None, remote: str | None, remote_readonly: bool | None,
           as_json: bool, quiet: bool, verbose: bool) -> int:
    """Pay for COUNT more takes of image NAME, keeping the others and the output."""
    from assetbuild.build import build as run_build
    from assetbuild.outcomes import BuildOptions

    project = load_project(manifest_path)
    options = BuildOptions(targets=(name,), provider=provider, remote=remote,
                           remote_readonly=remote_readonly, max_cost=max_cost,
                           rerolls={name: count})
    with build_reporter(as_json, quiet, verbose) as reporter:
        report = run_build(project, options, reporter=reporter, on_plan=reporter.planned)
    code = finish_build(report, as_json, quiet)
    if code == EXIT_OK and not (as_json or quiet):
        echo(f"`assetbuild takes '{name}'` lists the takes; `assetbuild pick '{name}' N` "
             "makes take N the output.", err=True)
    return code


@cli.command()
@manifest_option
@image_argument
@json_option
def takes(manifest_path: Path, name: str, as_json: bool) -> int:
    """List the takes of image NAME: which is the output, task ids, digests, cost."""
    from assetbuild import report as reports
    from assetbuild.cache import ResultCache, default_cache_dir
    from assetbuild.takes import take_rows

    project = load_project(manifest_path)
    cache = ResultCache(default_cache_dir())
    try:
        rows = take_rows(project, name, cache)
    finally:
        cache.close()
    if as_json:
        echo(reports.dumps({"image": name, "takes": [row.to_json() for row in rows]}))
        return EXIT_OK
    for row in rows:
        mark = "*" if row.chosen else " "
        cost = "?" if row.cost_points is None else str(row.cost_points)
        where = "cached" if row.cached else "at its URL"
        echo(f"{mark} take {row.number}  task {row.task_id}  {row.sha256[:12]}  "
             f"{row.bytes:>9,} bytes  {cost:>4} points  {where}")
    echo(f"* is the output. `assetbuild pick '{name}' N` makes take N the output.")
    return EXIT_OK
