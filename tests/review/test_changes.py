"""The comparison of two lockfiles and the prompt's word diff."""

from __future__ import annotations

from assetbuild.lockfile import LockEntry, Lockfile, OutputRecord
from assetbuild.review.changes import compare, prompt_diff


def _entry(prompt: str, task: str, sha: str, **request: str) -> LockEntry:
    return LockEntry(spec_hash=f"spec-{prompt}", provider="emulator", task_id=task,
                     state="completed", model="m", result_urls=("https://x.test/a.png",),
                     request={"prompt": prompt, **request},
                     outputs=(OutputRecord("generated/a.png", sha, 10),))


def test_a_run_of_changed_words_is_one_change() -> None:
    pieces = prompt_diff("a calm blue sea at dawn", "a wild grey sea at dawn")
    assert [(p.kind, p.text) for p in pieces] == [
        ("same", "a "), ("removed", "calm blue "), ("added", "wild grey "),
        ("same", "sea at dawn")]


def test_the_same_prompt_has_no_change() -> None:
    assert all(p.kind == "same" for p in prompt_diff("one two", "one two"))


def test_each_image_is_changed_new_removed_or_unchanged() -> None:
    old = Lockfile({"a": _entry("x", "t1", "s1"), "b": _entry("y", "t2", "s2"),
                    "gone": _entry("z", "t3", "s3")})
    new = Lockfile({"a": _entry("x", "t1", "s1"),
                    "b": _entry("y!", "t4", "s4", aspect_ratio="16:9"),
                    "fresh": _entry("w", "t5", "s5")})
    changes = {c.name: c for c in compare(old, new)}
    assert {n: c.change for n, c in changes.items()} == {
        "a": "unchanged", "b": "changed", "fresh": "new", "gone": "removed"}
    assert [(f.name, f.old, f.new) for f in changes["b"].fields] == [
        ("aspect_ratio", "(not set)", "16:9")]
    assert changes["b"].prompt_changed and not changes["a"].prompt_changed
