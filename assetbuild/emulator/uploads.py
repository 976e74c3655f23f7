"""The emulator's upload endpoint, with the platform's rules (its client scripts):
one multipart ``file`` part; at most 50 MB (413); empty files refused; WebP refused
with 422; spaces in the file name rewritten. Uploads are kept in memory and served
back at their URL."""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from assetbuild._types import MAX_UPLOAD_BYTES
from assetbuild.emulator.contract import error
from assetbuild.formats import sniff

if TYPE_CHECKING:
    from starlette.requests import Request



class UploadStore:
    """What was uploaded, by digest and name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        self.received: list[tuple[str, str, int]] = []
        """(file name as sent, content type, bytes) of every upload accepted."""

    async def receive(self, request: Request, *, platform: bool) -> Response:
        """Take one upload and answer its hosted URL (``platform``: in the platform's
        answer shape)."""
        async with request.form() as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return error(400, "Input validation failed: a multipart 'file' field is "
                              "required.")
            data = await upload.read()
            sent_name = upload.filename or "upload"
            content_type = upload.content_type or ""
        refused = _refusal(data, content_type)
        if refused is not None:
            return refused
        name = sent_name.replace(" ", "_")
        digest = hashlib.sha256(data).hexdigest()[:32]
        with self._lock:
            self._files[digest] = data
            self.received.append((sent_name, content_type, len(data)))
        url = f"{request.base_url}uploads/{digest}/{name}"
        if platform:
            return JSONResponse({"status": "success", "url": url, "filename": name,
                                 "size": len(data)})
        return JSONResponse({"url": url, "result_urls": [url]})

    def serve(self, request: Request) -> Response:
        """An uploaded file, at its URL."""
        data = self._files.get(request.path_params["digest"])
        if data is None:
            return error(404, "No such upload.")
        return Response(data, media_type="application/octet-stream")

    def count(self) -> int:
        """How many uploads were accepted."""
        return len(self.received)


def _refusal(data: bytes, content_type: str) -> Response | None:
    if not data:
        return error(400, "Input validation failed: the file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        return error(413, "File too large: the upload takes at most 50 MB.")
    found = sniff(data[:16])
    if content_type == "image/webp" or (found is not None and not found.uploadable):
        return error(422, "Unsupported file type: WebP. Convert it to JPG or PNG first.")
    return None
