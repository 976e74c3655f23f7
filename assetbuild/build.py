"""Library entry points for ``build`` and ``pull``: lock, plan, open the client, run.

>>> report = build(Project.load("assetbuild.toml"), BuildOptions(provider="emulator"))
...                                                            # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assetbuild.errors import BudgetError, LockedError
from assetbuild.fsutil import remove_stale_temp_files

if TYPE_CHECKING:
    from assetbuild.cache import ResultCache
    from assetbuild.emulator import Emulator
    from assetbuild.outcomes import BuildOptions, BuildReport, Reporter
    from assetbuild.plan import Plan
    from assetbuild.project import Project
    from assetbuild.remote import RemoteStore

LOCK_NAME = "build.lock"
SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it, during a build."""


@dataclass(frozen=True)
class HeldLock:
    """The build lock as held: its file, and the inode it had when taken."""

    path: Path
    inode: int

    def intact(self) -> bool:
        """Whether the lock file is still the one that was locked. If someone deleted
        the state folder, another build can take a fresh lock beside this one: a build
        that finds its lock gone stops submitting."""
        try:
            return self.path.stat().st_ino == self.inode
        except OSError:
            return False


@contextlib.contextmanager
def build_lock(project: Project, *, wait: bool = True,
               on_wait: Callable[[str], None] | None = None) -> Iterator[HeldLock]:
    """Hold the project's build lock; wait for another build, or raise LockedError.

    Once held, temporary files left by a killed build are removed.
    """
    import filelock

    state = project.state_dir
    state.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(state / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        message = f"another build of {project.manifest.path} is running"
        if not wait:
            raise LockedError(f"{message}; try again when it has finished") from None
        if on_wait:
            on_wait(f"{message}; waiting for it to finish")
        lock.acquire()
    try:
        held = HeldLock(state / LOCK_NAME, (state / LOCK_NAME).stat().st_ino)
        # Whatever a killed build left half-written is ours to remove now.
        remove_stale_temp_files(project.root / project.manifest.settings.out_dir)
        remove_stale_temp_files(project.manifest.lockfile_path.parent, recursive=False)
        yield held
    finally:
        lock.release()


def build(
    project: Project,
    options: BuildOptions | None = None,
    *,
    reporter: Reporter | None = None,
    emulator: Emulator | None = None,
    environ: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> BuildReport:
    """Build the stale images of ``project``; see :class:`assetbuild.outcomes.BuildOptions`.

    ``on_plan`` is called with the plan before any work starts (progress displays
    use it for their totals).
    """
    from assetbuild.outcomes import BuildOptions

    options = options or BuildOptions()
    provider = project.provider(options.provider)
    with build_lock(project, wait=wait, on_wait=on_wait) as held:
        plan = project.plan(options.targets, provider=provider, force=options.force)
        if options.shard is not None:
            from assetbuild.shard import shard_of_plan

            plan = shard_of_plan(plan, options.shard)
        if options.picks or options.rerolls:
            from assetbuild.takes import asked_takes

            plan = asked_takes(plan, options.picks, options.rerolls)
        if options.max_cost is not None:
            _check_budget(plan, options.max_cost)
        if on_plan:
            on_plan(plan)
        if not plan.up_to_date:
            from assetbuild.review.base import keep_review_base

            keep_review_base(project)
        return _run(project, plan, options, reporter, emulator, environ, cache_dir,
                    lock=held)


def _check_budget(plan: Plan, max_cost: int) -> None:
    from assetbuild.cost import estimate

    cost = estimate(plan)
    if cost.points > max_cost:
        raise BudgetError(f"this build would spend {cost.describe()}, more than --max-cost "
                          f"{max_cost}; nothing was submitted. `assetbuild plan` shows what "
                          "would be generated.")


def pull(
    project: Project,
    targets: tuple[str, ...] = (),
    *,
    provider: str | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    wait: bool = True,
    on_plan: Callable[[Plan], None] | None = None,
    remote: str | None = None,
) -> BuildReport:
    """Restore missing or modified outputs from the local cache, the team's remote (the
    URL ``remote``, else the environment's or the settings'), or the locked URLs; never
    generate."""
    from dataclasses import replace

    from assetbuild.outcomes import BuildOptions, ImageResult

    provider = project.provider(provider)
    with build_lock(project, wait=wait):
        plan = project.plan(targets, provider=provider)
        if on_plan:
            on_plan(plan)
        wanted = tuple(i for i in plan.images if i.action != "build")
        unbuilt = [ImageResult(i.name, "skipped", f"{i.status}: {i.reason}; pull never "
                               f"generates, run `assetbuild build '{i.name}'`")
                   for i in plan.images if i.action == "build"]
        options = BuildOptions(provider=provider, remote=remote, remote_readonly=True)
        report = _run(project, replace(plan, images=wanted), options, reporter, None, environ,
                      cache_dir, generate=False)
    return replace(report, results=report.results + tuple(unbuilt), generated=False)


def _run(
    project: Project, plan: Plan, options: BuildOptions, reporter: Reporter | None,
    emulator: Emulator | None, environ: Mapping[str, str] | None, cache_dir: Path | None,
    *, generate: bool = True, lock: HeldLock | None = None,
) -> BuildReport:
    from assetbuild.outcomes import BuildReport, ImageResult

    if all(item.action == "none" for item in plan.images):
        results = tuple(ImageResult(i.name, "up-to-date") for i in plan.images)
        return BuildReport(results, 0.0)
    with _prompt_event_loop():
        return asyncio.run(_run_async(project, plan, options, reporter, emulator, environ,
                                      cache_dir, generate, lock))


@contextlib.contextmanager
def _prompt_event_loop() -> Iterator[None]:
    """Hand the GIL back to the event loop within SWITCH_INTERVAL while the build's
    threads hash, copy and decode files: CPython's default (5 ms) would let a worker
    thread hold a submit's answer that long before the loop journals it."""
    import sys

    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


async def _run_async(
    project: Project, plan: Plan, options: BuildOptions, reporter: Reporter | None,
    emulator: Emulator | None, environ: Mapping[str, str] | None, cache_dir: Path | None,
    generate: bool, lock: HeldLock | None,
) -> BuildReport:
    from assetbuild.engine import BuildContext, Builder
    from assetbuild.journal import Journal
    from assetbuild.providers import Provider
    from assetbuild.state import FileDigests, StateStore

    provider = Provider.choose(plan.provider, environ)
    if generate and any(item.action == "build" for item in plan.images):
        provider = provider.with_key()
    cache = _open_cache(cache_dir, environ)
    journal = Journal(project.state_dir, provider.base_url, provider.api_key)
    store = StateStore(project.state_dir)
    digests = FileDigests(store)
    builder = Builder(BuildContext(
        project, plan, provider, cache, journal, digests, options, reporter,
        generate=generate, lock_intact=lock.intact if lock else None, emulator=emulator,
        remote=_open_remote(project, options, environ)))
    try:
        return await builder.run()
    finally:
        await builder.aclose()
        digests.save()
        store.close()
        journal.close()
        cache.close()


def _open_remote(project: Project, options: BuildOptions,
                 environ: Mapping[str, str] | None) -> RemoteStore | None:
    from assetbuild.remote import remote_config

    config = remote_config(project.manifest.settings, options.remote, options.remote_readonly,
                           environ)
    return config.open() if config is not None else None


def _open_cache(cache_dir: Path | None, environ: Mapping[str, str] | None) -> ResultCache:
    from assetbuild.cache import ResultCache, default_cache_dir

    return ResultCache(cache_dir or default_cache_dir(environ))
