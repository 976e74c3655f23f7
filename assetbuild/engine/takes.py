"""Takes: several paid tasks of one spec, every one kept, one of them the output.

Take ``n`` of a spec is keyed (journal, cache, remote) by :func:`~assetbuild.hashing.take_key`,
so a take is found, resumed and shared exactly as a whole image is, and a take paid
for once is never paid for again. Take 1 is downloaded to the outputs; later takes to
the state folder and into the result cache. The image's lock entry is the chosen take's,
with every take listed; the takes are recorded in order, so a take that failed ends the
list there (the takes after it stay in the journal and the cache for the next build).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from assetbuild.errors import DownloadError, ImageFailed
from assetbuild.hashing import take_key
from assetbuild.lockfile import LockEntry, OutputRecord, Take
from assetbuild.outcomes import ImageResult, Outcome

if TYPE_CHECKING:
    from assetbuild.engine.builder import Builder
    from assetbuild.plan import ImageStatus
    from assetbuild.resolve import ResolvedImage

_Made = tuple[LockEntry, Outcome, str | None]
"""A take's entry, how it came (paid, resumed, found), and its journal key if it has one."""


class TakeFlow:
    """The takes of one build's images, run through its builder."""

    def __init__(self, builder: Builder) -> None:
        self.builder = builder

    async def build(self, image: ResolvedImage, spec: dict[str, Any], digest: str,
                    current: LockEntry | None, wanted: int, *, fresh: bool) -> ImageResult:
        """Make takes of ``digest`` up to ``wanted`` (``current``: the lock entry of the
        same spec, whose takes are kept), and lock the image with every take."""
        held = current.all_takes() if current is not None else ()
        numbers = range(len(held) + 1, max(wanted, len(held)) + 1)
        outcomes = await asyncio.gather(
            *(self._take(image, spec, digest, number, fresh) for number in numbers),
            return_exceptions=True)
        made: list[_Made] = []
        for each in outcomes:
            if isinstance(each, BaseException):
                break
            made.append(each)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if not made and current is None:
            assert failure is not None
            raise failure
        takes = (*held, *(Take.of(entry) for entry, _, _ in made))
        chosen = current if current is not None else made[0][0]
        number = current.take if current is not None else 1
        entry = replace(chosen, takes=takes if len(takes) > 1 else (),
                        take=number if len(takes) > 1 else 1)
        paid = [e for e, how, _ in made if how == "built"]
        outcome: Outcome = "built" if paid else (made[0][1] if made else "up-to-date")
        await self.builder.results.restore(image, entry, outcome,
                                           journaled_spec=tuple(k for _, _, k in made if k))
        if failure is not None:
            if not isinstance(failure, ImageFailed):
                raise failure
            raise ImageFailed(f"take {len(takes) + 1}: {failure}; {len(takes)} kept")
        return ImageResult(image.name, outcome, _described(len(held), made, number),
                           sum(e.cost_points or 0 for e in paid))

    async def _take(self, image: ResolvedImage, spec: dict[str, Any], digest: str,
                    number: int, fresh: bool) -> _Made:
        """Take ``number`` of ``digest``: found where it was kept, else paid for."""
        builder, key = self.builder, take_key(digest, number)
        known = await builder.known(image.name, key, digest, fresh=fresh)
        if known is not None:
            return known
        try:
            paid = await builder.pay(image, key, digest, fresh=fresh)
            if isinstance(paid, LockEntry):  # another machine published it meanwhile
                return paid, "remote", None
            status, request, resumed = paid
            await builder.ended(image, key, status)
            entry = await builder.results.keep_task(image, spec, (digest, number), status,
                                                    request)
            if builder.team is not None:  # published: the lease has done its work
                await builder.team.ended(key)
            return entry, "resumed" if resumed else "built", key
        finally:
            builder.submits.release(key)

    async def pick(self, item: ImageStatus) -> ImageResult:
        """Make take ``item.asked`` the image's output: its files from the cache, the
        remote or its URLs; no task."""
        assert item.entry is not None
        entry, number = item.entry, item.asked
        take = entry.all_takes()[number - 1]
        cached = self.builder.cache.entry(take_key(entry.spec_hash, number))
        full = LockEntry.from_toml(cached) if cached is not None else None
        if full is None or full.task_id != take.task_id:
            paths = item.image.output_paths(len(take.sha256))
            full = replace(entry, task_id=take.task_id, result_urls=take.result_urls,
                           cost_points=take.cost_points, outputs=tuple(
                               OutputRecord(path, sha, size) for path, sha, size
                               in zip(paths, take.sha256, take.bytes, strict=True)))
        chosen = replace(full, takes=entry.takes, take=number if entry.takes else 1,
                         derived=())
        try:
            await self.builder.results.restore(item.image, chosen, "picked")
        except DownloadError as exc:
            raise ImageFailed(f"take {number} is in no result cache or remote here, and its "
                              f"URL fails ({exc}); pick it on the machine that made it, or "
                              "share it through a remote") from None
        return ImageResult(item.name, "picked", f"take {number} of {entry.take_count} "
                           f"(task {take.task_id}) is the output")


def _described(held: int, made: list[_Made], chosen: int) -> str:
    """What happened to an image's takes, in a few words."""
    paid = sum(1 for _, how, _ in made if how == "built")
    total = held + len(made)
    found = len(made) - paid
    parts = [f"{total} takes" if total > 1 else "1 take"]
    if paid:
        parts.append(f"{paid} paid now")
    if found:
        parts.append(f"{found} already paid for")
    return f"{', '.join(parts)}; take {chosen} is the output"
