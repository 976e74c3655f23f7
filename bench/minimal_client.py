"""The throughput baseline: the least a client can do (httpx, async, nothing else).

submit -> poll -> download -> write, ``--jobs`` at a time, against a SEE2AI
endpoint. No hashing, journal, cache, lockfile or checks: what is left is the
floor that assetbuild's own work is measured against.

    python bench/minimal_client.py BASE_URL COUNT OUT_DIR [--jobs 64]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httpx

ACTION = "/api/v1/actions/see2ai_image_generation_v1"


async def one(client: httpx.AsyncClient, index: int, out: Path, gate: asyncio.Semaphore) -> None:
    """Generate image ``index`` and write it to ``out``."""
    async with gate:
        body = {"prompt": f"tile {index} of the throughput set", "resolution": "1K",
                "aspect_ratio": "1:1", "input_urls": []}
        task = (await client.post(f"{ACTION}/async", json=body)).json()
        while True:
            status = (await client.get(f"{ACTION}/status/{task['task_id']}")).json()
            if status["state"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
    image = await client.get(status["result_urls"][0])
    (out / f"{index}.png").write_bytes(image.content)


async def main(base_url: str, count: int, out: Path, jobs: int) -> None:
    """Generate ``count`` images."""
    out.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(jobs)
    # The same pool size as assetbuild's client: httpcore's pool costs grow with it.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60,
                                 headers={"Authorization": "Bearer sk-bench"}) as client:
        await asyncio.gather(*(one(client, i, out, gate) for i in range(count)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--jobs", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.base_url, args.count, args.out, args.jobs))
