"""The lockfile and the result cache: lock merge, lock files, cache info, cache clear."""

from __future__ import annotations

from pathlib import Path

import click

from assetbuild.cli.app import (
    EXIT_OK,
    cli,
    echo,
    json_option,
    load_project,
    manifest_option,
)
from assetbuild.errors import (
    UsageError,
)


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

    project = load_project(manifest_path)
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

    from assetbuild.lockread import read_lockfile

    project = load_project(manifest_path)
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


