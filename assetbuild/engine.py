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
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from assetbuild.cache import ResultCache
from assetbuild.cost import Prices
from assetbuild.errors import (
    ApiError,
    AssetbuildError,
    AuthError,
    BalanceError,
    DownloadError,
    TaskGone,
    Unreachable,
)
from assetbuild.hashing import locked_spec, spec_hash
from assetbuild.journal import Journal, JournalUnwritable
from assetbuild.lockfile import LockEntry, OutputRecord
from assetbuild.lockflush import LockfileFlusher
from assetbuild.outcomes import (
    BuildEvent,
    BuildOptions,
    BuildReport,
    ImageResult,
    Outcome,
    Reporter,
)
from assetbuild.outputs import (
    derive_outputs,
    place_download,
    restore_many_from_cache,
    restore_outputs,
)
from assetbuild.plan import ImageStatus, Plan, image_spec
from assetbuild.polling import PollSchedule
from assetbuild.project import Project, image_request
from assetbuild.providers.answers import valid_task_id
from assetbuild.resolve import ResolvedImage
from assetbuild.shard import shard_path
from assetbuild.state import FileDigests

if TYPE_CHECKING:
    from assetbuild.providers.answers import TaskStatus
    from assetbuild.providers.see2ai import See2AIClient

class ImageFailed(AssetbuildError):
    """One image could not be built; the build goes on with the others."""


@dataclass
class _Shared:
    """State one build's image tasks share (owned by the event loop thread)."""

    results: dict[str, ImageResult] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    stop_reason: str | None = None


LONG_WAIT = 10.0
"""Seconds of a retry's wait (a 429's Retry-After, a long backoff) said even without -v."""


