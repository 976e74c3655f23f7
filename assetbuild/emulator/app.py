"""The SEE2AI emulator: the vendor's four endpoints as a Starlette app, with faults.

It validates input as the vendor documents it, moves tasks pending -> processing ->
completed/failed over a configurable latency, fills the documented output fields,
serves real placeholder images, and counts what it received so tests can check
what a client did. Prompt markers make outcomes deterministic in tests:
``[[fail]]`` fails the task, ``[[results=N]]`` returns N images, ``[[lost]]`` makes the
API forget the task as soon as it has answered the submit (its status answers 404).
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assetbuild._types import (
    IMAGE_ACTION,
    UPLOAD_ACTION,
)
from assetbuild.emulator.asgi import ABORT_EXTENSION, Receive, Scope, Send
from assetbuild.emulator.config import EmulatorConfig, EmulatorStats
from assetbuild.emulator.contract import (
    TruncatedResponse,
    error,
    http_exception,
    validate_input,
    warnings_for,
)
from assetbuild.emulator.dialect import PLATFORM_NO_BALANCE, as_platform
from assetbuild.emulator.images import placeholder_png, plain_png
from assetbuild.emulator.uploads import UploadStore

COST_POINTS = {"1K": 10, "2K": 20, "4K": 40}
OUTPUT_TOKENS = {"1K": 1290, "2K": 2580, "4K": 5160}
_RESULTS_MARKER = re.compile(r"\[\[results=(\d+)\]\]")


EMULATOR_MARK = "assetbuild_emulator"
"""A field of every task answer of the emulator: placeholders never pass for real images,
whatever URL the emulator was reached at."""


class ConnectionDropped(Exception):
    """Raised in process where a socket server would drop the connection."""


@dataclass
class _Task:
    task_id: str
    request: dict[str, Any]
    submitted: float
    duration: float
    fails: bool
    results: int
    variant: int = 0
    """Which picture of its prompt the task draws: the platform draws another for
    each task of the same spec, so the emulator does too (drawn from the task id)."""
    observed_terminal: bool = False
    answered: float | None = None
    """When the submit's answer was handed to the server (monotonic clock)."""

    def state(self, now: float) -> str:
        elapsed = now - self.submitted
        if elapsed >= self.duration:
            return "failed" if self.fails else "completed"
        return "pending" if elapsed < self.duration * 0.2 else "processing"


