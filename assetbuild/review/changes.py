"""What changed between two lockfiles, image by image: the cards a review shows."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from assetbuild.errors import UsageError
from assetbuild.lockfile import LockEntry, Lockfile

Change = Literal["changed", "new", "removed", "unchanged"]
SECTIONS: tuple[Change, ...] = ("changed", "new", "removed", "unchanged")

IGNORED_FIELDS = frozenset({"prompt", "input_urls"})
"""Request fields shown otherwise: the prompt as a diff, inputs by the spec's references."""


@dataclass(frozen=True)
class FieldChange:
    """One request or spec field whose value differs."""

    name: str
    old: str
    new: str


@dataclass(frozen=True)
class PromptPiece:
    """A run of prompt words, kept, removed or added."""

    kind: Literal["same", "removed", "added"]
    text: str


@dataclass(frozen=True)
class ImageChange:
    """One image of the review: its entries before and after, and what differs."""

    name: str
    change: Change
    old: LockEntry | None
    new: LockEntry | None
    prompt: tuple[PromptPiece, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    note: str = ""
    """A word on a change the fields do not show (another take picked, a rebuild)."""

    @property
    def anchor(self) -> str:
        """The id of its card on the page."""
        return "image-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.name)

    @property
    def same_output(self) -> bool:
        """Whether the output's bytes are the same before and after (more takes, a move)."""
        return (self.old is not None and self.new is not None
                and [o.sha256 for o in self.old.outputs] == [o.sha256 for o in self.new.outputs])

    @property
    def prompt_changed(self) -> bool:
        """Whether the prompt's words differ."""
        return any(piece.kind != "same" for piece in self.prompt)

    @property
    def cost_points(self) -> int | None:
        """Points the new result cost, when it is new or changed and known."""
        if self.change in ("changed", "new") and self.new is not None:
            return sum(take.cost_points or 0 for take in _paid_takes(self.old, self.new))
        return None


def compare(old: Lockfile, new: Lockfile, names: Iterable[str] | None = None
            ) -> list[ImageChange]:
    """Every image of either lockfile (or only ``names``), sorted by name."""
    wanted = sorted(set(old.entries) | set(new.entries)) if names is None else sorted(names)
    return [_compare_one(name, old.get(name), new.get(name)) for name in wanted]


def select(old: Lockfile, new: Lockfile, targets: Iterable[str], manifest: str
           ) -> list[str] | None:
    """The image names the targets match among both lockfiles' (exact names, matrix base
    names, globs); None for no targets. A target that matches nothing is a UsageError."""
    targets = list(targets)
    if not targets:
        return None
    known = sorted(set(old.entries) | set(new.entries))
    chosen: set[str] = set()
    for target in targets:
        found = [name for name in known
                 if name == target or name.startswith(target + "[")
                 or fnmatch.fnmatchcase(name, target)]
        if not found:
            raise UsageError(f"review: no image of {manifest} (now or at the base) matches "
                             f"{target!r}; `assetbuild list` shows the names")
        chosen.update(found)
    return sorted(chosen)


def _compare_one(name: str, old: LockEntry | None, new: LockEntry | None) -> ImageChange:
    if old is None:
        assert new is not None  # the name came from one of the two
        return ImageChange(name, "new", None, new, prompt_diff("", _prompt(new)))
    if new is None:
        return ImageChange(name, "removed", old, None)
    prompt = prompt_diff(_prompt(old), _prompt(new))
    fields = tuple(field_changes(old, new))
    same_result = (old.task_id == new.task_id
                   and [o.sha256 for o in old.outputs] == [o.sha256 for o in new.outputs])
    if same_result and old.spec_hash == new.spec_hash and old.take_count == new.take_count:
        moved = [o.path for o in old.outputs] != [o.path for o in new.outputs]
        if not moved:
            return ImageChange(name, "unchanged", old, new, prompt, fields)
        return ImageChange(name, "changed", old, new, prompt, fields, "output moved")
    return ImageChange(name, "changed", old, new, prompt, fields, _note(old, new))


def _note(old: LockEntry, new: LockEntry) -> str:
    if old.spec_hash != new.spec_hash:
        return ""
    if new.task_id == old.task_id and new.take_count > old.take_count:
        return f"{new.take_count - old.take_count} more take(s) paid for; output unchanged"
    if new.task_id in {take.task_id for take in old.all_takes()}:
        return f"take {new.take} picked (same spec, no new task)"
    return "built again (same spec)"


def _paid_takes(old: LockEntry | None, new: LockEntry) -> list[Any]:
    known = set() if old is None else {take.task_id for take in old.all_takes()}
    return [take for take in new.all_takes() if take.task_id not in known]


def _prompt(entry: LockEntry) -> str:
    prompt = entry.request.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def prompt_diff(old: str, new: str) -> tuple[PromptPiece, ...]:
    """The words of ``new`` against ``old``: runs kept, removed and added."""
    # Words keep the space after them, so a run of changed words is one change.
    before, after = re.findall(r"\s*\S+\s*", old), re.findall(r"\s*\S+\s*", new)
    pieces: list[PromptPiece] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(PromptPiece("same", "".join(after[j1:j2])))
            continue
        if i2 > i1:
            pieces.append(PromptPiece("removed", "".join(before[i1:i2])))
        if j2 > j1:
            pieces.append(PromptPiece("added", "".join(after[j1:j2])))
    return tuple(piece for piece in pieces if piece.text)


def field_changes(old: LockEntry, new: LockEntry) -> list[FieldChange]:
    """Request fields (but the prompt) and references that differ, and the provider."""
    found = []
    keys = sorted((set(old.request) | set(new.request)) - IGNORED_FIELDS)
    for key in keys:
        before, after = old.request.get(key), new.request.get(key)
        if before != after:
            found.append(FieldChange(key, _shown(before), _shown(after)))
    old_refs, new_refs = old.spec.get("references"), new.spec.get("references")
    if old_refs != new_refs:
        found.append(FieldChange("references", _references(old_refs), _references(new_refs)))
    if old.provider != new.provider:
        found.append(FieldChange("provider", old.provider, new.provider))
    return found


def _references(value: Any) -> str:
    if not isinstance(value, list):
        return "none"
    shown = []
    for ref in value:
        if isinstance(ref, dict):
            label = ref.get("file") or ref.get("image") or ref.get("url") or "?"
            digest = ref.get("sha256")
            shown.append(f"{label} ({str(digest)[:8]})" if digest else str(label))
    return ", ".join(shown) or "none"


def _shown(value: Any) -> str:
    return "(not set)" if value is None else str(value)
