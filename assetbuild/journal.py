"""The task journal: every task id is recorded the moment a submit returns.

A build that dies at any point leaves its journal behind; the next build resumes
polling those tasks instead of paying for them again. Before each submit an *intent*
is journaled (no task id yet): a build killed while the submit was on the wire leaves
it behind, and the next build says that image may have been charged twice. Entries are keyed by the
spec hash, the API base URL and a fingerprint of the key (a truncated digest,
never the key), so a different account or endpoint never resumes another's task.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from assetbuild import memo
from assetbuild.state import UnsafeRow, open_cache

JOURNAL_FORMAT = 2
"""2: entries as JSON (1 was pickled dicts)."""


def key_fingerprint(api_key: str) -> str:
    """A short digest that tells keys apart without revealing them."""
    return hashlib.sha256(f"assetbuild-key-fingerprint:{api_key}".encode()).hexdigest()[:16]


def api_scope(base_url: str, api_key: str) -> str:
    """What uploads and journal entries are scoped to: the API and the account's key."""
    return f"{base_url}|{key_fingerprint(api_key)}"


class JournalUnwritable(Exception):
    """A journal record could not be written (disk full, I/O error); the entry is kept
    in memory and written again by :meth:`Journal.retry_unsaved`."""


@dataclass(frozen=True)
class JournalEntry:
    """A submitted task, and its lock entry once its outputs are written; or, in state
    ``sending``, a submit sent whose answer (the task id) has not come back."""

    name: str
    task_id: str
    request: dict[str, Any]
    submitted_at: float
    state: Literal["sending", "submitted", "done"] = "submitted"
    lock_entry: dict[str, Any] = field(default_factory=dict)

    @property
    def paid(self) -> bool:
        """Whether the entry holds a task the API created (and may charge)."""
        return self.state != "sending"


