"""The build engine: run the stale images of a plan, concurrently and resumably.

For each image that needs building, in dependency order (a dependent starts as soon
as its dependencies are done): reuse a cached result for the same spec hash, else
resume a journaled task, else upload local references, submit, journal the task id,
poll adaptively, download, write the outputs atomically and record them. At most
``jobs`` tasks are in flight (submitted, not yet terminal). The lockfile is flushed
at most about once a second and at the end; the journal keeps every finished image
safe in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assetbuild.cache import ResultCache
from assetbuild.cost import Prices
from assetbuild.engine.requests import Requests
from assetbuild.engine.results import Results
from assetbuild.engine.submits import Submitter
from assetbuild.engine.takes import TakeFlow
from assetbuild.engine.team import TeamFlow
from assetbuild.engine.watch import TaskWatcher
from assetbuild.errors import (
    ApiError,
    AuthError,
    BalanceError,
    BuildStopped,
    DownloadError,
    ImageFailed,
    TaskGone,
    Unreachable,
)
from assetbuild.hashing import spec_hash
from assetbuild.journal import Journal
from assetbuild.lockfile import LockEntry
from assetbuild.lockflush import LockfileFlusher
from assetbuild.outcomes import (
    BuildEvent,
    BuildOptions,
    BuildReport,
    ImageResult,
    Outcome,
    Reporter,
)
from assetbuild.plan import ImageStatus, Plan
from assetbuild.project import Project
from assetbuild.providers.answers import valid_task_id
from assetbuild.remote import TeamRemote
from assetbuild.resolve import ResolvedImage
from assetbuild.shard import shard_path
from assetbuild.spec import image_spec
from assetbuild.state import FileDigests

if TYPE_CHECKING:
    from assetbuild.emulator import Emulator
    from assetbuild.providers import Provider
    from assetbuild.providers.answers import TaskStatus
    from assetbuild.providers.see2ai import See2AIClient
    from assetbuild.remote import RemoteStore


@dataclass
class _Shared:
    """State one build's image tasks share (owned by the event loop thread)."""

    results: dict[str, ImageResult] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    """An event for each image another one waits for, set once it has ended."""

    def ended(self, name: str, result: ImageResult) -> None:
        """Record an image's result and wake whoever waits for it."""
        self.results[name] = result
        if (event := self.done.get(name)) is not None:
            event.set()


LIVE_TASKS = 1024
"""Image tasks started and not ended at most (or four per job, if more)."""

LONG_WAIT = 10.0
"""Seconds of a retry's wait (a 429's Retry-After, a long backoff) said even without -v."""


POOL_CONNECTIONS = 16
"""HTTP connections per build. Requests are short; httpcore spends time per request in
proportion to the pool's size, so 16 serve 256 tasks in flight faster than 256 would."""


@dataclass(frozen=True)
class BuildContext:
    """What one build runs with: the project and its plan, where it generates, the
    stores it keeps, and how it reports."""

    project: Project
    plan: Plan
    provider: Provider
    cache: ResultCache
    journal: Journal
    digests: FileDigests
    options: BuildOptions
    reporter: Reporter | None = None
    generate: bool = True
    """False for a pull: restore only, never submit."""
    lock_intact: Callable[[], bool] | None = None
    """Whether this build still holds its build lock (checked before each submit)."""
    emulator: Emulator | None = None
    """The in-process emulator to use (tests), for the emulator provider."""
    remote: RemoteStore | None = None
    """The team's remote result store, if one is used."""


