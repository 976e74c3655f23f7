"""assetbuild's benchmarks: one table, each figure beside a baseline timed in the same run.

    python bench/run.py            # the full run (several minutes on 2 cores)
    python bench/run.py --quick    # a small smoke run (CI runs it so the bench never rots;
                                   # its targets are advisory, a failing command fails it)

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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("assetbuild"))


@dataclass(frozen=True)
class Sizes:
    """How big each part of the run is."""

    noop_repeats: int
    scale: tuple[int, int]
    scale_latency: float
    scale_jobs: int
    throughput: int
    latency_images: int
    latency: float
    latency_jobs: int
    remote: int


FULL = Sizes(5, (1_000, 10_000), 0.5, 256, 2_000, 500, 2.0, 50, 1_000)
QUICK = Sizes(3, (200, 600), 0.2, 64, 200, 50, 1.0, 25, 100)


@dataclass
class Row:
    """One figure, its baseline, and the target it must meet (if any)."""

    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None


@dataclass
class Run:
    """A finished command: wall seconds, peak RSS in MB, exit status."""

    seconds: float
    peak_mb: float
    code: int


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        shell: bool = False) -> Run:
    """Run a command to the end; its wall time and peak memory (from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, shell=shell,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return Run(seconds, usage.ru_maxrss / 1024, process.returncode)


def median_of(cmd: Sequence[str], repeats: int, **kwargs: Any) -> float:
    """The median wall time of ``repeats`` runs (after one warm-up)."""
    run(cmd, **kwargs)
    return statistics.median(run(cmd, **kwargs).seconds for _ in range(repeats))


class Emulator:
    """``assetbuild emulator`` on a free loopback port, configured over HTTP."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [CLI, "emulator", "--port", str(port), "--plain-images"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        for _ in range(400):
            try:
                self.http.get("/_emulator/stats")
                return
            except httpx.TransportError:
                time.sleep(0.025)
        raise RuntimeError("the emulator did not start")

    def configure(self, latency: float) -> None:
        """Fixed latency, no faults, answers as the real platform's (no emulator mark,
        so results lock as see2ai ones); forget all tasks and counts."""
        self.http.post("/_emulator/config", json={"latency_min": latency,
                                                  "latency_max": latency,
                                                  "announce": False})
        self.http.post("/_emulator/reset")

    def stats(self) -> dict[str, Any]:
        """What the emulator received since the last reset."""
        stats: dict[str, Any] = self.http.get("/_emulator/stats").json()
        return stats

    def close(self) -> None:
        """Stop serving."""
        self.http.close()
        self.process.terminate()
        self.process.wait(10)


@contextmanager
def workspace() -> Iterator[Path]:
    """A scratch folder, removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="assetbuild-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make_project(folder: Path, count: int, jobs: int, label: str) -> Path:
    """A manifest of ``count`` matrix images (1K, distinct prompts per ``label``)."""
    folder.mkdir(parents=True)
    rows = max(1, count // 100)
    columns = count // rows
    manifest = folder / "assetbuild.toml"
    manifest.write_text(
        f"version = 1\n[settings]\njobs = {jobs}\ntimeout = 3600\n"
        f"[images.tile]\nprompt = \"{label} tile {{{{ a }}}}-{{{{ b }}}}\"\n"
        "resolution = \"1K\"\noutput = \"t{{ a }}/{{ b }}.png\"\n"
        f"matrix = {{ a = {list(range(rows))}, b = {list(range(columns))} }}\n")
    return manifest


def cli_env(emulator: Emulator, cache: Path) -> dict[str, str]:
    """The environment of a user pointed at the emulator."""
    return {**os.environ, "SEE2AI_BASE_URL": emulator.base_url, "SEE2AI_API_KEY": "sk-bench",
            "ASSETBUILD_CACHE_DIR": str(cache), "NO_COLOR": "1"}


def startup(rows: list[Row], repeats: int) -> None:
    """Target 1: --version and --help within 100 ms of `python -c pass`."""
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
         scratch: Path, is_largest: bool) -> None:
    """Target 2: check, plan and build with nothing to do, against make -q and sha256sum."""
    make = makefile_baseline(scratch / f"make-{count}", count, sizes.noop_repeats)
    for command in ("check", "plan", "build"):
        value = median_of([CLI, command, "-q", "-f", str(manifest)], sizes.noop_repeats, env=env)
        rows.append(Row(f"no-op {command}, {count} images", value, "s", "make -r -q", make,
                        value / make, "<= 1.0 s" if is_largest else "",
                        value <= 1.0 if is_largest else None))
    state = manifest.parent / ".assetbuild"
    cold = []
    for _ in range(2):
        shutil.rmtree(state, ignore_errors=True)
        cold.append(run([CLI, "check", "-q", "-f", str(manifest)], env=env).seconds)
    out = manifest.parent / "generated"
    command = f"find {out} -type f -print0 | xargs -0 sha256sum > /dev/null"
    hashing = median_of([command], 2, shell=True)  # noqa: S604 - fixed command, our folder
    rows.append(Row(f"cold check (state deleted), {count} images", min(cold), "s",
                    "sha256sum of the outputs", hashing, min(cold) / hashing,
                    "<= 1.0 s" if is_largest else "",
                    min(cold) <= 1.0 if is_largest else None))