class Journal:
    """The journal in the state folder (diskcache: one SQLite transaction per record).

    Its entries are read once, on the first lookup, and kept current in memory (a
    build holds the build lock, so no one else writes them meanwhile).
    """

    def __init__(self, state_dir: Path, base_url: str, api_key: str) -> None:
        # Never evicted: a journal entry is a task paid for.
        self._cache: Any = open_cache(state_dir / "journal", holds_tasks=True,
                                      eviction_policy="none")
        self._scope = f"v{JOURNAL_FORMAT}|{base_url}|{key_fingerprint(api_key)}"
        self._known: dict[str, JournalEntry] | None = None
        """The entries of this scope by spec hash, loaded on first use and kept current."""
        self._unsaved: dict[str, JournalEntry] = {}
        """Entries whose last write failed, by spec hash."""

    def _key(self, spec_hash: str) -> str:
        return f"{self._scope}|{spec_hash}"

    def _loaded(self) -> dict[str, JournalEntry]:
        if self._known is None:
            # One pass over the journal (empty after a clean build) instead of a
            # query per image.
            self._known = dict(self._scan())
        return self._known

    def get(self, spec_hash: str) -> JournalEntry | None:
        """The journaled task for a spec, if any."""
        return self._loaded().get(spec_hash)

    def intents(self, intents: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Record that submits are about to be sent ((spec hash, name, request) each), in
        one transaction: a burst of submits costs one write, not one each."""
        now = time.time()
        entries = {digest: JournalEntry(name, "", request, now, state="sending")
                   for digest, name, request in intents}
        self._loaded().update(entries)
        try:
            with self._cache.transact():
                for digest, entry in entries.items():
                    self._cache.set(self._key(digest), _record(entry))
        except (sqlite3.Error, OSError) as exc:
            for digest in entries:
                self._loaded().pop(digest, None)
            raise JournalUnwritable(str(exc)) from None

    def submitted(self, spec_hash: str, name: str, task_id: str,
                  request: dict[str, Any]) -> None:
        """Record a task id (call this before anything else can fail)."""
        self._store(spec_hash, JournalEntry(name, task_id, request, time.time()))

    def done(self, spec_hash: str, lock_entry: dict[str, Any]) -> None:
        """Record that the task's outputs are written and what the lockfile should say."""
        entry = self.get(spec_hash)
        if entry is not None:
            self._store(spec_hash, replace(entry, state="done", lock_entry=lock_entry))

    def _store(self, spec_hash: str, entry: JournalEntry) -> None:
        """Write ``entry``; if the disk refuses, keep it in memory and raise
        JournalUnwritable (the caller stops submitting)."""
        self._loaded()[spec_hash] = entry
        try:
            self._cache.set(self._key(spec_hash), _record(entry))
        except (sqlite3.Error, OSError) as exc:
            self._unsaved[spec_hash] = entry
            raise JournalUnwritable(str(exc)) from None
        self._unsaved.pop(spec_hash, None)

    def retry_unsaved(self) -> list[JournalEntry]:
        """Write again the entries whose write failed; return those that still are not
        on disk (the caller shows their task ids: the last record of a paid task)."""
        for spec_hash, entry in list(self._unsaved.items()):
            if self._known is not None and spec_hash not in self._known:
                self._unsaved.pop(spec_hash)  # forgotten since: the lockfile holds it
                continue
            try:
                self._store(spec_hash, entry)
            except JournalUnwritable:
                continue
        return list(self._unsaved.values())

    def forget(self, *spec_hashes: str) -> None:
        """Drop tasks: they failed, are gone, or the lockfile now holds their results
        (several at once in one transaction)."""
        known = self._loaded()
        for spec_hash in spec_hashes:
            known.pop(spec_hash, None)
            self._unsaved.pop(spec_hash, None)
        try:
            with self._cache.transact():
                for spec_hash in spec_hashes:
                    self._cache.delete(self._key(spec_hash))
        except (sqlite3.Error, OSError):
            pass  # a stale entry is dropped by a later build; the lockfile holds its result

    def settle(self, locked: set[tuple[str, str]], *, take_intents: bool) -> tuple[str, ...]:
        """Forget the tasks ``locked`` holds ((spec hash, task id) pairs: a build that died
        after writing the lockfile, before dropping them) so none is resumed again; with
        ``take_intents``, forget the intents an earlier build left too and return their
        images (each submit may have created a task nobody can poll)."""
        settled = [digest for digest, entry in self.items() if (digest, entry.task_id) in locked]
        intents = [(digest, entry.name) for digest, entry in self.items()
                   if not entry.paid and take_intents]
        if settled or intents:
            self.forget(*settled, *(digest for digest, _ in intents))
        return tuple(sorted({name for _, name in intents}))

    def entries(self) -> list[JournalEntry]:
        """Every task journaled under this API and key."""
        return [entry for _, entry in self._scan()]

    def items(self) -> list[tuple[str, JournalEntry]]:
        """(spec hash, entry) of every task journaled under this API and key."""
        return list(self._loaded().items())

    def _scan(self, prefix: str | None = None) -> list[tuple[str, JournalEntry]]:
        """(spec hash, entry) of every entry whose key starts with ``prefix`` (this
        API and key by default); rows that are not plain data are passed over."""
        found: list[tuple[str, JournalEntry]] = []
        prefix = prefix or f"{self._scope}|"
        iterator = self._cache.iterkeys()
        while True:
            try:
                key = next(iterator)
            except StopIteration:
                return found
            except UnsafeRow:
                continue
            if isinstance(key, str) and key.startswith(prefix):
                entry = memo.decode(self._cache.get(key), JournalEntry)
                if entry is not None:
                    found.append((key.rpartition("|")[2], entry))

    def close(self) -> None:
        """Release the journal's database."""
        self._cache.close()


def paid_tasks(state_dir: Path) -> dict[str, str]:
    """Spec hash -> task id of every paid task journaled in ``state_dir``, under any
    API and key (for plan and check, which know neither); nothing is created when
    there is no journal."""
    if not (state_dir / "journal").is_dir():
        return {}
    journal = Journal(state_dir, "", "")
    try:
        return {digest: entry.task_id
                for digest, entry in journal._scan(f"v{JOURNAL_FORMAT}|") if entry.paid}
    finally:
        journal.close()


def _record(entry: JournalEntry) -> bytes:
    """What is stored: the entry as JSON (:mod:`assetbuild.memo`)."""
    data = memo.encode(entry)
    if data is None:  # a request is JSON by construction: it was just sent as JSON
        raise TypeError("a journal entry that is not JSON")
    return data
