"""The emulator's side of the contract: input validation, error bodies, cut responses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetbuild._types import ASPECT_RATIOS, MAX_PROMPT_CHARS, RESOLUTIONS
from assetbuild.emulator.asgi import ABORT_EXTENSION, Receive, Scope, Send

INPUT_FIELDS = {"prompt", "input_urls", "image_input", "aspect_ratio", "resolution"}


class TruncatedResponse(Response):
    """Announces the full length, sends half, then cuts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        data = bytes(self.body)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"image/png"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data[: len(data) // 2],
                    "more_body": True})
        abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
        if abort is not None:
            abort()
            await asyncio.sleep(0)
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def validate_input(body: Any) -> str | None:
    """Why ``body`` is not a valid ImageGenerationInput, or None if it is."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - INPUT_FIELDS)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return "prompt is required and must be a string"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"prompt is longer than {MAX_PROMPT_CHARS} characters"
    for name in ("input_urls", "image_input"):
        urls = body.get(name)
        if urls is None:
            continue
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            return f"{name} must be a list of strings or null"
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return f"{name} must hold public http(s) URLs, not {url[:80]!r}"
    if body.get("aspect_ratio", "auto") not in ASPECT_RATIOS:
        return f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}"
    if body.get("resolution", "2K") not in RESOLUTIONS:
        return f"resolution must be one of {', '.join(RESOLUTIONS)}"
    return None


def warnings_for(body: dict[str, Any]) -> list[str] | None:
    if len(body["prompt"].split()) < 4:
        return ["The prompt is very short; describe subject, style and composition."]
    return None


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, bad multipart) in the API's error shape."""
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, str(exc.detail), headers=exc.headers)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
