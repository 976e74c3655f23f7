"""The emulator against the vendor's contract: validation, lifecycle, images, accounting."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from assetbuild.emulator import Emulator, EmulatorConfig, EmulatorTransport
from assetbuild.emulator.images import image_size
from assetbuild.emulator.server import BackgroundEmulator

BASE = "http://emu.test"
SUBMIT = f"{BASE}/api/v1/actions/see2ai_image_generation_v1/async"
KEY = {"Authorization": "Bearer sk-test"}


def call(emulator: Emulator, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=EmulatorTransport(emulator)) as client:
            return await client.request(method, url, **kwargs)
    return asyncio.run(go())


def status_of(emulator: Emulator, task_id: str) -> dict[str, Any]:
    url = f"{BASE}/api/v1/actions/see2ai_image_generation_v1/status/{task_id}"
    response = call(emulator, "GET", url, headers=KEY)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("body", "expected"), [
    ({"prompt": "x", "seed": 1}, "unknown field(s): seed"),
    ({"aspect_ratio": "1:1"}, "prompt is required"),
    ({"prompt": 5}, "prompt is required and must be a string"),
    ({"prompt": "x" * 20_001}, "longer than 20000"),
    ({"prompt": "x", "aspect_ratio": "21:9"}, "aspect_ratio must be one of"),
    ({"prompt": "x", "resolution": "8K"}, "resolution must be one of"),
    ({"prompt": "x", "input_urls": "https://a/b.png"}, "input_urls must be a list"),
    ({"prompt": "x", "input_urls": ["file:///etc/passwd"]}, "public http(s) URLs"),
    ({"prompt": "x", "image_input": ["ftp://a/b"]}, "image_input must hold public"),
    ([1, 2], "must be a JSON object"),
])
def test_invalid_input_is_400(body: Any, expected: str) -> None:
    emulator = Emulator()
    response = call(emulator, "POST", SUBMIT, json=body, headers=KEY)
    assert response.status_code == 400
    assert expected in response.json()["detail"]
    assert emulator.stats.submits == 0


def test_valid_input_variants_are_accepted() -> None:
    emulator = Emulator()
    for body in ({"prompt": "x"}, {"prompt": "x", "input_urls": None},
                 {"prompt": "x", "image_input": ["https://e.com/a.png"], "resolution": "4K"}):
        assert call(emulator, "POST", SUBMIT, json=body, headers=KEY).status_code == 200
    assert emulator.stats.submits == 3


def test_auth_is_required() -> None:
    emulator = Emulator(EmulatorConfig(api_key="sk-right"))
    assert call(emulator, "POST", SUBMIT, json={"prompt": "x"}).status_code == 401
    wrong = call(emulator, "POST", SUBMIT, json={"prompt": "x"}, headers=KEY)
    assert wrong.status_code == 401 and "invalid API key" in wrong.json()["detail"]
    right = call(emulator, "POST", SUBMIT, json={"prompt": "x"},
                 headers={"Authorization": "Bearer sk-right"})
    assert right.status_code == 200


def test_lifecycle_and_documented_output_fields() -> None:
    emulator = Emulator(EmulatorConfig(latency_min=0.3, latency_max=0.3))
    body = {"prompt": "A calm hero banner for Acme", "aspect_ratio": "16:9", "resolution": "1K"}
    submitted = call(emulator, "POST", SUBMIT, json=body, headers=KEY).json()
    assert submitted["state"] == submitted["status"] == "pending"
    assert status_of(emulator, submitted["task_id"])["state"] == "pending"
    time.sleep(0.1)
    assert status_of(emulator, submitted["task_id"])["state"] == "processing"
    time.sleep(0.25)
    done = status_of(emulator, submitted["task_id"])
    assert done["state"] == "completed"
    assert done["cost_points"] == 10 and done["cost_time"] == 300
    assert done["total_tokens"] == done["input_tokens"] + done["output_tokens"]
    assert done["model"] and done["source"] == "see2ai"
    image = call(emulator, "GET", done["result_urls"][0])
    assert Image.open(io.BytesIO(image.content)).size == (1024, 576)
    again = call(emulator, "POST", SUBMIT, json=body, headers=KEY).json()
    time.sleep(0.35)
    second = call(emulator, "GET", status_of(emulator, again["task_id"])["result_urls"][0])
    assert second.content != image.content, "another task of the spec: another picture"
    assert Image.open(io.BytesIO(second.content)).size == (1024, 576)
    assert call(emulator, "GET", done["result_urls"][0]).content == image.content, (
        "one task's result is always the same bytes")
    assert emulator.stats.max_in_flight == 1 and emulator.stats.in_flight == 0


def test_plain_images_have_the_right_size() -> None:
    emulator = Emulator(EmulatorConfig(plain_images=True))
    task = call(emulator, "POST", SUBMIT, json={"prompt": "p", "aspect_ratio": "9:16",
                                               "resolution": "2K"}, headers=KEY).json()
    url = status_of(emulator, task["task_id"])["result_urls"][0]
    with Image.open(io.BytesIO(call(emulator, "GET", url).content)) as image:
        assert image.size == (1152, 2048)


@pytest.mark.parametrize(("aspect", "resolution", "size"), [
    ("auto", "1K", (1024, 1024)), ("16:9", "2K", (2048, 1152)), ("9:16", "1K", (576, 1024)),
    ("4:3", "4K", (4096, 3072)), ("3:4", "2K", (1536, 2048)), ("1:1", "4K", (4096, 4096)),
])
def test_image_sizes_follow_resolution_and_aspect(
    aspect: str, resolution: str, size: tuple[int, int]
) -> None:
    assert image_size(aspect, resolution) == size


def test_failures_markers_and_404() -> None:
    emulator = Emulator()
    failed = call(emulator, "POST", SUBMIT, json={"prompt": "x [[fail]]"}, headers=KEY).json()
    status = status_of(emulator, failed["task_id"])
    assert status["state"] == "failed" and status["error"]
    several = call(emulator, "POST", SUBMIT, json={"prompt": "x [[results=3]]"},
                   headers=KEY).json()
    assert len(status_of(emulator, several["task_id"])["result_urls"]) == 3
    gone = call(emulator, "GET", f"{BASE}/api/v1/actions/see2ai_image_generation_v1/status/nope",
                headers=KEY)
    assert gone.status_code == 404


def test_balance_runs_out_with_402() -> None:
    emulator = Emulator(EmulatorConfig(balance=25))
    answers = [call(emulator, "POST", SUBMIT, json={"prompt": "x", "resolution": "1K"},
                    headers=KEY) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 402, 402]
    assert emulator.stats.points_spent == 0, "nothing is charged before a task succeeds"
    for answer in answers[:2]:
        assert status_of(emulator, answer.json()["task_id"])["state"] == "completed"
    assert emulator.stats.points_spent == 20


def test_only_successful_tasks_are_charged_and_failures_refunded() -> None:
    emulator = Emulator(EmulatorConfig(balance=10, failure_rate=1.0))
    for _ in range(3):  # each failure gives its 10 points back, so the balance holds
        answer = call(emulator, "POST", SUBMIT, json={"prompt": "x", "resolution": "1K"},
                      headers=KEY)
        assert answer.status_code == 200
        assert status_of(emulator, answer.json()["task_id"])["state"] == "failed"
    assert emulator.stats.points_spent == 0


def test_task_answers_say_they_come_from_the_emulator() -> None:
    for announce in (True, False):
        emulator = Emulator(EmulatorConfig(announce=announce))
        answer = call(emulator, "POST", SUBMIT, json={"prompt": "x"}, headers=KEY).json()
        assert ("assetbuild_emulator" in status_of(emulator, answer["task_id"])) is announce


def test_rate_limits_carry_retry_after() -> None:
    emulator = Emulator(EmulatorConfig(rate_429=1.0, retry_after=7))
    response = call(emulator, "POST", SUBMIT, json={"prompt": "x"}, headers=KEY)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert emulator.stats.submits == 0 and emulator.stats.faults["429"] == 1


def test_upload_and_sync_endpoint() -> None:
    emulator = Emulator()
    uploaded = call(emulator, "POST", f"{BASE}/api/v1/actions/see2ai_storage_upload_v1",
                    files={"file": ("a.png", b"bytes", "image/png")}, headers=KEY).json()
    assert uploaded["url"] == uploaded["result_urls"][0]
    assert call(emulator, "GET", uploaded["url"]).content == b"bytes"
    done = call(emulator, "POST", f"{BASE}/api/v1/actions/see2ai_image_generation_v1",
                json={"prompt": "sync please"}, headers=KEY).json()
    assert done["state"] == "completed" and done["result_urls"]


def test_control_endpoints_over_loopback() -> None:
    emulator = Emulator()
    with BackgroundEmulator(emulator) as served, httpx.Client(base_url=served.base_url) as client:
        assert client.post("/_emulator/config", json={"rate_500": 1.0}).status_code == 200
        assert client.post("/api/v1/actions/see2ai_image_generation_v1/async",
                           json={"prompt": "x"}, headers=KEY).status_code == 500
        assert client.post("/_emulator/config", json={"bogus": 1}).status_code == 400
        stats = client.get("/_emulator/stats").json()
        assert stats["faults"] == {"500": 1} and stats["submits"] == 0
        client.post("/_emulator/reset")
        assert client.get("/_emulator/stats").json()["faults"] == {}


def test_the_config_endpoint_takes_the_command_lines_names() -> None:
    emulator = Emulator()
    with BackgroundEmulator(emulator) as served, httpx.Client(base_url=served.base_url) as client:
        changed = client.post("/_emulator/config", json={"latency": 0.5, "rate-429": 0.1})
        assert changed.status_code == 200
        assert (emulator.config.latency_min, emulator.config.latency_max) == (0.5, 0.5)
        assert emulator.config.rate_429 == 0.1
        unknown = client.post("/_emulator/config", json={"latncy": 1})
        assert unknown.status_code == 400
        assert "latncy" in unknown.text and "latency_max" in unknown.text


def _emulator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assetbuild", "emulator", *args],
                          capture_output=True, text=True, timeout=30, check=False)


def test_the_emulator_command_explains_and_checks_its_options() -> None:
    helped = _emulator_cli("--help")
    options = re.findall(r"^  (--[a-z0-9-]+)(.*)$", helped.stdout, re.MULTILINE)
    assert len(options) > 15
    undocumented = [name for name, rest in options if not rest.strip()]
    assert not undocumented, f"options without help: {undocumented}"
    backwards = _emulator_cli("--latency", "5", "--latency-max", "1")
    assert backwards.returncode == 2 and "--latency-max 1 is below --latency 5" in backwards.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        busy = _emulator_cli("--port", port)
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "SEE2AI emulator on" not in busy.stderr and "Traceback" not in busy.stderr


def test_the_emulator_command_logs_requests_when_asked() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    served = subprocess.Popen(
        [sys.executable, "-m", "assetbuild", "emulator", "--port", str(port), "--log"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_emulator/stats", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        assert answer.status_code == 200
    finally:
        served.terminate()
        out, _ = served.communicate(timeout=20)
    assert "GET /_emulator/stats" in out
