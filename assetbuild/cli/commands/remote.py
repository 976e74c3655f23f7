"""assetbuild remote: what the team's remote store holds, and its garbage collection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from assetbuild.cli.app import (
    EXIT_OK,
    cli,
    echo,
    json_option,
    load_project,
    manifest_option,
    remote_options,
)
from assetbuild.errors import UsageError

if TYPE_CHECKING:
    from assetbuild.remote import RemoteStore


@cli.group()
def remote() -> None:
    """The team's remote result store (settings.remote, ASSETBUILD_REMOTE or --remote)."""


def _store(manifest_path: Path, url: str | None, readonly: bool | None) -> RemoteStore:
    from assetbuild.remote import remote_config

    config = remote_config(load_project(manifest_path).manifest.settings, url, readonly)
    if config is None:
        raise UsageError("no remote: set settings.remote, ASSETBUILD_REMOTE or --remote URL")
    return config.open()


@remote.command(name="info")
@manifest_option
@remote_options
@json_option
def remote_info(manifest_path: Path, remote: str | None, remote_readonly: bool | None,
                as_json: bool) -> int:
    """What the remote holds (objects and bytes by kind), and whether it answers."""
    import asyncio

    from assetbuild import report
    from assetbuild.remote.admin import remote_info as info

    found = asyncio.run(info(_store(manifest_path, remote, remote_readonly)))
    if as_json:
        echo(report.dumps(found))
        return EXIT_OK
    if not found["reachable"]:
        echo(f"{found['url']}: not reachable ({found['error']})")
        return 1
    echo(f"{found['url']}: {found['objects']} objects, {found['bytes']} bytes")
    for kind, counted in sorted(found["kinds"].items()):
        echo(f"  {kind}: {counted['objects']} objects, {counted['bytes']} bytes")
    return EXIT_OK


@remote.command(name="gc")
@manifest_option
@remote_options
@click.option("--keep-locked", is_flag=True, required=True,
              help="Keep what the lockfile on the given refs references; delete the rest.")
@click.option("--ref", "refs", multiple=True, default=("HEAD",), show_default=True,
              help="A git ref whose lockfile is kept (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@json_option
def remote_gc(manifest_path: Path, remote: str | None, remote_readonly: bool | None,
              keep_locked: bool, refs: tuple[str, ...], dry_run: bool, as_json: bool) -> int:
    """Delete the remote's results that no lockfile on the given git refs references."""
    import asyncio

    from assetbuild import report
    from assetbuild.lockread import read_lockfile
    from assetbuild.remote.admin import locked_keep_set, lockfiles_at
    from assetbuild.remote.admin import remote_gc as collect

    project = load_project(manifest_path)
    lockfile = project.manifest.lockfile_path
    kept = lockfiles_at(project.root, lockfile, refs)
    if lockfile.exists():
        kept.append(read_lockfile(lockfile))
    specs, blobs = locked_keep_set(kept)
    store = _store(manifest_path, remote, remote_readonly)
    done = asyncio.run(collect(store, specs, blobs, dry_run=dry_run))
    if as_json:
        echo(report.dumps(done))
    else:
        verb = "would delete" if dry_run else "deleted"
        echo(f"{done['url']}: {verb} {done['deleted']} objects ({done['bytes_freed']} bytes); "
             f"kept {done['kept']}")
    return EXIT_OK
