"""What the benchmarks share: running a command for its wall time and peak memory, the
emulator served over loopback, a generated project, and the table of figures."""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("assetbuild"))


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