class Builder:
    """Runs one build of a plan against one client."""

    def __init__(self, context: BuildContext) -> None:
        project, plan, options = context.project, context.plan, context.options
        self.project, self.plan, self.provider = project, plan, context.provider
        self.context = context
        self._client: See2AIClient | None = None
        self.cache, self.journal, self.digests = context.cache, context.journal, context.digests
        journal = self.journal
        self.options = options
        self.report: Reporter = context.reporter or (lambda event: None)
        self.generate = context.generate
        self.lock_intact = context.lock_intact or (lambda: True)
        self.root = project.root
        settings = project.manifest.settings
        self.timeout = settings.timeout
        self.jobs = options.jobs or settings.jobs
        self.in_flight = asyncio.Semaphore(self.jobs)
        first_poll = options.first_poll or self.provider.first_poll
        self.watch = TaskWatcher(lambda: self.client, self.timeout, first_poll, self.report)
        self.shared = _Shared()
        self.submits = Submitter(journal, lambda: self.client,
                                 Prices.from_lockfile(plan.lockfile, settings.price_ceilings),
                                 options.max_cost,
                                 self.report)
        main_lockfile = project.manifest.lockfile_path
        lockfile_path = shard_path(main_lockfile, options.shard) if options.shard else (
            main_lockfile)
        self.lock = LockfileFlusher(
            lockfile_path, plan.lockfile.entries, journal, options.lock_flush_interval,
            warn=lambda message: self.report(BuildEvent("warning", lockfile_path.name,
                                                        message)),
            only_recorded=options.shard is not None)
        self.results = Results(
            self.root, self.provider, plan.provider, (self.cache, journal, self.digests),
            self.lock, lambda: self.client, self.report,
            lambda: self.submits.after_submits(self.watch.polls.typical or 0.0))
        self.requests = Requests(self.root, self.provider, self.cache, lambda: self.client,
                                 self.results.dependency_urls, self.report)
        self.takes = TakeFlow(self)
        self.team: TeamFlow | None = None
        if context.remote is not None:
            remote = TeamRemote(context.remote, lambda message: self.report(
                BuildEvent("warning", "remote", message)))
            self.results.team = remote
            self.team = TeamFlow(remote, self.provider.api_key, self.cache, journal,
                                 self.results, self.report)
        self._balance_error: BalanceError | None = None
        self.unanswered: tuple[str, ...] = ()
        """Images whose submit, sent by an earlier build, never had its answer journaled."""

    @property
    def client(self) -> See2AIClient:
        """The HTTP client, opened on first use (a restore from the cache needs none,
        and importing httpx alone takes a fifth of a second)."""
        if self._client is None:
            jobs = self.options.jobs or self.project.manifest.settings.jobs
            self._client = self.provider.open_client(
                emulator=self.context.emulator, max_connections=min(POOL_CONNECTIONS, jobs * 2))
            self._client.on_retry = self._retrying
        return self._client

    def _retrying(self, message: str, delay: float) -> None:
        """A retry is a ``-v`` line; a wait of LONG_WAIT seconds or more is said always."""
        self.report(BuildEvent("retry", "api", message))
        if delay >= LONG_WAIT:
            self.report(BuildEvent("warning", "api", f"waiting {delay:.0f} s: {message}"))

    async def aclose(self) -> None:
        """Close the HTTP client if it was opened."""
        if self._client is not None:
            await self._client.aclose()

    async def run(self) -> BuildReport:
        """Build every image of the plan; return what happened to each."""
        started = time.monotonic()
        shared = self.shared
        planned = {item.name for item in self.plan.images}
        waited_for = {dep for item in self.plan.images for dep in item.image.dependencies
                      if dep in planned}
        shared.done = {name: asyncio.Event() for name in waited_for}
        self.unanswered = self.journal.settle(self.plan.lockfile.locked_tasks(),
                                              take_intents=self.generate)
        restored = self._restore_from_cache()
        tasks: list[asyncio.Task[None]] = []
        aborted: AuthError | None = None
        stopped = False
        try:
            await self._run_all([i for i in self.plan.images if i.name not in restored], tasks)
        except AuthError as exc:
            aborted = exc
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: keep every answer paid for
            stopped = True
            for task in tasks:  # those started and not ended; gather had done it before
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.submits.finish_sends()
        finally:
            await self.lock.close(None if self.options.shard else self.digests.store)
        if stopped:
            raise self._stopped()
        balance = self._balance_error
        results = tuple(shared.results.get(i.name) or ImageResult(i.name, "skipped", "aborted")
                        for i in self.plan.images)
        counts = self._client.counts if self._client is not None else None
        return BuildReport(
            results, time.monotonic() - started, aborted or balance,
            retries=dict(counts.retries) if counts else {},
            resent_submits=counts.resent_submits if counts else 0,
            unjournaled=tuple((e.name, e.task_id) for e in self.journal.retry_unsaved()),
            unanswered=self.unanswered)

    async def _run_all(self, items: list[ImageStatus], tasks: list[asyncio.Task[None]]) -> None:
        """Run each image's task, at most :data:`LIVE_TASKS` of them started and not
        ended at a time (in plan order, so whatever one waits for started before it):
        100,000 tasks made at once held 100 MB for nothing. The first AuthError stops
        the starting and is raised; ``tasks`` gets each task started."""
        window = asyncio.Semaphore(max(LIVE_TASKS, 4 * self.jobs))
        failed: list[BaseException] = []

        def ended(task: asyncio.Task[None]) -> None:
            window.release()
            if not task.cancelled() and isinstance(task.exception(), AuthError):
                failed.append(task.exception())  # type: ignore[arg-type]

        for item in items:
            await window.acquire()
            if failed:
                break
            task = asyncio.create_task(self._image(item))
            task.add_done_callback(ended)
            tasks.append(task)
        await asyncio.gather(*tasks)

    def _stopped(self) -> BuildStopped:
        """What a stopped build leaves: finished images locked, paid tasks journaled."""
        self.journal.retry_unsaved()
        entries = [entry for _, entry in self.journal.items()]
        finished = sum(1 for r in self.shared.results.values()
                       if r.outcome not in ("failed", "skipped", "up-to-date"))
        return BuildStopped(finished, sum(1 for e in entries if e.paid),
                            tuple(e.name for e in entries if not e.paid))

    def _restore_from_cache(self) -> set[str]:
        """Restore in one pass what the cache holds; return the images done."""
        done = self.results.restore_from_cache(
            [i for i in self.plan.images if i.action == "restore" and i.status != "pick"])
        for name in done:
            result = ImageResult(name, "restored", "from the local cache")
            self.shared.ended(name, result)
            self.report(BuildEvent("finished", name, result.message, result))
        return set(done)

    async def _image(self, item: ImageStatus) -> None:
        try:
            result = await self._run(item)
        except AuthError:
            raise
        except (ImageFailed, ApiError, OSError) as exc:
            submits = self.submits
            if isinstance(exc, BalanceError):
                self._balance_error = exc
                submits.stop(f"not submitted: {exc}")
            message = str(exc)
            if isinstance(exc, Unreachable):  # said in full once, by the first to meet it
                if submits.stop_reason is None:
                    submits.stop("not submitted: the API could not be reached")
                else:
                    message = submits.stop_reason
            if self.options.fail_fast:
                submits.stop("not submitted: --fail-fast after a failure")
            if isinstance(exc, OSError):  # the disk, not the API: full, read-only, permissions
                message = (f"cannot write its files: {exc}; a task already paid for stays "
                           "journaled for the next build")
            result = ImageResult(item.name, "failed", message)
        self.shared.ended(item.name, result)
        self.report(BuildEvent("finished", item.name, result.message, result))

    async def _run(self, item: ImageStatus) -> ImageResult:
        if item.action == "none":
            return ImageResult(item.name, "up-to-date")
        if item.status == "pick":
            return await self.takes.pick(item)
        for dep in item.image.dependencies if self.generate else ():
            # A restore needs no dependency: its own locked result is what it restores.
            if dep in self.shared.done:
                await self.shared.done[dep].wait()
                if self.shared.results[dep].outcome in ("failed", "skipped"):
                    return ImageResult(item.name, "skipped", f"dependency {dep} was not built")
        if item.action == "restore":
            assert item.entry is not None
            try:
                return await self.results.restore(item.image, item.entry, "restored")
            except DownloadError as exc:
                if not self.generate:
                    raise ImageFailed(f"{exc}; run `assetbuild build --force '{item.name}'` "
                                      "to generate it again") from None
                self.report(BuildEvent("warning", item.name, f"cannot restore ({exc}); "
                                       "generating it again"))
                return await self._build(item.image, regenerate=True,
                                         wanted=item.image.takes)
        wanted = item.image.takes
        if item.status == "reroll" and item.entry is not None:
            wanted = item.entry.take_count + item.asked
        return await self._build(item.image, wanted=wanted)

    async def _build(self, image: ResolvedImage, *, regenerate: bool = False,
                     wanted: int = 1) -> ImageResult:
        """Build ``image`` (``wanted`` takes of its spec: more than one goes to the
        take flow), or reuse a result of its spec already paid for."""
        spec = image_spec(image, self.plan.provider, self.results.dependency_urls(image))
        digest = spec_hash(spec)
        current = self.lock.entries.get(image.name)
        fresh = self.options.force or regenerate
        same = current is not None and current.spec_hash == digest and not fresh
        if wanted > 1 or (same and current is not None and current.takes):
            return await self.takes.build(image, spec, digest, current if same else None,
                                          wanted, fresh=fresh)
        if same and current is not None:
            return await self.results.restore(image, current, "up-to-date")
        known = await self.known(image.name, digest, digest, fresh=fresh)
        if known is not None:
            entry, outcome, journaled = known
            return await self.results.restore(image, entry, outcome, journaled_spec=journaled)
        try:
            paid = await self.pay(image, digest, digest, fresh=fresh)
            if isinstance(paid, LockEntry):  # another machine published it meanwhile
                return await self.results.restore(image, paid, "remote")
            status, request, resumed = paid
            return await self._finish(image, spec, digest, status, request, resumed)
        finally:  # however it ended: a poll that failed holds no reservation
            self.submits.release(digest)

    async def known(self, name: str, key: str, digest: str, *, fresh: bool
                    ) -> tuple[LockEntry, Outcome, str | None] | None:
        """A result already paid for under ``key`` (a take of spec ``digest``): the
        cache's, the team's or the journal's (with the journal's key, to drop once
        locked); with ``fresh`` (--force), only what the journal holds is dropped."""
        if not fresh:
            cached = self.cache.entry(key)
            if cached is not None:
                return LockEntry.from_toml(cached), "cached", None
            if self.team is not None and (shared := await self.team.entry(name, key, digest)):
                return shared, "remote", None
        journaled = self.journal.get(key)
        if journaled is None or journaled.state != "done":
            return None
        if fresh:  # a result seen already: not a new one
            self.journal.forget(key)
            return None
        return LockEntry.from_toml(journaled.lock_entry), "resumed", key

    async def pay(self, image: ResolvedImage, key: str, digest: str, *, fresh: bool
                  ) -> tuple[TaskStatus, dict[str, Any], bool] | LockEntry:
        """The task of ``key`` polled to its end: a journaled one resumed, another
        machine's followed, else a new one submitted; or the result, if another machine
        published it meanwhile. The caller releases the reservation of ``key``."""
        journaled = self.journal.get(key)
        async with self.in_flight:  # a lease is taken only just before a submit
            if journaled is None and self.team is not None and not fresh:
                followed = await self.team.follow(image, key, digest,
                                                  lambda: self.requests.of(image))
                if isinstance(followed, LockEntry):
                    return followed
                journaled = followed
            return await self._submit_or_resume(image, key, journaled)

    async def _submit_or_resume(
        self, image: ResolvedImage, digest: str, journaled: Any
    ) -> tuple[TaskStatus, dict[str, Any], bool]:
        if journaled is not None and not valid_task_id(journaled.task_id):
            self.report(BuildEvent("warning", image.name, "the journal holds a task id that "
                                   f"cannot be polled ({journaled.task_id[:60]!r}); dropped"))
            self.journal.forget(digest)
            journaled = None
        if journaled is not None:
            self.report(BuildEvent("resumed", image.name, journaled.task_id))
            try:
                status = await self.watch.until_done(image.name, journaled.task_id,
                                                     journaled.submitted_at, resumed=True)
                return status, journaled.request, True
            except TaskGone as exc:
                self.journal.forget(digest)
                self.report(BuildEvent("warning", image.name, f"the API lost task "
                                       f"{journaled.task_id} ({exc}); it is submitted anew, "
                                       "which the API charges again if it had charged it"))
        submits = self.submits
        if not submits.stop_reason and not self.lock_intact():
            submits.stop("not submitted: this build's lock file was deleted while it ran (was "
                         ".assetbuild/ removed?), so another build may be running beside it")
        await submits.until_priced(image.resolution)
        if submits.stop_reason:
            raise ImageFailed(submits.stop_reason)
        submits.reserve(digest, image.resolution)
        request = await self.requests.of(image)
        task = await submits.send(digest, image.name, request)
        if self.team is not None:
            await self.team.submitted(digest, task.task_id)
        try:
            return (await self.watch.until_done(image.name, task.task_id, time.time()),
                    request, False)
        except TaskGone as exc:
            self.journal.forget(digest)
            raise ImageFailed(f"the API lost task {task.task_id} right after accepting it "
                              f"({exc}); the next build submits it anew (and pays again if "
                              "the API had charged it)") from None

    async def _finish(self, image: ResolvedImage, spec: dict[str, Any], digest: str,
                      status: TaskStatus, request: dict[str, Any], resumed: bool) -> ImageResult:
        await self.ended(image, digest, status)
        result = await self.results.finish(image, spec, digest, status, request, resumed)
        if self.team is not None:  # published: the lease has done its work
            await self.team.ended(digest)
        return result

    async def ended(self, image: ResolvedImage, key: str, status: TaskStatus) -> None:
        """A task of ``key`` at its end: its price paid; a failed one forgotten, its lease
        released, and ImageFailed raised."""
        self.submits.release(key)
        self.submits.paid(image.resolution, status.cost_points)
        if status.state == "failed" or not status.result_urls:
            self.journal.forget(key)
            if self.team is not None:  # another machine may try it now
                await self.team.ended(key)
            reason = status.error or f"the task ended as {status.raw_state!r} with no result"
            raise ImageFailed(f"task {status.task_id} failed: {reason}")
