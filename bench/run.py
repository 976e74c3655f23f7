"""assetbuild's benchmarks: one table, each figure beside a baseline timed in the same run.

    python bench/run.py            # the full run (about 15 minutes on 2 cores)
    python bench/run.py --quick    # a small smoke run (CI runs it so the bench never rots;
                                   # its targets are advisory, a failing command fails it)
    python bench/run.py --scale    # the 100,000-image figures (most of an hour; not in CI)

It serves the emulator over loopback with the installed CLI (``assetbuild emulator``)
and drives ``assetbuild`` as a user would, in a temporary folder. Exit status 1 when
a target is missed. Whole-process wall times; medians where a figure is repeated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from common import (  # bench/common.py, beside this script
    CLI,
    HERE,
    PYTHON,
    Emulator,
    Row,
    cli_env,
    make_project,
    median_of,
    run,
    table,
    workspace,
)


@dataclass(frozen=True)
class Sizes:
    """How big each part of the run is."""

    noop_repeats: int
    scale: tuple[int, int]
    scale_latency: float
    scale_jobs: int
    throughput: int
    latency: tuple[tuple[int, float, int], ...]
    """(images, seconds each, jobs) of each latency-bound build."""
    remote: int


FULL = Sizes(5, (1_000, 10_000), 0.5, 256, 2_000, ((500, 2.0, 50), (5_000, 2.0, 500)), 1_000)
QUICK = Sizes(3, (200, 600), 0.2, 64, 200, ((50, 1.0, 25),), 100)
SCALE = Sizes(3, (10_000, 100_000), 0.0, 256, 0, (), 0)

NOOP_TARGETS = {10_000: 0.3, 100_000: 3.0}
"""Seconds a warm no-op check, plan or build may take, by catalog size."""
COLD_TARGETS = {10_000: 1.0, 100_000: 10.0}
"""Seconds a fresh clone's first check may take (no state folder), by catalog size."""
RSS_TARGETS_MB = {100_000: 1024}
"""Peak RSS of a build, by catalog size (250 MB up to 10,000 images)."""


def startup(rows: list[Row], repeats: int) -> None:
    """--version and --help within 100 ms of `python -c pass`."""
    floor = median_of([PYTHON, "-c", "pass"], repeats * 2)
    for args in (["--version"], ["--help"]):
        value = median_of([CLI, *args], repeats * 2)
        extra = (value - floor) * 1000
        rows.append(Row(f"start-up: assetbuild {args[0]}", value, "s", "python -c pass", floor,
                        value / floor, f"+{extra:.0f} ms <= +100 ms", extra <= 100))


def makefile_baseline(folder: Path, count: int, repeats: int) -> float:
    """`make -q` over an equivalent Makefile (count targets, all up to date)."""
    (folder / "src").mkdir(parents=True)
    (folder / "out").mkdir()
    for i in range(count):
        (folder / "src" / f"{i}.txt").write_text("x")
    time.sleep(0.01)
    for i in range(count):
        (folder / "out" / f"{i}.png").write_text("x")
    targets = " ".join(f"out/{i}.png" for i in range(count))
    rules = "".join(f"out/{i}.png: src/{i}.txt\n\tcp $< $@\n" for i in range(count))
    (folder / "Makefile").write_text(f"all: {targets}\n{rules}")
    # -r: no built-in implicit rules, which make would otherwise try for each source
    return median_of(["make", "-r", "-q", "-C", str(folder), "all"], repeats)


def noop(rows: list[Row], sizes: Sizes, manifest: Path, count: int, env: dict[str, str],
         scratch: Path) -> None:
    """Check, plan and build with nothing to do, against make -q; a fresh clone's first
    check (no state folder), against sha256sum of the outputs."""
    make = makefile_baseline(scratch / f"make-{count}", count, sizes.noop_repeats)
    limit = NOOP_TARGETS.get(count)
    for command in ("check", "plan", "build"):
        value = median_of([CLI, command, "-q", "-f", str(manifest)], sizes.noop_repeats, env=env)
        rows.append(Row(f"no-op {command}, {count} images", value, "s", "make -r -q", make,
                        value / make, f"<= {limit:g} s" if limit else "",
                        value <= limit if limit else None))
    state = manifest.parent / ".assetbuild"
    cold = []
    for _ in range(2):
        shutil.rmtree(state, ignore_errors=True)
        cold.append(run([CLI, "check", "-q", "-f", str(manifest)], env=env).seconds)
    out = manifest.parent / "generated"
    command = f"find {out} -type f -print0 | xargs -0 sha256sum > /dev/null"
    hashing = median_of([command], 2, shell=True)  # noqa: S604 - fixed command, our folder
    limit = COLD_TARGETS.get(count)
    rows.append(Row(f"cold check (state deleted), {count} images", min(cold), "s",
                    "sha256sum of the outputs", hashing, min(cold) / hashing,
                    f"<= {limit:g} s" if limit else "", min(cold) <= limit if limit else None))


