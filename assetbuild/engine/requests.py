"""The body a submit sends: the image's request, with its local references uploaded
once per content and account (converted in a thread to a format the upload takes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assetbuild.errors import ImageFailed
from assetbuild.outcomes import BuildEvent, Reporter
from assetbuild.spec import InputMissing, image_request, input_urls, local_files
from assetbuild.uploads import prepare_upload

if TYPE_CHECKING:
    from pathlib import Path

    from assetbuild.cache import ResultCache
    from assetbuild.providers import Provider
    from assetbuild.providers.see2ai import See2AIClient
    from assetbuild.resolve import ResolvedImage


class Requests:
    """Makes the submit bodies of one build."""

    def __init__(self, root: Path, provider: Provider, cache: ResultCache,
                 client: Callable[[], See2AIClient],
                 dependency_urls: Callable[[ResolvedImage], dict[str, str | None]],
                 report: Reporter) -> None:
        self.root, self.provider, self.cache = root, provider, cache
        self._client, self._dependency_urls, self.report = client, dependency_urls, report

    async def of(self, image: ResolvedImage) -> dict[str, Any]:
        """The body a submit of ``image`` sends (uploading its local references)."""
        uploaded = {ref.sha256 or "": await self._uploaded(ref.value, ref.sha256 or "")
                    for ref in local_files(image)}
        try:
            urls = input_urls(image, self._dependency_urls(image), uploaded)
        except InputMissing as exc:
            raise ImageFailed(str(exc)) from None
        return image_request(image, urls)

    async def _uploaded(self, path: str, digest: str) -> str:
        """The hosted URL of a local reference: uploaded once per content and account."""
        url = self.cache.upload_url(self.provider.scope, digest)
        if url is None:
            try:
                file = await asyncio.to_thread(prepare_upload, self.root / path)
            except (OSError, ValueError) as exc:
                raise ImageFailed(f"reference {path} {exc}") from None
            if file.converted_from:
                self.report(BuildEvent("note", path, f"converted from {file.converted_from} "
                                       "to PNG for the upload (the platform refuses it)"))
            url = await self._client().upload(file)
            self.cache.remember_upload(self.provider.scope, digest, url)
        return url
