"""Remote stores for the team tests: a real S3 server on loopback (moto's), or a shared
folder; and "machines": project folders with their own state and result cache."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult, ProjectDir, RunCli


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server on a loopback port, with one bucket."""

    endpoint: str
    bucket: str

    def environ(self) -> dict[str, str]:
        """What a machine's environment says to reach it (the clouds' own variables)."""
        return {"AWS_ACCESS_KEY_ID": "team-access-key", "AWS_SECRET_ACCESS_KEY": "team-secret-x",
                "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ALLOW_HTTP": "true"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's threaded S3 server for the whole session, with a bucket ``team``."""
    import httpx
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.put(f"{endpoint}/team", timeout=30).raise_for_status()  # CreateBucket
    try:
        yield S3Server(endpoint, "team")
    finally:
        server.stop()


@pytest.fixture(params=["file", "s3"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh remote: a shared folder, or a fresh prefix of the S3 bucket (whose
    credentials the environment holds)."""
    if request.param == "file":
        return f"file://{tmp_path / 'shared-remote'}"
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    return f"s3://{server.bucket}/{request.node.name.replace('[', '-').rstrip(']')}"


@dataclass(frozen=True)
class Machine:
    """One machine of the team: its checkout and its own user cache."""

    project: ProjectDir
    cache: Path

    def run(self, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, *args: str) -> CliResult:
        """The CLI in process, as this machine (its cache), on its manifest."""
        monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(self.cache))
        return run_cli(args[0], "-f", str(self.project.manifest), *args[1:])

    def start(self, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        """The CLI as its own process (``build`` by default)."""
        command = [sys.executable, "-m", "assetbuild", *(args or ("build",)), "-f",
                   str(self.project.manifest), "-q"]
        return subprocess.Popen(command, env={**env, "ASSETBUILD_CACHE_DIR": str(self.cache)},
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[list[Machine]]:
    """A factory's worth of machines: ``machines[i]`` is made on first use."""
    made = [Machine(ProjectDir(_folder(tmp_path / f"machine-{i}" / "checkout")),
                    tmp_path / f"machine-{i}" / "user-cache") for i in range(4)]
    yield made


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path.resolve()


def clone_checkout(source: Machine, target: Machine, *, outputs: bool = False) -> None:
    """What git gives ``target`` of ``source``'s checkout: the manifest, the lockfile
    and (``outputs``) the generated files; never the state folder."""
    for name in ("assetbuild.toml", "assetbuild.lock"):
        if (source.project.root / name).exists():
            shutil.copy(source.project.root / name, target.project.root / name)
    if outputs:
        shutil.copytree(source.project.root / "generated", target.project.root / "generated")


def process_env(base_url: str, remote: str) -> dict[str, str]:
    """A machine's environment for a build against ``base_url`` with ``remote``."""
    return {**os.environ, "SEE2AI_BASE_URL": base_url, "SEE2AI_API_KEY": "sk-team",
            "ASSETBUILD_REMOTE": remote}


class SlowProxy:
    """A TCP proxy on loopback that holds every connection ``delay`` seconds before
    it forwards a byte: a store that answers, but too late."""

    def __init__(self, upstream: str, delay: float) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        if self._closed.wait(self._delay):
            client.close()
            return
        with client, socket.create_connection(self._upstream) as server:
            threading.Thread(target=_pipe, args=(server, client), daemon=True).start()
            _pipe(client, server)

    def close(self) -> None:
        """Stop accepting, and drop the connections still held."""
        self._closed.set()
        self._listener.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass


@pytest.fixture
def slow_s3(s3_server: S3Server) -> Iterator[S3Server]:
    """The session's S3 server behind a proxy that answers three seconds late."""
    proxy = SlowProxy(s3_server.endpoint, delay=3.0)
    try:
        yield S3Server(proxy.endpoint, s3_server.bucket)
    finally:
        proxy.close()