class Builder:
    """Runs one build of a plan against one client."""

    def __init__(self, project: Project, plan: Plan, open_client: Callable[[], See2AIClient],
                 cache: ResultCache, journal: Journal, digests: FileDigests,
                 options: BuildOptions, reporter: Reporter | None = None,
                 api_scope: str = "", generate: bool = True,
                 lock_intact: Callable[[], bool] | None = None) -> None:
        self.project, self.plan = project, plan
        self._open_client = open_client
        self._client: See2AIClient | None = None
        self.cache, self.journal, self.digests = cache, journal, digests
        self.options = options
        self.report = reporter or (lambda event: None)
        self.api_scope = api_scope
        self.generate = generate
        self.lock_intact = lock_intact or (lambda: True)
        """Whether this build still holds its build lock (checked before each submit)."""
        self.root = project.root
        settings = project.manifest.settings
        self.timeout = settings.timeout
        self.in_flight = asyncio.Semaphore(options.jobs or settings.jobs)
        first_poll = options.first_poll or (0.05 if plan.provider == "emulator" else 0.5)
        self.polls = PollSchedule(initial=first_poll)
        self.shared = _Shared()
        self.prices = Prices.from_lockfile(plan.lockfile)
        self.spent = 0
        self.reserved = 0.0
        main_lockfile = project.manifest.lockfile_path
        lockfile_path = shard_path(main_lockfile, options.shard) if options.shard else (
            main_lockfile)
        self.lock = LockfileFlusher(
            lockfile_path, plan.lockfile.entries, journal, options.lock_flush_interval,
            warn=lambda message: self.report(BuildEvent("warning", lockfile_path.name,
                                                        message)),
            only_recorded=options.shard is not None)
        self._warned_states: set[str] = set()
        self._balance_error: BalanceError | None = None
        self._reservations: dict[str, float] = {}
        """Price set aside per spec hash for each task submitted and not yet finished."""
        self._submitting = 0
        self._submits_idle = asyncio.Event()

    @property
    def client(self) -> See2AIClient:
        """The HTTP client, opened on first use (a restore from the cache needs none,
        and importing httpx alone takes a fifth of a second)."""
        if self._client is None:
            self._client = self._open_client()
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
        shared.done = {item.name: asyncio.Event() for item in self.plan.images}
        self._drop_settled_tasks()
        restored = self._restore_from_cache()
        tasks = [asyncio.create_task(self._image(item)) for item in self.plan.images
                 if item.name not in restored]
        aborted: AuthError | None = None
        try:
            await asyncio.gather(*tasks)
        except AuthError as exc:
            aborted = exc
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.lock.close(None if self.options.shard else self.digests.store)
        balance = self._balance_error
        results = tuple(shared.results.get(i.name) or ImageResult(i.name, "skipped", "aborted")
                        for i in self.plan.images)
        counts = self._client.counts if self._client is not None else None
        return BuildReport(
            results, time.monotonic() - started, aborted or balance,
            retries=dict(counts.retries) if counts else {},
            resent_submits=counts.resent_submits if counts else 0,
            unjournaled=tuple((e.name, e.task_id) for e in self.journal.retry_unsaved()))

    def _drop_settled_tasks(self) -> None:
        """Forget journaled tasks the lockfile already holds (a build that died after
        writing the lockfile but before dropping them), so none is "resumed" again."""
        locked = {(e.spec_hash, e.task_id) for e in self.plan.lockfile.entries.values()}
        settled = [digest for digest, entry in self.journal.items()
                   if (digest, entry.task_id) in locked]
        if settled:
            self.journal.forget(*settled)

    def _restore_from_cache(self) -> set[str]:
        """Restore, many at a time, the outputs the cache holds; return the images done.

        One plain pass instead of an asyncio task per image: restoring 10,000 deleted
        outputs is file work, not network work.
        """
        items = [i for i in self.plan.images if i.action == "restore" and i.entry is not None]
        work = [(i.image.output_paths(len(i.entry.outputs)), i.entry.outputs)  # type: ignore[union-attr]
                for i in items]
        done: set[str] = set()
        prefix = f"{self.root}{os.sep}"  # digest keys as the plan makes them
        for item, (paths, records), stats in zip(
                items, work, restore_many_from_cache(self.root, work, self.cache), strict=True):
            if stats is None:
                continue
            assert item.entry is not None
            for path, record, stat in zip(paths, records, stats, strict=True):
                self.digests.remember(prefix + path, record.sha256, stat)
            entry = item.entry
            if any(path != record.path for path, record in zip(paths, records, strict=True)):
                entry = _with_outputs(entry, tuple(
                    OutputRecord(p, r.sha256, r.bytes) for p, r in zip(paths, records,
                                                                       strict=True)))
            if not self._derived_current(item.image, entry):
                entry = self._with_derived(entry, derive_outputs(self.root, item.image))
            self.lock.record(item.name, entry)
            result = ImageResult(item.name, "restored", "from the local cache")
            self.shared.results[item.name] = result
            self.shared.done[item.name].set()
            self.report(BuildEvent("finished", item.name, result.message, result))
            done.add(item.name)
        return done

    async def _image(self, item: ImageStatus) -> None:
        try:
            result = await self._run(item)
        except AuthError:
            raise
        except (ImageFailed, ApiError, OSError) as exc:
            if isinstance(exc, BalanceError):
                self._balance_error = exc
                self.shared.stop_reason = f"not submitted: {exc}"
            message = str(exc)
            if isinstance(exc, Unreachable):  # said in full once, by the first to meet it
                if self.shared.stop_reason is None:
                    self.shared.stop_reason = "not submitted: the API could not be reached"
                else:
                    message = self.shared.stop_reason
            if self.options.fail_fast and self.shared.stop_reason is None:
                self.shared.stop_reason = "not submitted: --fail-fast after a failure"
            if isinstance(exc, OSError):  # the disk, not the API: full, read-only, permissions
                message = (f"cannot write its files: {exc}; a task already paid for stays "
                           "journaled for the next build")
            result = ImageResult(item.name, "failed", message)
        self.shared.results[item.name] = result
        self.shared.done[item.name].set()
        self.report(BuildEvent("finished", item.name, result.message, result))

    async def _run(self, item: ImageStatus) -> ImageResult:
        if item.action == "none":
            return ImageResult(item.name, "up-to-date")
        for dep in item.image.dependencies if self.generate else ():
            # A restore needs no dependency: its own locked result is what it restores.
            if dep in self.shared.done:
                await self.shared.done[dep].wait()
                if self.shared.results[dep].outcome in ("failed", "skipped"):
                    return ImageResult(item.name, "skipped", f"dependency {dep} was not built")
        if item.action == "restore":
            assert item.entry is not None
            try:
                return await self._restore(item.image, item.entry, "restored")
            except DownloadError as exc:
                if not self.generate:
                    raise ImageFailed(f"{exc}; run `assetbuild build --force '{item.name}'` "
                                      "to generate it again") from None
                self.report(BuildEvent("warning", item.name, f"cannot restore ({exc}); "
                                       "generating it again"))
                return await self._build(item.image, regenerate=True)
        return await self._build(item.image)

    async def _restore(self, image: ResolvedImage, entry: LockEntry,
                       outcome: Outcome, journaled_spec: str | None = None) -> ImageResult:
        """Put ``entry``'s outputs in place (cache, else its URLs) and record it;
        ``journaled_spec``: the journal's entry for it is dropped once the lockfile
        holds it."""
        paths = image.output_paths(len(entry.outputs))
        records = await restore_outputs(self.root, paths, entry.outputs, entry.result_urls,
                                        self.cache, lambda: self.client)
        for record in records:
            self.digests.remember(self.root / record.path, record.sha256)
        entry = _with_outputs(entry, records)
        if not self._derived_current(image, entry):
            # Pillow's work in a thread; the digest table stays with the event loop.
            entry = self._with_derived(
                entry, await asyncio.to_thread(derive_outputs, self.root, image))
        self.lock.record(image.name, entry, finished_spec=journaled_spec)
        return ImageResult(image.name, outcome, "from the local cache or the locked URLs")

    async def _build(self, image: ResolvedImage, *, regenerate: bool = False) -> ImageResult:
        dep_urls = {d: _first_url(self.lock.entries.get(d)) for d in image.dependencies}
        spec = image_spec(image, self.plan.provider, dep_urls)
        digest = spec_hash(spec)
        current = self.lock.entries.get(image.name)
        if not (self.options.force or regenerate):
            if current is not None and current.spec_hash == digest:
                return await self._restore(image, current, "up-to-date")
            cached = self.cache.entry(digest)
            if cached is not None:
                return await self._restore(image, LockEntry.from_toml(cached), "cached")
        journaled = self.journal.get(digest)
        if journaled is not None and journaled.state == "done":
            if self.options.force or regenerate:  # a result seen already: not a new one
                self.journal.forget(digest)
                journaled = None
            else:
                entry = LockEntry.from_toml(journaled.lock_entry)
                return await self._restore(image, entry, "resumed", journaled_spec=digest)
        try:
            async with self.in_flight:
                status, request, resumed = await self._submit_or_resume(image, digest,
                                                                        journaled)
            return await self._finish(image, spec, digest, status, request, resumed)
        finally:  # however it ended: a poll that failed holds no reservation
            self.reserved -= self._reservations.pop(digest, 0.0)

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
                status = await self._poll(image.name, journaled.task_id,
                                          journaled.submitted_at, resumed=True)
                return status, journaled.request, True
            except TaskGone:
                self.journal.forget(digest)
        if not self.shared.stop_reason and not self.lock_intact():
            self.shared.stop_reason = (
                "not submitted: this build's lock file was deleted while it ran (was "
                ".assetbuild/ removed?), so another build may be running beside it")
        await self._until_priced(image.resolution)
        if self.shared.stop_reason:
            raise ImageFailed(self.shared.stop_reason)
        self._reserve(digest, image.resolution)
        request = image_request(image, await self._input_urls(image))
        self._submitting += 1
        self._submits_idle.clear()
        try:
            task = await self.client.submit(request)
        except BaseException:
            self.reserved -= self._reservations.pop(digest, 0.0)
            raise
        finally:
            self._submitting -= 1
            if not self._submitting:
                self._submits_idle.set()
        try:
            self.journal.submitted(digest, image.name, task.task_id, request)
        except JournalUnwritable as exc:
            self.shared.stop_reason = f"not submitted: the journal cannot be written ({exc})"
            self.report(BuildEvent("warning", image.name, f"task {task.task_id} could not be "
                                   f"journaled ({exc}); it is polled to the end and nothing "
                                   "new is submitted"))
        self.report(BuildEvent("submitted", image.name, task.task_id))
        try:
            return await self._poll(image.name, task.task_id, time.time()), request, False
        except TaskGone as exc:
            self.journal.forget(digest)
            raise ImageFailed(f"the API lost task {task.task_id} ({exc})") from None

    async def _after_submits(self, at_most: float = 0.05) -> None:
        """Let submits in flight go first (for up to ``at_most`` seconds) when tasks
        take a while: a batch of tasks that ends together then has its slots' next
        tasks running on the API before its downloads take the connections. (When
        tasks take no time, there is nothing to win and the wait costs CPU.)"""
        if self._submitting and (self.polls.typical or 0.0) >= 0.5:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._submits_idle.wait(), at_most)

    async def _until_priced(self, resolution: str) -> None:
        """Under --max-cost, while no price is known at ``resolution``, keep one task in
        flight: wait until it ends and teaches the price (or ends without one)."""
        if self.options.max_cost is None:
            return
        while (self.prices.of(resolution) is None and self._reservations
               and not self.shared.stop_reason):
            await asyncio.sleep(0.05)

    def _reserve(self, digest: str, resolution: str) -> None:
        """Set aside the expected price of a submit (a conservative ceiling while none
        is known), or refuse it past --max-cost."""
        price = self.prices.at_most(resolution)
        limit = self.options.max_cost
        if limit is not None and self.spent + self.reserved + price > limit:
            self.shared.stop_reason = f"not submitted: --max-cost {limit} reached"
            raise ImageFailed(self.shared.stop_reason)
        self._reservations[digest] = price
        self.reserved += price

    async def _input_urls(self, image: ResolvedImage) -> list[str]:
        urls = []
        for ref in image.references:
            if ref.kind == "url":
                urls.append(ref.value)
            elif ref.kind == "image":
                url = _first_url(self.lock.entries.get(ref.value))
                if url is None:
                    raise ImageFailed(f"image:{ref.value} has no result URL")
                urls.append(url)
            else:
                urls.append(await self._uploaded(ref.value, ref.sha256 or ""))
        return urls

    async def _uploaded(self, path: str, digest: str) -> str:
        url = self.cache.upload_url(self.api_scope, digest)
        if url is None:
            url = await self.client.upload(self.root / path)
            self.cache.remember_upload(self.api_scope, digest, url)
        return url

    async def _poll(self, name: str, task_id: str, submitted_at: float, *,
                    resumed: bool = False) -> TaskStatus:
        """Poll until the task ends. The image's timeout counts from this build's first
        poll, so a resumed task gets a fresh one; a resumed task is polled at once (its
        usual duration has most likely passed while no build watched it)."""
        started = time.time()
        polls = 0
        while True:
            age, waited = time.time() - submitted_at, time.time() - started
            if waited > self.timeout:
                raise ImageFailed(f"task {task_id} still running after {self.timeout:g} s; "
                                  "the next build resumes polling it")
            delay = 0.0 if resumed and polls == 0 else self.polls.delay(age, polls)
            if not await self.polls.wait(delay):
                continue  # the first task finished: wait on the learned schedule instead
            try:  # a status answer that trickles must not outlast the image's timeout
                async with asyncio.timeout(max(self.timeout - waited, 1.0)):
                    status = await self.client.status(task_id)
            except TimeoutError:
                raise ImageFailed(f"task {task_id} still running after {self.timeout:g} s; "
                                  "the next build resumes polling it") from None
            polls += 1
            if status.state != "pending":
                reported = status.cost_time
                duration = reported / 1000 if reported is not None else time.time() - submitted_at
                self.polls.observe(duration)
                return status
            self._warn_unknown_state(name, status.raw_state)

    def _warn_unknown_state(self, name: str, raw_state: str) -> None:
        from assetbuild.providers.answers import normalise_state

        unknown = raw_state and normalise_state(raw_state) is None
        if unknown and raw_state not in self._warned_states:
            self._warned_states.add(raw_state)
            self.report(BuildEvent("warning", name, f"unknown task state {raw_state!r}; "
                                   "treating it as still running"))

    async def _finish(self, image: ResolvedImage, spec: dict[str, Any], digest: str,
                      status: TaskStatus, request: dict[str, Any], resumed: bool) -> ImageResult:
        self.reserved -= self._reservations.pop(digest, 0.0)
        if status.cost_points is not None:
            self.spent += status.cost_points
            self.prices.learn(image.resolution, status.cost_points)
        if status.state == "failed" or not status.result_urls:
            self.journal.forget(digest)
            reason = status.error or f"the task ended as {status.raw_state!r} with no result"
            raise ImageFailed(f"task {status.task_id} failed: {reason}")
        records = []
        for path, url in zip(image.output_paths(len(status.result_urls)), status.result_urls,
                             strict=True):
            destination = self.root / path  # the download makes its folder if missing
            await self._after_submits()
            sha, size = place_download(await self.client.download(url, destination), destination)
            self.digests.remember(destination, sha)
            records.append(OutputRecord(path, sha, size))
        provider, locked_digest = self.plan.provider, digest
        if status.emulated and provider != "emulator":  # placeholders: lock them as such
            provider = "emulator"
            spec = image_spec(image, provider, {d: _first_url(self.lock.entries.get(d))
                                                for d in image.dependencies})
            locked_digest = spec_hash(spec)
        entry = LockEntry(
            spec_hash=locked_digest, provider=provider, task_id=status.task_id,
            state=status.raw_state or "completed", model=status.model,
            result_urls=status.result_urls, request=request, outputs=tuple(records),
            spec=locked_spec(spec), cost_points=status.cost_points, cost_time=status.cost_time,
            input_tokens=status.input_tokens, output_tokens=status.output_tokens,
            total_tokens=status.total_tokens, warnings=status.warnings)
        if image.derived_outputs():  # Pillow's work, in a thread
            entry = self._with_derived(
                entry, await asyncio.to_thread(derive_outputs, self.root, image))
        table = entry.to_toml()
        try:
            self.cache.put(locked_digest, table, [(self.root / r.path, r.sha256, r.bytes)
                                                  for r in records])
        except (sqlite3.Error, OSError) as exc:  # the result is on disk and in the lockfile
            self.report(BuildEvent("warning", image.name, f"not kept in the result cache: {exc}"))
        with contextlib.suppress(JournalUnwritable):  # kept in memory; retried at the end
            self.journal.done(digest, table)
        self.lock.record(image.name, entry, finished_spec=digest)
        for warning in status.warnings:
            self.report(BuildEvent("warning", image.name, warning))
        return ImageResult(image.name, "resumed" if resumed else "built",
                           f"task {status.task_id}", status.cost_points or 0, status.warnings)

    def _derived_current(self, image: ResolvedImage, entry: LockEntry) -> bool:
        """Whether the entry's derived files are the ones asked for, with their bytes."""
        expected = [path for path, _, _ in image.derived_outputs()]
        return [r.path for r in entry.derived] == expected and all(
            self.digests.digest(self.root / r.path) == r.sha256 for r in entry.derived)

    def _with_derived(self, entry: LockEntry, derived: tuple[OutputRecord, ...]) -> LockEntry:
        for record in derived:
            self.digests.remember(self.root / record.path, record.sha256)
        return replace(entry, derived=derived)


def _first_url(entry: LockEntry | None) -> str | None:
    return entry.result_urls[0] if entry and entry.result_urls else None


def _with_outputs(entry: LockEntry, outputs: tuple[OutputRecord, ...]) -> LockEntry:
    return replace(entry, outputs=outputs)