def throughput(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """Images/s against the minimal client, zero latency, 64 in flight.

    Each side runs twice, alternating, and keeps its faster run: one run of either can
    lose 10% to whatever else the shared machine is doing.
    """
    count = sizes.throughput
    minimal_runs, our_runs = [], []
    for attempt in range(2):
        emulator.configure(0.0)
        minimal_runs.append(run([PYTHON, str(HERE / "minimal_client.py"), emulator.base_url,
                                 str(count), str(scratch / f"minimal-{attempt}"),
                                 "--jobs", "64"]).seconds)
        manifest = make_project(scratch / f"throughput-{attempt}", count, 64, "throughput")
        emulator.configure(0.0)
        ours = run([CLI, "build", "-q", "-f", str(manifest)],
                   env=cli_env(emulator, scratch / f"throughput-cache-{attempt}"))
        assert ours.code == 0, "the throughput build failed"
        our_runs.append(ours.seconds)
    ours_rate, base_rate = count / min(our_runs), count / min(minimal_runs)
    rows.append(Row(f"throughput, {count} images, jobs 64 (best of 2)", ours_rate, "images/s",
                    "minimal httpx client", base_rate, ours_rate / base_rate, ">= 0.90",
                    ours_rate / base_rate >= 0.9))


def latency_bound(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """Each latency-bound build: the ideal ceil(n/jobs) x latency over the wall time
    (mean of 2 builds) at least 0.95, at most 1.5 status polls per image."""
    for count, latency, jobs in sizes.latency:
        seconds, polls = [], []
        for attempt in range(2):
            manifest = make_project(scratch / f"latency-{count}-{attempt}", count, jobs,
                                    f"latency{count}-{attempt}")
            emulator.configure(latency)
            result = run([CLI, "build", "-q", "-f", str(manifest)],
                         env=cli_env(emulator, scratch / f"latency-cache-{count}-{attempt}"))
            assert result.code == 0, "the latency build failed"
            seconds.append(result.seconds)
            polls.append(emulator.stats()["status_polls"] / count)
        ideal = math.ceil(count / jobs) * latency
        wall = statistics.mean(seconds)
        rows.append(Row(f"latency-bound, {count} images, {latency:g} s, jobs {jobs} "
                        "(mean of 2)", wall, "s", "ideal ceil(n/jobs) x latency", ideal,
                        ideal / wall, ">= 0.95 of ideal", ideal / wall >= 0.95))
        per_image = max(polls)
        rows.append(Row("  status polls per image", per_image, "polls", target="<= 1.5",
                        ok=per_image <= 1.5))
        # What the least a client can do makes of the same set (it polls every 50 ms).
        emulator.configure(latency)
        minimal = run([PYTHON, str(HERE / "minimal_client.py"), emulator.base_url, str(count),
                       str(scratch / f"latency-minimal-{count}"), "--jobs", str(jobs)])
        rows.append(Row("  the minimal client on the same set", minimal.seconds, "s",
                        "ideal", ideal, ideal / minimal.seconds, "report"))


def scale_and_more(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path,
                   *, restores: bool = True) -> None:
    """Build each scale set, then its no-op and cold checks; the time per image at the
    larger size against the smaller; a restore from the cache at the larger size."""
    per_image: list[float] = []
    for index, count in enumerate(sizes.scale):
        manifest = make_project(scratch / f"scale-{count}", count, sizes.scale_jobs,
                                f"scale{count}")
        env = cli_env(emulator, scratch / "scale-cache")
        emulator.configure(sizes.scale_latency)
        result = run([CLI, "build", "-q", "-f", str(manifest)], env=env)
        assert result.code == 0, f"the {count}-image build failed"
        per_image.append(result.seconds / count)
        rows.append(Row(f"scale: build {count} images, {sizes.scale_latency:g} s, jobs "
                        f"{sizes.scale_jobs}", result.seconds, "s", target="completes", ok=True))
        limit = RSS_TARGETS_MB.get(count, 250)
        rows.append(Row(f"  peak RSS at {count} images", result.peak_mb, "MB",
                        target=f"<= {limit} MB", ok=result.peak_mb <= limit))
        noop(rows, sizes, manifest, count, env, scratch)
        if restores and index == len(sizes.scale) - 1:
            restore(rows, manifest, count, env, scratch)
    ratio = per_image[1] / per_image[0]
    rows.append(Row(f"scale: time per image at {sizes.scale[1]} vs {sizes.scale[0]}",
                    per_image[1] * 1000, "ms", f"per image at {sizes.scale[0]}",
                    per_image[0] * 1000, ratio, "<= 1.30", ratio <= 1.3))


def restore(rows: list[Row], manifest: Path, count: int, env: dict[str, str],
            scratch: Path) -> None:
    """A pull of every deleted output from the cache vs cp -r of the same bytes.

    Both put the same files back into the same folder right after it was deleted (and
    the disk synced): ``rm -rf generated`` then ``cp -r <copy> generated`` or ``pull``.
    On an ext4 file system without a journal (this machine's) a new file skips the
    inodes deleted in the last minute, so creates right after a large delete cost up to
    10 times more, and more so for whichever command runs second: five rounds take turns
    going first, medians.
    """
    out = manifest.parent / "generated"
    copy = scratch / "copy-source"
    shutil.copytree(out, copy)
    copies, pulls = [], []
    for round_ in range(5):
        for side in ("copy", "pull") if round_ % 2 == 0 else ("pull", "copy"):
            shutil.rmtree(out)
            os.sync()
            if side == "copy":
                copies.append(run(["cp", "-r", str(copy), str(out)]).seconds)
            else:
                result = run([CLI, "pull", "-q", "-f", str(manifest)], env=env)
                assert result.code == 0, "pull failed"
                pulls.append(result.seconds)
    copied, pull = statistics.median(copies), statistics.median(pulls)
    rows.append(Row(f"restore: pull {count} deleted outputs from the cache", pull, "s",
                    "cp -r of the same files", copied, copied / pull, ">= 0.50 of cp's speed",
                    copied / pull >= 0.5))


def remote_store(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """The team's remote store on S3 (moto on loopback): pull and lookup costs."""
    from remote import remote_rows  # bench/remote.py, beside this script

    manifest = make_project(scratch / "remote", sizes.remote, 64, "remote")
    emulator.configure(0.0)
    remote_rows(lambda *fields: rows.append(Row(*fields)), CLI, manifest, sizes.remote,
                cli_env(emulator, scratch / "remote-unused-cache"), scratch)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, exit 1 if a target was missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="a small smoke run")
    modes.add_argument("--scale", action="store_true",
                       help="the 10,000 and 100,000-image figures only")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "scale" if args.scale else "full"
    sizes = {"quick": QUICK, "scale": SCALE, "full": FULL}[mode]
    rows: list[Row] = []
    started = time.monotonic()
    emulator = Emulator()
    try:
        with workspace() as scratch:
            if mode == "scale":
                scale_and_more(rows, sizes, emulator, scratch, restores=False)
            else:
                startup(rows, sizes.noop_repeats)
                throughput(rows, sizes, emulator, scratch)
                latency_bound(rows, sizes, emulator, scratch)
                scale_and_more(rows, sizes, emulator, scratch)
                remote_store(rows, sizes, emulator, scratch)
    finally:
        emulator.close()
    print(table(rows, mode))
    print(f"\n{(time.monotonic() - started) / 60:.1f} minutes, commit {_commit()}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    missed = [r.figure for r in rows if r.ok is False]
    if missed:
        print(f"\nmissed: {', '.join(missed)}")
    if args.quick:
        # The targets are set for the full sizes; at smoke-test sizes on a shared
        # machine they are advisory. A failing command still fails the run (assert).
        return 0
    return 1 if missed else 0


def _commit() -> str:
    """The checked-out commit the figures are of (``git describe``-like), if known."""
    import subprocess

    found = subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%h %s"],
                           capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--", ".."],
                           capture_output=True, text=True, check=False).stdout.strip()
    return found.stdout.strip()[:60] + (" (with uncommitted changes)" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
