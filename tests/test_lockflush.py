"""The lockfile during a build: written in the background, the journal emptied only
behind a written file, and a final write that fails says so and loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assetbuild.errors import AssetbuildError
from assetbuild.journal import Journal
from assetbuild.lockfile import LockEntry, OutputRecord
from assetbuild.lockflush import LockfileFlusher
from assetbuild.lockread import read_lockfile


def entry(name: str) -> LockEntry:
    return LockEntry(spec_hash=f"spec-{name}", provider="emulator", task_id=f"task-{name}",
                     state="completed", model="m", result_urls=(f"https://r/{name}.png",),
                     request={"prompt": name},
                     outputs=(OutputRecord(f"generated/{name}.png", "cd" * 32, 10),))


def journal_with(tmp_path: Path, *names: str) -> Journal:
    journal = Journal(tmp_path / ".assetbuild", "http://api", "sk-test")
    for name in names:
        journal.submitted(f"spec-{name}", name, f"task-{name}", {"prompt": name})
    return journal


def test_finished_tasks_leave_the_journal_only_once_the_file_holds_them(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    journal = journal_with(tmp_path, "a", "b")

    async def build() -> None:
        lock = LockfileFlusher(path, {}, journal, interval=0.0, warn=pytest.fail)
        lock.record("a", entry("a"), finished_spec="spec-a")  # due at once: a write starts
        assert journal.get("spec-a") is not None, "not forgotten before the write ends"
        await asyncio.sleep(0.2)
        assert set(read_lockfile(path).entries) == {"a"}
        assert journal.get("spec-a") is None and journal.get("spec-b") is not None
        lock.record("b", entry("b"), finished_spec="spec-b")
        await lock.close(None)

    asyncio.run(build())
    assert set(read_lockfile(path).entries) == {"a", "b"}
    assert journal.entries() == []
    journal.close()


def test_an_unchanged_entry_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    journal = journal_with(tmp_path)

    async def build() -> None:
        lock = LockfileFlusher(path, {"a": entry("a")}, journal, interval=0.0, warn=pytest.fail)
        lock.record("a", entry("a"))
        await lock.close(None)

    asyncio.run(build())
    assert not path.exists()
    journal.close()


def test_a_lockfile_that_cannot_be_written_loses_nothing(tmp_path: Path) -> None:
    """The background write warns and keeps the task journaled; the final write is an
    error that says the results are kept and nothing is paid twice."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the lockfile's folder should be")
    journal = journal_with(tmp_path, "a")
    warnings: list[str] = []

    async def build() -> None:
        lock = LockfileFlusher(blocker / "assetbuild.lock", {}, journal, interval=0.0,
                               warn=warnings.append)
        lock.record("a", entry("a"), finished_spec="spec-a")
        await asyncio.sleep(0.2)
        await lock.close(None)

    with pytest.raises(AssetbuildError, match=r"cannot write .*nothing is paid twice"):
        asyncio.run(build())
    assert warnings and "retried later" in warnings[0]
    assert journal.get("spec-a") is not None, "the paid task stays journaled"
    journal.close()
