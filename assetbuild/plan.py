"""Decide, without the network, what each image needs: nothing, a restore or a build.

An image is up to date when the lockfile has an entry with the same spec hash and
every output exists with the locked sha256. Otherwise its status says why.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from assetbuild._types import IMAGE_ACTION, Action, Status
from assetbuild.errors import UsageError
from assetbuild.hashing import changed_fields, sha256_text, spec_hash
from assetbuild.lockfile import LockEntry, Lockfile
from assetbuild.resolve import ResolvedImage, ResolvedManifest
from assetbuild.spec import image_spec
from assetbuild.state import FileDigests
from assetbuild.suggest import did_you_mean

ACTIONS: Mapping[Status, Action] = {
    "up-to-date": "none",
    "new": "build",
    "changed": "build",
    "upstream-changed": "build",
    "missing-output": "restore",
    "modified-output": "restore",
    "more-takes": "build",
    "pick": "restore",
    "reroll": "build",
}


@dataclass(frozen=True)
class ImageStatus:
    """One image's status, the reason in words, and what a build would do."""

    image: ResolvedImage
    status: Status
    reason: str
    spec_hash: str
    changed: tuple[str, ...] = ()
    entry: LockEntry | None = None
    asked: int = 0
    """The take to pick (``pick``), or how many more to pay for (``reroll``)."""

    @property
    def name(self) -> str:
        """The image's name."""
        return self.image.name

    @property
    def tasks(self) -> int:
        """Tasks a build of it pays for: every take of a new spec, the missing ones of a
        spec whose ``takes`` grew, none for a restore."""
        if self.action != "build":
            return 0
        if self.status == "reroll":
            return self.asked
        if self.status == "more-takes" and self.entry is not None:
            return self.image.takes - self.entry.take_count
        return self.image.takes

    @property
    def action(self) -> Action:
        """What build does: none, restore (outputs only) or build (call the API)."""
        return ACTIONS[self.status]

    def to_json(self) -> dict[str, Any]:
        """A machine-readable record for ``--json``."""
        return {
            "name": self.name,
            "status": self.status,
            "action": self.action,
            "reason": self.reason,
            "changed": list(self.changed),
            "output": self.image.output,
            "spec_hash": self.spec_hash,
            "dependencies": list(self.image.dependencies),
        }


@dataclass(frozen=True)
class Plan:
    """The status of every selected image, in dependency order."""

    resolved: ResolvedManifest
    lockfile: Lockfile
    provider: str
    images: tuple[ImageStatus, ...]
    paid: Mapping[str, str] = field(default_factory=dict)
    """Spec hash -> task id of the tasks the journal holds: paid for, not locked yet."""

    def action_of(self, item: ImageStatus) -> str:
        """The item's action, or ``resume`` when a build would poll a task already paid
        for (an interrupted build's) instead of submitting anew."""
        if item.action == "build" and item.spec_hash in self.paid:
            return "resume"
        return item.action

    def counts(self) -> dict[str, int]:
        """How many images have each status."""
        counts: dict[str, int] = {}
        for item in self.images:
            counts[item.status] = counts.get(item.status, 0) + 1
        return counts

    @property
    def up_to_date(self) -> bool:
        """Whether nothing needs doing."""
        return all(item.status == "up-to-date" for item in self.images)


def locked_urls(lockfile: Lockfile, names: Iterable[str]) -> dict[str, str | None]:
    """The first locked result URL of each named image (None if not built)."""
    urls: dict[str, str | None] = {}
    for name in names:
        entry = lockfile.get(name)
        urls[name] = entry.first_url if entry else None
    return urls


def locked_fields(entry: LockEntry) -> dict[str, Any]:
    """The locked spec, or what the entry's request and provider say of it."""
    if entry.spec:
        return dict(entry.spec)
    request = entry.request
    fields: dict[str, Any] = {"action": IMAGE_ACTION, "provider": entry.provider}
    if isinstance(request.get("prompt"), str):
        fields["prompt_sha256"] = sha256_text(request["prompt"])
    for key in ("aspect_ratio", "resolution"):
        if key in request:
            fields[key] = request[key]
    return fields


def select_targets(resolved: ResolvedManifest, targets: Iterable[str]) -> list[str]:
    """Names selected by exact names, matrix base names or globs, plus their dependencies."""
    by_name = resolved.by_name()
    wanted: set[str] = set()
    targets = list(targets)
    if not targets:
        return [image.name for image in resolved.images]
    for target in targets:
        matches = matching_names(target, resolved.images)
        if not matches:
            hint = did_you_mean(target, sorted({i.base_name for i in resolved.images}))
            raise UsageError(f"no image matches target {target!r}{hint}; "
                             "`assetbuild list` shows the names")
        wanted.update(matches)
    stack = list(wanted)
    while stack:
        for dep in by_name[stack.pop()].dependencies:
            if dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    return [image.name for image in resolved.images if image.name in wanted]


def matching_names(target: str, images: Iterable[ResolvedImage]) -> list[str]:
    """Images a target names: by exact name or matrix base name; a matrix slice
    (``card[color=red]``: every image of ``card`` with that value, whatever its other
    values); else a shell-style glob (``[`` is taken literally in the forms above)."""
    images = list(images)
    exact = [i.name for i in images if target in (i.name, i.base_name)]
    if exact:
        return exact
    sliced = _slice_of(target, images)
    if sliced:
        return sliced
    return [i.name for i in images if fnmatch.fnmatchcase(i.name, target)]


