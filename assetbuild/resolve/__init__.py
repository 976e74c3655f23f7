"""Turn a manifest into resolved images: matrices expanded, templates rendered,
references classified and hashed, outputs placed, dependencies ordered.

Every problem found is collected and raised as one ManifestError, before any
network call.
"""

from __future__ import annotations

from collections.abc import Iterator

from assetbuild.errors import ManifestError, Problem
from assetbuild.manifest import Manifest
from assetbuild.resolve.images import (
    Reference,
    ResolutionInputs,
    ResolvedImage,
    ResolvedManifest,
    picture_width,
)
from assetbuild.resolve.resolver import Resolver

__all__ = ["Reference", "ResolutionInputs", "ResolvedImage", "ResolvedManifest",
           "order_by_dependencies", "picture_width", "resolve_manifest"]


def resolve_manifest(
    manifest: Manifest, earlier_problems: list[Problem] | None = None
) -> ResolvedManifest:
    """Expand, render and check every image; raise ManifestError listing all problems.

    ``earlier_problems`` (from validation) are reported together with these.
    """
    resolver = Resolver(manifest)
    resolver.problems.extend(earlier_problems or [])
    resolver.check_written_folders()
    images = [
        image
        for decl in manifest.images
        for image in resolver.expand(decl)
    ]
    resolver.check_cross_references(images)
    if resolver.problems:
        raise ManifestError(resolver.problems)
    ordered = order_by_dependencies(images, manifest)
    return ResolvedManifest(manifest, tuple(ordered), resolver.inputs(),
                            tuple(resolver.warnings[:20]))


def order_by_dependencies(images: list[ResolvedImage], manifest: Manifest) -> list[ResolvedImage]:
    """Images sorted so that each follows its dependencies; a cycle is a ManifestError."""
    by_name = {image.name: image for image in images}
    ordered: list[ResolvedImage] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in images:
        if state.get(start.name) == 2:
            continue
        stack: list[tuple[str, Iterator[str]]] = [
            (start.name, iter(by_name[start.name].dependencies))
        ]
        state[start.name] = 1
        while stack:
            name, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                state[name] = 2
                ordered.append(by_name[name])
            elif state.get(dep) == 1:
                path = [n for n, _ in stack]
                cycle = [*path[path.index(dep):], dep]
                raise ManifestError([Problem(
                    manifest.path, "dependency cycle: " + " -> ".join(f"image:{n}" for n in cycle),
                    image=dep, field="references",
                )])
            elif state.get(dep) != 2:
                state[dep] = 1
                stack.append((dep, iter(by_name[dep].dependencies)))
    return ordered


