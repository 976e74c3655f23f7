"""The dependency graph of a manifest's images, as Graphviz DOT or Mermaid text."""

from __future__ import annotations

import json
from collections.abc import Mapping

from assetbuild.resolve import ResolvedImage

STATUS_COLOURS = {
    "up-to-date": "palegreen",
    "new": "lightskyblue",
    "changed": "gold",
    "upstream-changed": "khaki",
    "missing-output": "lightsalmon",
    "modified-output": "lightsalmon",
    "more-takes": "plum",
}


def to_dot(images: tuple[ResolvedImage, ...], statuses: Mapping[str, str]) -> str:
    """Graphviz DOT: one node per image (coloured by status), an edge per image: reference."""
    lines = ["digraph assetbuild {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled"];']
    for image in images:
        status = statuses.get(image.name, "")
        label = f"{image.name}\n{status}" if status else image.name
        colour = STATUS_COLOURS.get(status, "white")
        # json.dumps escapes quotes and writes the newline as \n, which DOT reads as one.
        lines.append(f"  {json.dumps(image.name)} [label={json.dumps(label)}, fillcolor={colour}];")
    for image in images:
        for dep in image.dependencies:
            lines.append(f"  {json.dumps(dep)} -> {json.dumps(image.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(images: tuple[ResolvedImage, ...], statuses: Mapping[str, str]) -> str:
    """Mermaid flowchart text of the same graph."""
    ids = {image.name: f"n{i}" for i, image in enumerate(images)}
    lines = ["flowchart LR"]
    for image in images:
        status = statuses.get(image.name, "")
        label = f"{image.name}<br/>{status}" if status else image.name
        lines.append(f'  {ids[image.name]}["{label.replace(chr(34), "#quot;")}"]')
    for image in images:
        for dep in image.dependencies:
            lines.append(f"  {ids[dep]} --> {ids[image.name]}")
    return "\n".join(lines) + "\n"
