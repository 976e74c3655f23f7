"""Reading what a server sends, within bounds: no answer may exhaust memory or time.

httpx decodes ``Content-Encoding`` before anything can count the bytes, and decodes
stacked encodings (``gzip, gzip``) one inside the other: a few kilobytes on the wire
can become gigabytes. Bodies are therefore read raw here and decoded by us, at most
one encoding (gzip or deflate), 64 KiB of output at a time, counting decoded bytes
against a cap as they appear.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import httpx

MAX_API_ANSWER = 4 * 1024 * 1024
"""The largest JSON answer (decoded) the client reads from the API."""
_STEP = 1 << 16


class BodyTooLarge(Exception):
    """A body passed its cap (decoded size)."""


class BadEncoding(Exception):
    """A body's ``Content-Encoding`` is stacked, unknown or corrupt."""


def _decoder(response: httpx.Response) -> zlib._Decompress | None:
    encodings = [e.strip().lower() for e in response.headers.get_list("content-encoding")
                 for e in e.split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    if not encodings:
        return None
    if len(encodings) > 1:
        raise BadEncoding(f"stacked content encodings ({', '.join(encodings[:4])}) "
                          "are refused")
    if encodings[0] in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encodings[0] == "deflate":
        return zlib.decompressobj()
    raise BadEncoding(f"unsupported content encoding {encodings[0][:40]!r}")


async def decoded_chunks(response: httpx.Response, cap: int,
                         raw_count: list[int] | None = None) -> AsyncIterator[bytes]:
    """The decoded body of a streamed ``response`` in chunks of at most 64 KiB; raise
    BodyTooLarge past ``cap`` decoded bytes. ``raw_count`` (a one-item list) is kept
    at the number of bytes received, for comparing with ``Content-Length``."""
    if response.is_stream_consumed:  # made whole in process (a test double): decoded
        body = response.content
        if len(body) > cap:
            raise BodyTooLarge(f"the answer is larger than {cap} bytes")
        if raw_count is not None:
            raw_count[0] += len(body)
        for start in range(0, len(body), _STEP):
            yield body[start:start + _STEP]
        return
    decoder = _decoder(response)
    total = 0
    async for raw in response.aiter_raw(_STEP):
        if raw_count is not None:
            raw_count[0] += len(raw)
        pending = raw
        while pending:
            if decoder is None:
                chunk, pending = pending, b""
            else:
                try:
                    chunk = decoder.decompress(pending, _STEP)
                except zlib.error as exc:
                    raise BadEncoding(f"the body cannot be decoded ({exc})") from None
                pending = decoder.unconsumed_tail
            total += len(chunk)
            if total > cap:
                raise BodyTooLarge(f"the answer is larger than {cap} bytes")
            if chunk:
                yield chunk
    if decoder is not None and not decoder.eof and total:
        raise BadEncoding("the compressed body ended early")


async def read_capped(response: httpx.Response, cap: int = MAX_API_ANSWER) -> bytes:
    """The whole decoded body of a streamed ``response``, at most ``cap`` bytes."""
    return b"".join([chunk async for chunk in decoded_chunks(response, cap)])


def with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A response like ``response`` whose (already decoded) content is ``body``."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request, extensions=response.extensions)
