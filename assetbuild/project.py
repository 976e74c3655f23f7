"""The library API: load a manifest, plan, and build, with the objects the CLI uses.

>>> project = Project.load(Path("assetbuild.toml"))        # doctest: +SKIP
>>> plan = project.plan()                                   # doctest: +SKIP
>>> [item.status for item in plan.images]                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assetbuild.gcpause import collection_paused
from assetbuild.hashing import sha256_text
from assetbuild.journal import paid_tasks
from assetbuild.lockfile import Lockfile
from assetbuild.lockread import read_lockfile
from assetbuild.manifest import DEFAULT_MANIFEST, Manifest, parse_manifest, read_manifest_text
from assetbuild.memo import MEMO_FORMAT
from assetbuild.plan import Plan, locked_urls, make_plan, select_targets
from assetbuild.resolve import ResolvedImage, ResolvedManifest, resolve_manifest
from assetbuild.state import FileDigests, StateStore, choose_state_dir


@dataclass(frozen=True)
class _ResolvedMemo:
    """A resolution kept in the state folder, with the manifest text digest it is for."""

    manifest_sha256: str
    resolved: ResolvedManifest


@dataclass(frozen=True)
class _SpecHashMemo:
    """Spec hashes by image name, for the resolution named by ``token``."""

    token: str
    hashes: dict[str, str]


@dataclass(frozen=True)
class Project:
    """A loaded, validated and resolved manifest."""

    manifest: Manifest
    resolved: ResolvedManifest
    state_dir: Path
    """The state folder in use: ``.assetbuild/`` beside the manifest unless it cannot
    be trusted (:func:`assetbuild.state.choose_state_dir`)."""
    notices: tuple[str, ...] = ()
    """Warnings found while loading, for the caller to show."""

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MANIFEST,
             environ: Mapping[str, str] | None = None) -> Project:
        """Load and resolve the manifest at ``path``; raise ManifestError on any problem.

        A resolution is kept in the state folder and reused while the manifest's bytes
        and every file it read (prompt files, includes, references) are unchanged, so a
        no-op check of 10,000 images renders no template.
        """
        with collection_paused():
            return cls._load(Path(path).resolve(), environ)

    @classmethod
    def _load(cls, path: Path, environ: Mapping[str, str] | None) -> Project:
        text = read_manifest_text(path)
        state_dir, warning = choose_state_dir(path.parent, environ)
        notices = (warning,) if warning else ()
        store = StateStore(state_dir)
        try:
            key = f"resolved-v{MEMO_FORMAT}:{path}"
            digest = sha256_text(text)
            cached = store.get(key, _ResolvedMemo)
            if (cached is not None and cached.manifest_sha256 == digest
                    and cached.resolved.manifest.path == path
                    and cached.resolved.inputs.unchanged()):
                return cls(cached.resolved.manifest, cached.resolved, state_dir,
                           notices + cached.resolved.warnings)
            manifest, problems = parse_manifest(text, path)
            resolved = replace(resolve_manifest(manifest, problems), token=uuid.uuid4().hex)
            store.set(key, _ResolvedMemo(digest, resolved))
            return cls(manifest, resolved, state_dir, notices + resolved.warnings)
        finally:
            store.close()

    @property
    def root(self) -> Path:
        """The manifest's folder."""
        return self.manifest.root

    def provider(self, override: str | None = None) -> str:
        """The provider to use: ``override`` if given, else the manifest's setting."""
        from assetbuild.providers import provider_name

        return provider_name(override or self.manifest.settings.provider)

    def read_lockfile(self) -> Lockfile:
        """The current lockfile (empty if there is none)."""
        return read_lockfile(self.manifest.lockfile_path)

    def plan(
        self,
        targets: Iterable[str] = (),
        *,
        provider: str | None = None,
        force: bool = False,
        lockfile: Lockfile | None = None,
    ) -> Plan:
        """Every selected image's status; reads files but never the network."""
        with collection_paused():
            return self._plan(targets, provider=provider, force=force, lockfile=lockfile)

    def _plan(self, targets: Iterable[str], *, provider: str | None, force: bool,
              lockfile: Lockfile | None) -> Plan:
        store = StateStore(self.state_dir)
        digests = FileDigests(store)
        provider = self.provider(provider)
        memo_key = f"spec-hashes-v{MEMO_FORMAT}:{self.manifest.path}:{provider}"
        memo = store.get(memo_key, _SpecHashMemo)
        hashes = memo.hashes if memo is not None and memo.token == self.resolved.token else {}
        known = len(hashes)
        try:
            made = make_plan(
                self.resolved,
                lockfile if lockfile is not None else read_lockfile(
                    self.manifest.lockfile_path, store),
                digests,
                provider=provider,
                targets=targets,
                force=force,
                spec_hashes=hashes,
            )
            paid = paid_tasks(self.state_dir) if not force and not made.up_to_date else {}
            return dataclasses.replace(made, paid=paid) if paid else made
        finally:
            if len(hashes) != known:
                store.set(memo_key, _SpecHashMemo(self.resolved.token, hashes))
            digests.save()
            store.close()

    def select(self, targets: Iterable[str]) -> list[ResolvedImage]:
        """The images named by ``targets`` (and their dependencies), in dependency order."""
        names = set(select_targets(self.resolved, targets))
        return [image for image in self.resolved.images if image.name in names]

    def cached_uploads(
        self, provider: str | None = None, environ: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """sha256 -> hosted URL of the local references a build has uploaded already, for
        the provider's API and key (nothing when no key is set): what ``render`` shows."""
        from assetbuild.cache import ResultCache, default_cache_dir
        from assetbuild.providers import Provider

        digests = {ref.sha256 for image in self.resolved.images for ref in image.references
                   if ref.kind == "file" and ref.sha256}
        if not digests:
            return {}
        chosen = Provider.choose(self.provider(provider), environ)
        if not chosen.api_key:
            return {}
        cache = ResultCache(default_cache_dir(environ))
        try:
            return {d: url for d in digests if (url := cache.upload_url(chosen.scope, d))}
        finally:
            cache.close()

    def preview_request(
        self, image: ResolvedImage, lockfile: Lockfile, uploaded: Mapping[str, str]
    ) -> dict[str, Any]:
        """The request a build would send now, as far as it can be known offline.

        Local files show their cached upload URL, else ``upload:PATH``; ``image:NAME``
        references show the dependency's locked URL, else ``image:NAME``.
        """
        from assetbuild.spec import image_request, input_urls

        dep_urls = locked_urls(lockfile, image.dependencies)
        return image_request(image, input_urls(image, dep_urls, uploaded, preview=True))