class Emulator:
    """The emulator's state and its ASGI app (``emulator.app``)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stats = EmulatorStats()
        self._random = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self.uploads = UploadStore()
        base = f"/api/v1/actions/{IMAGE_ACTION}"
        self._starlette = Starlette(routes=[
            Route(base, self._submit_sync, methods=["POST"]),
            Route(f"{base}/async", self._submit_async, methods=["POST"]),
            Route(f"{base}/status/{{task_id}}", self._status, methods=["GET"]),
            Route(f"/api/v1/actions/{UPLOAD_ACTION}", self._upload, methods=["POST"]),
            Route("/files/{task_id}/{index:int}.png", self._file, methods=["GET"]),
            Route("/uploads/{digest}/{name}", self.uploads.serve, methods=["GET"]),
            Route("/_emulator/stats", self._get_stats, methods=["GET"]),
            Route("/_emulator/config", self._set_config, methods=["POST"]),
            Route("/_emulator/reset", self._reset, methods=["POST"]),
        ], exception_handlers={HTTPException: http_exception})

    def configure(self, **changes: Any) -> None:
        """Change latency or faults while running."""
        self.config = self.config.update(changes)
        if "seed" in changes:
            self._random = random.Random(self.config.seed)

    def expire(self, task_id: str) -> None:
        """Forget a task, as the platform lets old results go: its status and its result
        URLs answer 404 from now on."""
        with self._lock:
            self._tasks.pop(task_id, None)

    def submit_times(self) -> dict[str, tuple[str, float, float | None]]:
        """task id -> (prompt, created, answered) for every accepted submit (monotonic)."""
        with self._lock:
            return {t.task_id: (t.request["prompt"], t.submitted, t.answered)
                    for t in self._tasks.values()}

    def reset(self) -> None:
        """Forget every task and count."""
        with self._lock:
            self.stats = EmulatorStats()
            self._tasks.clear()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: connection-level faults first, then the routes."""
        path = str(scope.get("path", ""))
        control = path.startswith("/_emulator/")
        if scope["type"] == "http" and not control and self._roll(self.config.drop_rate):
            self._count_fault("drop")
            abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
            if abort is None:
                raise ConnectionDropped(path)
            abort()
            await asyncio.sleep(0)
            return
        await self._starlette(scope, receive, send)

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self.stats.faults[kind] += 1

    def _http_fault(self, request: Request, *, allow_504: bool = False) -> Response | None:
        if self._roll(self.config.rate_429):
            self._count_fault("429")
            return error(429, "Provider rate limit exceeded.",
                          headers={"Retry-After": f"{self.config.retry_after:g}"})
        if self._roll(self.config.rate_500):
            self._count_fault("500")
            return error(500, "SEE2AI image generation submit, polling, or re-hosting failed.")
        if allow_504 and self._roll(self.config.rate_504):
            self._count_fault("504")
            return error(504, "Polling timed out before the task reached a terminal state.")
        return None

    def _auth_error(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return error(401, "Provider authentication failed: no bearer API key.")
        if self.config.api_key is not None and key.strip() != self.config.api_key:
            return error(401, "Provider authentication failed: invalid API key.")
        return None

    async def _create_task(self, request: Request) -> tuple[_Task | None, Response | None]:
        fault = self._http_fault(request)
        if fault:
            return None, fault
        task, refused = await self._validated_task(request)
        if refused is not None:
            with self._lock:
                self.stats.refusals[refused.status_code] += 1
        return task, refused

    async def _validated_task(self, request: Request) -> tuple[_Task | None, Response | None]:
        refused = self._auth_error(request)
        if refused:
            return None, refused
        try:
            body = await request.json()
        except ValueError:
            return None, error(400, "Input validation failed: the body is not JSON.")
        problem = validate_input(body)
        if problem:
            return None, error(400, f"Input validation failed: {problem}")
        cost = COST_POINTS[body.get("resolution", "2K")]
        with self._lock:
            if self.config.balance is not None and self.config.balance < cost:
                if self.config.dialect == "platform":
                    return None, error(401, PLATFORM_NO_BALANCE)
                return None, error(402, "Insufficient balance.")
            if self.config.balance is not None:
                self.config.balance -= cost
            task = self._new_task(body)
        return task, None

    def _new_task(self, body: dict[str, Any]) -> _Task:
        prompt = body["prompt"]
        marker = _RESULTS_MARKER.search(prompt)
        task_id = uuid.uuid4().hex
        task = _Task(
            task_id=f"emu-{task_id}",
            request=body,
            submitted=time.monotonic(),
            duration=self._random.uniform(self.config.latency_min,
                                          max(self.config.latency_min, self.config.latency_max)),
            fails="[[fail]]" in prompt or self._roll(self.config.failure_rate),
            results=min(int(marker.group(1)), 8) if marker else 1,
            variant=int(task_id[:8], 16),
        )
        self._tasks[task.task_id] = task
        stats = self.stats
        stats.submits += 1
        stats.submits_by_prompt[prompt] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        return task

    async def _submit_async(self, request: Request) -> Response:
        task, refused = await self._create_task(request)
        if refused:
            return refused
        assert task is not None
        if self._roll(self.config.hang_rate):
            self._count_fault("hang")
            await asyncio.sleep(self.config.hang_seconds)
        task.answered = time.monotonic()
        if "[[lost]]" in task.request["prompt"]:
            self.expire(task.task_id)
        answer = {"task_id": task.task_id, "status": "pending", "state": "pending"}
        return JSONResponse(self._in_dialect(answer))

    def _in_dialect(self, answer: dict[str, Any]) -> dict[str, Any]:
        return as_platform(answer) if self.config.dialect == "platform" else answer

    async def _submit_sync(self, request: Request) -> Response:
        task, refused = await self._create_task(request)
        if refused:
            return refused
        assert task is not None
        if task.duration > 60:
            return error(504, "Polling timed out before the task reached a terminal state.")
        await asyncio.sleep(task.duration)
        return JSONResponse(self._in_dialect(self._task_output(task, str(request.base_url))))

    async def _status(self, request: Request) -> Response:
        refused = self._auth_error(request) or self._http_fault(request, allow_504=True)
        if refused:
            return refused
        with self._lock:
            self.stats.status_polls += 1
            task = self._tasks.get(request.path_params["task_id"])
        if task is None:
            return error(404, "Task not found.")
        if self.config.slow_status:
            self._count_fault("slow-status")
            await asyncio.sleep(self.config.slow_status)
        return JSONResponse(self._in_dialect(self._task_output(task, str(request.base_url))))

    def _task_output(self, task: _Task, base_url: str) -> dict[str, Any]:
        state = task.state(time.monotonic())
        output: dict[str, Any] = {"task_id": task.task_id, "state": state, "status": state,
                                  "source": "see2ai", "model": "see2ai-image-emulator"}
        if self.config.announce:
            output[EMULATOR_MARK] = True
        if state in ("completed", "failed"):
            self._settle(task, state)
        if state == "failed":
            output["error"] = "Emulated generation failure."
            output["result_urls"] = []
        if state != "completed":
            return output
        resolution = task.request.get("resolution", "2K")
        input_tokens = max(1, len(task.request["prompt"]) // 4)
        output.update(
            result_urls=[f"{base_url}files/{task.task_id}/{i}.png" for i in range(task.results)],
            cost_points=COST_POINTS[resolution],
            cost_time=int(task.duration * 1000),
            input_tokens=input_tokens,
            output_tokens=OUTPUT_TOKENS[resolution],
            total_tokens=input_tokens + OUTPUT_TOKENS[resolution],
            provider_config_id=None,
            warnings=warnings_for(task.request),
        )
        return output

    def _settle(self, task: _Task, state: str) -> None:
        """Charge a task once it is seen to end, as the platform does: a success costs
        its price; a failure is refunded (its price was set aside at submit)."""
        cost = COST_POINTS[task.request.get("resolution", "2K")]
        with self._lock:
            if task.observed_terminal:
                return
            task.observed_terminal = True
            self.stats.in_flight -= 1
            if state == "completed":
                self.stats.points_spent += cost
            elif self.config.balance is not None:
                self.config.balance += cost

    async def _file(self, request: Request) -> Response:
        refused = self._http_fault(request)
        if refused:
            return refused
        task = self._tasks.get(request.path_params["task_id"])
        index = request.path_params["index"]
        if task is None or index >= task.results or task.state(time.monotonic()) != "completed":
            return error(404, "No such file.")
        with self._lock:
            self.stats.downloads += 1
        body = task.request
        draw = plain_png if self.config.plain_images else placeholder_png
        data = await asyncio.to_thread(draw, body["prompt"],
                                       body.get("aspect_ratio", "auto"),
                                       body.get("resolution", "2K"), index, task.variant)
        if self._roll(self.config.truncate_rate):
            self._count_fault("truncate")
            return TruncatedResponse(data)
        return Response(data, media_type="image/png")

    async def _upload(self, request: Request) -> Response:
        refused = self._auth_error(request) or self._http_fault(request)
        if refused:
            return refused
        answer = await self.uploads.receive(request, platform=self.config.dialect == "platform")
        if answer.status_code == 200:
            with self._lock:
                self.stats.uploads += 1
        return answer

    async def _get_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.to_json())

    async def _set_config(self, request: Request) -> Response:
        try:
            self.configure(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return error(400, str(exc))
        return JSONResponse(asdict(self.config) | {"api_key": None})

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})


