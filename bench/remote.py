"""The remote store's benchmarks, on moto's S3 server over loopback: a pull of every
output from the remote beside a plain obstore copy of the same objects, and what a
remote lookup adds to a build whose images the team has all published already."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

COPY_SCRIPT = """
import asyncio, os, sys
import obstore
from obstore.store import from_url

async def main(url, target):
    store = from_url(url, client_options={"allow_http": True})
    paths = [meta["path"] for batch in obstore.list(store, prefix="v1/blobs/") for meta in batch]
    os.makedirs(target, exist_ok=True)
    gate = asyncio.Semaphore(16)
    async def one(path):
        async with gate:
            data = await (await obstore.get_async(store, path)).bytes_async()
        with open(os.path.join(target, path.rsplit("/", 1)[-1]), "wb") as handle:
            handle.write(bytes(data))
    await asyncio.gather(*(one(p) for p in paths))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on a free loopback port with a bucket ``bench``; the environment
    that reaches it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.put(f"{endpoint}/bench", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    finally:
        server.terminate()
        server.wait(10)


def remote_rows(add: Callable[..., None], cli: str, manifest: Path, count: int,
                env: dict[str, str], scratch: Path) -> None:
    """Publish ``count`` built images to the remote, then time a second machine's pull
    from it against a plain obstore copy, and a branch's build from it against the same
    build from the local cache."""
    with s3_server() as aws:
        url = "s3://bench/team"
        team = {**env, **aws, "ASSETBUILD_REMOTE": url}
        published = _run([cli, "build", "-q", "-f", str(manifest)], {
            **team, "ASSETBUILD_CACHE_DIR": str(scratch / "publisher-cache")})
        assert published[1] == 0, "publishing to the remote failed"
        second = _machine(scratch / "second", manifest, lockfile=True)
        pull, code = _run([cli, "pull", "-q", "-f", str(second)], {
            **team, "ASSETBUILD_CACHE_DIR": str(scratch / "second-cache")})
        assert code == 0, "the pull from the remote failed"
        for _attempt in range(2):  # the baseline has no retries of its own
            copy, code = _run([sys.executable, "-c", COPY_SCRIPT, url, str(scratch / "copy")],
                              {**os.environ, **aws})
            if code == 0:
                break
            sys.stderr.write(f"the plain obstore copy exited {code}\n")
        assert code == 0, "the plain obstore copy failed twice"
        add(f"remote: pull {count} outputs from S3 on loopback (second machine)", pull, "s",
            "plain obstore copy of the blobs", copy, copy / pull, "report", None)
        branch = _machine(scratch / "branch", manifest, lockfile=False)
        from_remote, code = _run([cli, "build", "-q", "-f", str(branch)], {
            **team, "ASSETBUILD_CACHE_DIR": str(scratch / "branch-cache")})
        assert code == 0, "the branch build from the remote failed"
        local = _machine(scratch / "local", manifest, lockfile=False)
        from_cache, code = _run([cli, "build", "-q", "-f", str(local)], {
            **env, "ASSETBUILD_CACHE_DIR": str(scratch / "publisher-cache"),
            "ASSETBUILD_REMOTE": ""})
        assert code == 0, "the build from the local cache failed"
        add(f"remote: build {count} published images on a new branch", from_remote, "s",
            "the same build from the local cache", from_cache, from_cache / from_remote,
            f"report (+{(from_remote - from_cache) / count * 1000:.2f} ms per image)", None)


def _machine(folder: Path, manifest: Path, *, lockfile: bool) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(manifest, folder / "assetbuild.toml")
    if lockfile:
        shutil.copy(manifest.parent / "assetbuild.lock", folder / "assetbuild.lock")
    return folder / "assetbuild.toml"


def _run(cmd: list[str], env: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    if done.returncode:
        sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
    return time.perf_counter() - started, done.returncode