def _slice_of(target: str, images: list[ResolvedImage]) -> list[str]:
    base, bracket, rest = target.partition("[")
    if not bracket or not rest.endswith("]"):
        return []
    wanted = set(rest[:-1].split(","))
    found = []
    for image in images:
        if image.base_name == base and image.name != base:
            pairs = set(image.name[len(base) + 1:-1].split(","))
            if wanted <= pairs:
                found.append(image.name)
    return found


def make_plan(
    resolved: ResolvedManifest,
    lockfile: Lockfile,
    digests: FileDigests,
    *,
    provider: str,
    targets: Iterable[str] = (),
    force: bool = False,
    spec_hashes: dict[str, str] | None = None,
) -> Plan:
    """The status of each selected image (and its dependencies), in dependency order.

    ``spec_hashes`` memoises the spec hashes of images without ``image:`` references
    (they depend on the resolution and the provider only); missing ones are added.
    """
    selected = set(select_targets(resolved, targets))
    statuses: dict[str, ImageStatus] = {}
    root = resolved.manifest.root
    prefix = f"{root}{os.sep}"
    digests.prefetch(_locked_files(lockfile, selected, prefix))
    memo = spec_hashes if spec_hashes is not None else {}
    for image in resolved.images:
        if image.name not in selected:
            continue
        entry = lockfile.entries.get(image.name)
        spec: dict[str, Any] | None = None
        dependencies = image.dependencies
        digest = memo.get(image.name) if not dependencies else None
        if digest is None:
            spec = image_spec(image, provider, locked_urls(lockfile, dependencies))
            digest = spec_hash(spec)
            if not dependencies:
                memo[image.name] = digest
        upstream = [d for d in dependencies if statuses[d].action == "build"
                    ] if dependencies else []
        if entry is None:
            status = ImageStatus(image, "new", "not in the lockfile", digest)
        elif force or entry.spec_hash != digest:
            spec = spec or image_spec(image, provider, locked_urls(lockfile, image.dependencies))
            locked = locked_fields(entry)
            fields = tuple(changed_fields(spec, locked)) or (
                # A lockfile that keeps no references cannot show them unchanged.
                ("references",) if image.references and "references" not in locked
                else ("spec_hash",))
            reason = "--force" if force else (
                f"{', '.join(fields)} changed" if fields != ("spec_hash",) else
                "the locked spec_hash does not match the spec (edited by hand?)")
            status = ImageStatus(image, "changed", reason, digest, fields, entry)
        elif upstream:
            status = ImageStatus(image, "upstream-changed",
                                 f"depends on {', '.join(upstream)}, which will be rebuilt",
                                 digest, (), entry)
        else:
            status = _output_status(image, entry, digest, prefix, digests)
            if image.takes > entry.take_count:
                status = ImageStatus(image, "more-takes", f"takes = {image.takes} asks for "
                                     f"{image.takes - entry.take_count} more (the lockfile "
                                     f"keeps {entry.take_count})", digest, (), entry)
        statuses[image.name] = status
    return Plan(resolved, lockfile, provider, tuple(statuses.values()))


def _locked_files(lockfile: Lockfile, names: set[str], prefix: str
                  ) -> Iterator[tuple[str, int]]:
    """The files the lockfile vouches for, of the images ``names``, as the plan asks
    for their digests (``prefix``: the manifest's folder and a separator), with their
    locked sizes."""
    for name in names:
        entry = lockfile.get(name)
        if entry is not None:
            for record in (*entry.outputs, *entry.derived):
                yield prefix + record.path, record.bytes


UP_TO_DATE = "spec and outputs match the lockfile"


def _output_status(
    image: ResolvedImage, entry: LockEntry, digest: str, prefix: str, digests: FileDigests
) -> ImageStatus:
    outputs = entry.outputs
    if len(outputs) == 1 and not entry.derived and not image.sizes and not image.formats:
        # The common case, 10,000 times in a no-op check: one output, nothing derived.
        record = outputs[0]
        if record.path == image.output and digests.digest(prefix + record.path) == record.sha256:
            return ImageStatus(image, "up-to-date", UP_TO_DATE, digest, (), entry)
    expected = image.output_paths(len(entry.outputs))
    for path, record in zip(expected, entry.outputs, strict=True):
        if path != record.path:
            return ImageStatus(image, "missing-output", f"{path} is missing (output moved "
                               f"from {record.path})", digest, (), entry)
        found = digests.digest(prefix + path)
        if found is None:
            return ImageStatus(image, "missing-output", f"{path} is missing", digest, (), entry)
        if found != record.sha256:
            return ImageStatus(image, "modified-output", f"{path} differs from the locked "
                               "sha256", digest, (), entry)
    expected = [path for path, _, _ in image.derived_outputs()]
    if expected != [record.path for record in entry.derived]:
        return ImageStatus(image, "missing-output", "derived files (sizes, formats) changed",
                           digest, (), entry)
    for record in entry.derived:
        found = digests.digest(prefix + record.path)
        if found != record.sha256:
            status: Status = "missing-output" if found is None else "modified-output"
            return ImageStatus(image, status, f"derived file {record.path} is "
                               f"{'missing' if found is None else 'modified'}", digest, (), entry)
    return ImageStatus(image, "up-to-date", UP_TO_DATE, digest, (), entry)
