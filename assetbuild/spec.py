"""What decides an image's pixels and what is sent for it, from one reading of its
references: the spec (hashed: :func:`image_spec`) and the request (sent:
:func:`image_request` with :func:`input_urls`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assetbuild.hashing import spec_document
from assetbuild.resolve import Reference, ResolvedImage


class InputMissing(LookupError):
    """A reference has no URL to send yet: a dependency not built, a file not uploaded."""


def reference_identity(ref: Reference, dependency_urls: Mapping[str, str | None]) -> dict[str, Any]:
    """What a reference contributes to the spec hash: a URL as written, a local file's
    content digest, another image's first locked result URL."""
    if ref.kind == "url":
        return {"url": ref.value}
    if ref.kind == "file":
        return {"file": ref.value, "sha256": ref.sha256}
    return {"image": ref.value, "url": dependency_urls.get(ref.value)}


def image_spec(
    image: ResolvedImage, provider: str, dependency_urls: Mapping[str, str | None]
) -> dict[str, Any]:
    """The spec document of ``image`` given the result URLs of its dependencies."""
    return spec_document(
        provider=provider,
        prompt=image.prompt,
        aspect_ratio=image.aspect_ratio,
        resolution=image.resolution,
        references=[reference_identity(r, dependency_urls) for r in image.references],
    )


def local_files(image: ResolvedImage) -> list[Reference]:
    """The references of ``image`` that are local files (uploaded before a submit)."""
    return [ref for ref in image.references if ref.kind == "file"]


def input_urls(image: ResolvedImage, dependency_urls: Mapping[str, str | None],
               uploaded: Mapping[str, str], *, preview: bool = False) -> list[str]:
    """The ``input_urls`` sent for ``image``, in the order its references are written:
    URLs as they are, another image's first result URL, a local file's hosted URL
    (``uploaded``: by content digest). With ``preview`` what is not known yet reads
    ``image:NAME`` or ``upload:PATH``; otherwise it raises InputMissing."""
    urls: list[str] = []
    for ref in image.references:
        if ref.kind == "url":
            url: str | None = ref.value
        elif ref.kind == "image":
            url = dependency_urls.get(ref.value)
        else:
            url = uploaded.get(ref.sha256 or "")
        if url is None:
            if not preview:
                raise InputMissing(f"{'image:' if ref.kind == 'image' else ''}{ref.value} "
                                   "has no URL to send yet")
            url = f"image:{ref.value}" if ref.kind == "image" else f"upload:{ref.value}"
        urls.append(url)
    return urls


def image_request(image: ResolvedImage, input_urls: list[str]) -> dict[str, Any]:
    """The JSON body sent to the image action for ``image`` (``input_urls`` in order)."""
    return {
        "prompt": image.prompt,
        "input_urls": input_urls,
        "aspect_ratio": image.aspect_ratio,
        "resolution": image.resolution,
    }