def throughput(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """Target 3: images/s against the minimal client, zero latency, 64 in flight.

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
                    "minimal httpx client", base_rate, ours_rate / base_rate, ">= 0.80",
                    ours_rate / base_rate >= 0.8))


def latency_bound(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """Target 4: wall time within 10% of the ideal (mean of 2 runs), at most 4 polls
    per image."""
    count, jobs, latency = sizes.latency_images, sizes.latency_jobs, sizes.latency
    seconds, polls = [], []
    for attempt in range(2):
        manifest = make_project(scratch / f"latency-{attempt}", count, jobs,
                                f"latency{attempt}")
        emulator.configure(latency)
        result = run([CLI, "build", "-q", "-f", str(manifest)],
                     env=cli_env(emulator, scratch / f"latency-cache-{attempt}"))
        assert result.code == 0, "the latency build failed"
        seconds.append(result.seconds)
        polls.append(emulator.stats()["status_polls"] / count)
    ideal = math.ceil(count / jobs) * latency
    wall = statistics.mean(seconds)
    rows.append(Row(f"latency-bound, {count} images, {latency:g} s, jobs {jobs} (mean of 2)",
                    wall, "s", "ideal ceil(n/jobs) x latency", ideal, wall / ideal, "<= 1.10",
                    wall / ideal <= 1.10))
    per_image = max(polls)
    rows.append(Row("  status polls per image", per_image, "polls", target="<= 4",
                    ok=per_image <= 4))


def scale_and_more(rows: list[Row], sizes: Sizes, emulator: Emulator, scratch: Path) -> None:
    """Targets 5, 2 and 6 on the same sets: scale, no-op at scale, restore."""
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
        rows.append(Row(f"  peak RSS at {count} images", result.peak_mb, "MB", target="<= 250 MB",
                        ok=result.peak_mb <= 250))
        largest = index == len(sizes.scale) - 1
        noop(rows, sizes, manifest, count, env, scratch, largest)
        if largest:
            restore(rows, manifest, count, env, scratch)
    ratio = per_image[1] / per_image[0]
    rows.append(Row(f"scale: time per image at {sizes.scale[1]} vs {sizes.scale[0]}",
                    per_image[1] * 1000, "ms", f"per image at {sizes.scale[0]}",
                    per_image[0] * 1000, ratio, "<= 1.30", ratio <= 1.3))


def restore(rows: list[Row], manifest: Path, count: int, env: dict[str, str],
            scratch: Path) -> None:
    """Target 6: pull of every deleted output from the cache vs cp -r of the same bytes.

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


def table(rows: list[Row], mode: str) -> str:
    """The rows as a Markdown table."""
    lines = [f"assetbuild benchmarks ({mode}) on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}",
             "", "| figure | value | baseline | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        base = f"{row.baseline} {row.baseline_value:.3g}" if row.baseline_value else row.baseline
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        met = {True: "yes", False: "**NO**", None: ""}[row.ok]
        lines.append(f"| {row.figure} | {row.value:.3g} {row.unit} | {base} | {ratio} | "
                     f"{row.target} | {met} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, exit 1 if a target was missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rows: list[Row] = []
    startup(rows, sizes.noop_repeats)
    emulator = Emulator()
    try:
        with workspace() as scratch:
            throughput(rows, sizes, emulator, scratch)
            latency_bound(rows, sizes, emulator, scratch)
            scale_and_more(rows, sizes, emulator, scratch)
            remote_store(rows, sizes, emulator, scratch)
    finally:
        emulator.close()
    print(table(rows, "quick" if args.quick else "full"))
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


if __name__ == "__main__":
    sys.exit(main())
