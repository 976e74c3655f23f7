"""The offline commands: init, plan, check, render, prune, list and graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from assetbuild.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    cli,
    complete_images,
    echo,
    json_option,
    load_project,
    manifest_option,
    provider_option,
    status_options,
)
from assetbuild.errors import UsageError

SETTINGS_REMOTE = "@settings"
"""``check --remote`` with no URL: the remote the environment or the settings name."""


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
    print_plan(load_project(manifest_path).plan(targets, provider=provider), as_json, quiet)
    return EXIT_OK


def print_plan(the_plan: Any, as_json: bool, quiet: bool) -> None:
    """The plan as plan prints it: JSON, or a line per image and a summary."""
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
@click.option("--remote", "remote", is_flag=False, flag_value=SETTINGS_REMOTE, default=None,
              metavar="[URL]", help="Also say which images to build the team's remote "
                                    "already holds (its URL, else settings.remote).")
def check(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
          as_json: bool, quiet: bool, verbose: bool, in_git: bool, remote: str | None) -> int:
    """Exit 1 if any image is not up to date (for pre-commit and CI); no network."""
    from assetbuild import report
    from assetbuild.prune import leftover_entries

    project = load_project(manifest_path)
    the_plan = project.plan(targets, provider=provider)
    leftovers = leftover_entries(project, the_plan.lockfile)
    unstaged = _untracked_files(project, the_plan) if in_git else []
    on_remote = _on_remote(project, the_plan, remote) if remote is not None else None
    if as_json:
        echo(report.dumps(report.plan_json(the_plan) | {"undeclared": list(leftovers),
                                                         "untracked": unstaged,
                                                         "on_remote": on_remote}))
    elif not quiet or not the_plan.up_to_date or unstaged:
        for line in report.plan_lines(the_plan, only_stale=not verbose):
            echo(line)
        echo(report.plan_summary(the_plan))
        if on_remote:
            echo(f"{len(on_remote)} of the images to build the team has already paid for (the "
                 "remote holds them): `assetbuild build` restores them at no cost.")
        _advise(the_plan, unstaged, manifest_path)
    if leftovers and not as_json and not quiet:
        echo(f"note: the lockfile holds {len(leftovers)} image(s) the manifest no longer "
             "declares; `assetbuild prune` lists them (this does not fail the check).")
    return EXIT_OK if the_plan.up_to_date and not unstaged else EXIT_FAILED


def _on_remote(project: Any, the_plan: Any, url: str) -> list[str]:
    """The images to build whose spec the team's remote already holds."""
    import asyncio

    from assetbuild.remote import RemoteDown, remote_config
    from assetbuild.remote.admin import published

    config = remote_config(project.manifest.settings, None if url == SETTINGS_REMOTE else url,
                           True)
    if config is None:
        raise UsageError("check --remote: no remote (set settings.remote or ASSETBUILD_REMOTE, "
                         "or give its URL)")
    wanted = [item for item in the_plan.images if item.action == "build"]
    try:
        found = asyncio.run(published(config.open(), [item.spec_hash for item in wanted]))
    except RemoteDown as exc:
        echo(f"warning: the remote {config.url} could not be read ({exc})", err=True)
        return []
    return [item.name for item in wanted if item.spec_hash in found]


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
@click.argument("targets", nargs=-1, required=True, shell_complete=complete_images)
@provider_option
@json_option
def render(manifest_path: Path, targets: tuple[str, ...], provider: str | None,
           as_json: bool) -> int:
    """Print the exact request JSON a build would send for TARGET (no network).

    One image prints its request; several print an object keyed by image name. The
    output is always JSON; --json is accepted for symmetry with the other commands.
    """
    from assetbuild import report

    project = load_project(manifest_path)
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
@click.option("--yes", is_flag=True, help="Remove them (otherwise only list them).")
@json_option
def prune(manifest_path: Path, yes: bool, as_json: bool) -> int:
    """List lock entries and output files the manifest no longer declares; --yes removes them."""
    from assetbuild import report
    from assetbuild.build import build_lock
    from assetbuild.prune import find_leftovers, remove_leftovers

    project = load_project(manifest_path)
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


@cli.command(name="list")
@manifest_option
@provider_option
@json_option
def list_images(manifest_path: Path, provider: str | None, as_json: bool) -> int:
    """List images with their outputs and status (no network)."""
    from assetbuild import report

    the_plan = load_project(manifest_path).plan(provider=provider)
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

    project = load_project(manifest_path)
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


