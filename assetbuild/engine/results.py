"""What becomes of a result: a finished task's downloads or a locked entry's files put
in place, derived files made, the result cached, its journal entry marked done, and
its lock entry recorded. The file work runs in threads while submits are in flight,
so the event loop stays free to journal their answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from assetbuild._types import STATE_DIR_NAME
from assetbuild.hashing import locked_spec, sha256_text, spec_hash, take_key
from assetbuild.journal import JournalUnwritable
from assetbuild.lockfile import LockEntry, OutputRecord
from assetbuild.outcomes import BuildEvent, ImageResult, Outcome, Reporter
from assetbuild.outputs import (
    derive_outputs,
    place_download,
    restore_many_from_cache,
    restore_outputs,
)
from assetbuild.plan import ImageStatus
from assetbuild.spec import image_spec

if TYPE_CHECKING:
    from pathlib import Path

    from assetbuild.cache import ResultCache
    from assetbuild.journal import Journal
    from assetbuild.lockflush import LockfileFlusher
    from assetbuild.providers import Provider
    from assetbuild.providers.answers import TaskStatus
    from assetbuild.providers.see2ai import See2AIClient
    from assetbuild.remote import TeamRemote
    from assetbuild.resolve import ResolvedImage
    from assetbuild.state import FileDigests


class Results:
    """Puts one build's results in place and records them."""

    def __init__(self, root: Path, provider: Provider, plan_provider: str,
                 stores: tuple[ResultCache, Journal, FileDigests], lock: LockfileFlusher,
                 client: Callable[[], See2AIClient], report: Reporter,
                 before_download: Callable[[], Any]) -> None:
        self.root, self.provider, self.plan_provider = root, provider, plan_provider
        self.cache, self.journal, self.digests = stores
        self.lock = lock
        self._client = client
        self.report = report
        self._before_download = before_download
        """Awaited before each download (lets submits in flight go first)."""
        self.team: TeamRemote | None = None
        """The team's remote: restores read it, paid results are published to it."""

    def restore_from_cache(self, items: Sequence[ImageStatus]) -> list[str]:
        """Restore, many at a time, the outputs of ``items`` the cache holds and record
        them; return the names of the images restored.

        One plain pass instead of an asyncio task per image: restoring 10,000 deleted
        outputs is file work, not network work (and no submit is in flight yet).
        """
        items = [i for i in items if i.entry is not None]
        work = [(i.image.output_paths(len(i.entry.outputs)), i.entry.outputs)  # type: ignore[union-attr]
                for i in items]
        done: list[str] = []
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
                entry = replace(entry, outputs=tuple(
                    OutputRecord(p, r.sha256, r.bytes) for p, r in zip(paths, records,
                                                                       strict=True)))
            if not self._derived_current(item.image, entry):
                entry = self._with_derived(entry, derive_outputs(self.root, item.image))
            self.lock.record(item.name, entry)
            done.append(item.name)
        return done

    async def restore(self, image: ResolvedImage, entry: LockEntry,
                      outcome: Outcome,
                      journaled_spec: str | tuple[str, ...] | None = None) -> ImageResult:
        """Put ``entry``'s outputs in place (cache, else its URLs) and record it;
        ``journaled_spec``: the journal's entry for it is dropped once the lockfile
        holds it."""
        paths = image.output_paths(len(entry.outputs))
        if self.team is not None:  # the local cache, then the remote, then the locked URLs
            await self.team.fill(entry, self.cache)
        records = await restore_outputs(self.root, paths, entry.outputs, entry.result_urls,
                                        self.cache, self._client)
        for record in records:
            self.digests.remember(self.root / record.path, record.sha256)
        entry = replace(entry, outputs=records)
        if not self._derived_current(image, entry):
            # Pillow's work in a thread; the digest table stays with the event loop.
            entry = self._with_derived(
                entry, await asyncio.to_thread(derive_outputs, self.root, image))
        self.lock.record(image.name, entry, finished_spec=journaled_spec)
        return ImageResult(image.name, outcome, "from the local cache or the locked URLs")

    async def finish(self, image: ResolvedImage, spec: dict[str, Any], digest: str,
                     status: TaskStatus, request: dict[str, Any], resumed: bool) -> ImageResult:
        """Download a task that succeeded, and cache, journal and lock its result."""
        entry = await self.keep_task(image, spec, (digest, 1), status, request)
        self.lock.record(image.name, entry, finished_spec=digest)
        return ImageResult(image.name, "resumed" if resumed else "built",
                           f"task {status.task_id}", status.cost_points or 0, status.warnings)

    async def keep_task(self, image: ResolvedImage, spec: dict[str, Any],
                        take: tuple[str, int], status: TaskStatus,
                        request: dict[str, Any]) -> LockEntry:
        """Download a task that succeeded (take ``take[1]`` of spec ``take[0]``), and
        cache, journal and publish its result; return its lock entry. Take 1 goes to
        the outputs; a later take to the state folder, then into the cache."""
        digest, number = take
        records = await self._download_results(image, status, staged=number > 1)
        provider, locked_digest = self.provider.locks_as(status.emulated), digest
        if provider != self.plan_provider:  # placeholders: lock them as such
            spec = image_spec(image, provider, self.dependency_urls(image))
            locked_digest = spec_hash(spec)
        entry = LockEntry(
            spec_hash=locked_digest, provider=provider, task_id=status.task_id,
            state=status.raw_state or "completed", model=status.model,
            result_urls=status.result_urls, request=request, outputs=records,
            spec=locked_spec(spec), cost_points=status.cost_points, cost_time=status.cost_time,
            input_tokens=status.input_tokens, output_tokens=status.output_tokens,
            total_tokens=status.total_tokens, warnings=status.warnings)
        if image.derived_outputs() and number == 1:  # Pillow's work, in a thread
            entry = self._with_derived(
                entry, await asyncio.to_thread(derive_outputs, self.root, image))
        files = self._files(entry, staged=number > 1)
        table = entry.to_toml()
        key, locked_key = take_key(digest, number), take_key(locked_digest, number)
        kept = await asyncio.to_thread(self._keep, locked_key, table, files)
        if kept is not None:
            self.report(BuildEvent("warning", image.name, kept))
        # On the event loop, as every journal write: one writer, so an answer's write
        # never waits for a lock another thread holds (SQLite's busy wait is in ms).
        with contextlib.suppress(JournalUnwritable):  # kept in memory; retried at the end
            self.journal.done(key, table)
        if self.team is not None:
            await self.team.publish(locked_key, table, [(path, sha) for path, sha, _ in files])
        if number > 1 and kept is None:
            for path, _, _ in files:
                path.unlink(missing_ok=True)
        for warning in status.warnings if number == 1 else ():  # said once per spec
            self.report(BuildEvent("warning", image.name, warning))
        return entry

    def dependency_urls(self, image: ResolvedImage) -> dict[str, str | None]:
        """The first result URL of each image ``image`` references, as locked now."""
        return {name: entry.first_url if (entry := self.lock.entries.get(name)) else None
                for name in image.dependencies}

    def _files(self, entry: LockEntry, *, staged: bool) -> list[tuple[Path, str, int]]:
        """(file, sha256, size) of an entry's results where they were put."""
        records = entry.outputs if staged else (*entry.outputs, *entry.derived)
        return [(self._staged(r.path, r.sha256) if staged else self.root / r.path,
                 r.sha256, r.bytes) for r in records]

    def _staged(self, path: str, sha256: str) -> Path:
        """Where a take that is not the output waits for the cache: the state folder."""
        return self.root / STATE_DIR_NAME / "takes" / f"{sha256}{PurePosixPath(path).suffix}"

    async def _download_results(self, image: ResolvedImage, status: TaskStatus,
                                *, staged: bool = False) -> tuple[OutputRecord, ...]:
        records = []
        for path, url in zip(image.output_paths(len(status.result_urls)), status.result_urls,
                             strict=True):
            # The download makes its folder if missing.
            destination = self.root / path if not staged else self._staged(path, url_key(url))
            await self._before_download()
            download = await self._client().download(url, destination)
            sha, size = await asyncio.to_thread(place_download, download, destination)
            if staged:  # named by its digest, as _files finds it
                await asyncio.to_thread(destination.replace, self._staged(path, sha))
            else:
                self.digests.remember(destination, sha)
            records.append(OutputRecord(path, sha, size))
        return tuple(records)

    def _keep(self, locked_key: str, table: dict[str, Any],
              files: list[tuple[Path, str, int]]) -> str | None:
        """Put a result in the cache (SQLite and file copies: run in a thread); return a
        warning if the cache refused it."""
        try:
            self.cache.put(locked_key, table, files[:len(table["outputs"])])
        except (sqlite3.Error, OSError) as exc:  # the result is on disk and in the lockfile
            return f"not kept in the result cache: {exc}"
        return None

    def _derived_current(self, image: ResolvedImage, entry: LockEntry) -> bool:
        """Whether the entry's derived files are the ones asked for, with their bytes."""
        expected = [path for path, _, _ in image.derived_outputs()]
        return [r.path for r in entry.derived] == expected and all(
            self.digests.digest(self.root / r.path) == r.sha256 for r in entry.derived)

    def _with_derived(self, entry: LockEntry, derived: tuple[OutputRecord, ...]) -> LockEntry:
        for record in derived:
            self.digests.remember(self.root / record.path, record.sha256)
        return replace(entry, derived=derived)


def url_key(url: str) -> str:
    """A file name for a download in progress, from its URL."""
    return sha256_text(url)[:32]
