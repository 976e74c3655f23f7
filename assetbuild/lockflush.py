"""The lockfile during a build: kept in memory, written now and then, once at the end.

Rewriting a 10,000-entry lockfile after every image would make a build quadratic, so
the file is written in a thread at most about once a second (and never more than a
fifth of the time), one write at a time, and once more when the build ends. Nothing
is at risk in between: the journal holds every finished image until a written
lockfile does, and only then are those journal entries dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assetbuild.errors import AssetbuildError
from assetbuild.lockfile import LockEntry, LockfileWriter

if TYPE_CHECKING:
    from assetbuild.journal import Journal
    from assetbuild.state import StateStore


class LockfileFlusher:
    """One build's lock entries, and when they reach the file."""

    def __init__(self, path: Path, entries: Mapping[str, LockEntry], journal: Journal,
                 interval: float, warn: Callable[[str], None],
                 only_recorded: bool = False) -> None:
        self.path = path
        self.entries = dict(entries)
        """The lock entries by image name, as the build knows them."""
        self._recorded: set[str] | None = set() if only_recorded else None
        """With ``only_recorded`` (a shard's partial lockfile): the images this build
        recorded, the only ones its file holds."""
        self._journal = journal
        self._interval = interval
        self._warn = warn
        self._writer = LockfileWriter()
        self._dirty = False
        self._finished: list[str] = []
        """Spec hashes of tasks finished since the last write: the journal's to drop."""
        self._last_write = time.monotonic()
        self._last_took = 0.0
        self._writing: asyncio.Task[None] | None = None
        self._written_in_background = False

    def record(self, name: str, entry: LockEntry,
               finished_spec: str | tuple[str, ...] | None = None) -> None:
        """Set an image's entry (``finished_spec``: the journal key of the task that
        made it, or of each of its takes, dropped from the journal once a written
        lockfile holds it)."""
        if isinstance(finished_spec, str):
            self._finished.append(finished_spec)
        elif finished_spec:
            self._finished.extend(finished_spec)
        current = self.entries.get(name)
        if self._recorded is not None and name not in self._recorded:
            self._recorded.add(name)
            self._dirty = True
        elif current is entry or current == entry:
            return  # a restore to the same paths changes nothing in the lockfile
        self.entries[name] = entry
        self._dirty = True
        self._write_soon()

    async def close(self, store: StateStore | None) -> None:
        """Wait for a write in progress, then write the file if anything changed
        (``store``: refresh the parsed copy there, so the next check parses nothing).
        A failing write is an AssetbuildError that says nothing was lost."""
        if self._writing is not None:
            await asyncio.wait([self._writing])
        # Written in the background only: once more, to refresh the parsed copy.
        if not self._dirty and not (store is not None and self._written_in_background):
            return
        try:
            self._writer.write(self.path, self._written(), store)
        except OSError as exc:
            raise AssetbuildError(
                f"cannot write {self.path}: {exc.strerror or exc}. Every finished image is "
                "kept in the journal and the result cache: run the build again once the "
                "file can be written (nothing is paid twice).") from None
        self._dirty = False
        self._forget(self._finished)

    def _written(self) -> dict[str, LockEntry]:
        """What the file holds: every entry, or a shard's recorded ones."""
        if self._recorded is None:
            return dict(self.entries)
        return {name: self.entries[name] for name in self._recorded}

    def _write_soon(self) -> None:
        """Start a write in a thread if one is due; the event loop goes on serving tasks
        while the file (10 MB at 10,000 images) is written and synced."""
        interval = max(self._interval, 4 * self._last_took)
        if self._writing is not None or time.monotonic() - self._last_write < interval:
            return
        self._writing = asyncio.get_running_loop().create_task(self._write_in_thread())

    async def _write_in_thread(self) -> None:
        entries, finished = self._written(), list(self._finished)
        self._finished.clear()
        self._dirty = False
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._writer.write, self.path, entries)
        except OSError as exc:  # the journal still holds them; the final write retries
            self._dirty = True
            self._finished.extend(finished)
            self._warn(f"not written yet ({exc.strerror or exc}); retried later")
        else:
            self._written_in_background = True
            # On the event loop, as every journal write: one writer, no lock waits.
            self._forget(finished)
        finally:
            self._last_write = time.monotonic()
            self._last_took = self._last_write - started
            self._writing = None

    def _forget(self, finished: list[str]) -> None:
        """Drop from the journal the tasks whose results the lockfile now holds."""
        if finished:
            self._journal.forget(*finished)
            finished.clear()
