"""The spec hash: exactly the fields that decide pixels, whatever the TOML looks like."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetbuild.hashing import canonical_json, changed_fields, locked_spec, spec_document
from assetbuild.project import Project
from assetbuild.spec import image_spec

ASPECTS = ["auto", "1:1", "9:16", "16:9", "4:3", "3:4"]
RESOLUTIONS = ["1K", "2K", "4K"]

prompt_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
).filter(lambda s: s.strip() and "{" not in s and "}" not in s and "#" not in s)

image_tables = st.fixed_dictionaries({
    "prompt": prompt_text,
    "aspect_ratio": st.sampled_from(ASPECTS),
    "resolution": st.sampled_from(RESOLUTIONS),
    "references": st.lists(st.sampled_from(
        ["https://example.com/a.jpg", "https://example.com/b.png"]), max_size=2, unique=True),
})
manifests = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), image_tables, min_size=1,
    max_size=4)


def spec_hashes(text: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "assetbuild.toml"
        path.write_text(text, encoding="utf-8")
        project = Project.load(path)
        return {
            image.name: hashlib.sha256(canonical_json(image_spec(image, "see2ai", {}))).hexdigest()
            for image in project.resolved.images
        }


def as_tables(images: dict[str, dict[str, Any]], outputs: dict[str, str] | None = None) -> str:
    document: dict[str, Any] = {"version": 1, "images": {}}
    for name, table in images.items():
        body = dict(table)
        if outputs:
            body["output"] = outputs[name]
        document["images"][name] = body
    return tomli_w.dumps(document)


def as_inline_shuffled(images: dict[str, dict[str, Any]], seed: int) -> str:
    rng = random.Random(seed)
    names = list(images)
    rng.shuffle(names)
    lines = ["# the same manifest, written differently", "", "version   =   1", "[images]"]
    for name in names:
        items = list(images[name].items())
        rng.shuffle(items)
        body = " ,  ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in items)
        lines.append(f'"{name}" = {{ {body} }}   # comment')
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=manifests, seed=st.integers(0, 1000))
def test_formatting_and_order_never_change_the_hash(
    images: dict[str, dict[str, Any]], seed: int
) -> None:
    assert spec_hashes(as_tables(images)) == spec_hashes(as_inline_shuffled(images, seed))


@settings(max_examples=40, deadline=None)
@given(images=manifests)
def test_renaming_outputs_never_changes_the_hash(images: dict[str, dict[str, Any]]) -> None:
    first = {name: f"{name}.png" for name in images}
    second = {name: f"moved/{name}-v2.webp" for name in images}
    assert spec_hashes(as_tables(images, first)) == spec_hashes(as_tables(images, second))


@settings(max_examples=60, deadline=None)
@given(images=manifests, data=st.data())
def test_every_pixel_field_changes_the_hash(
    images: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(images)))
    field = data.draw(st.sampled_from(["prompt", "aspect_ratio", "resolution", "references"]))
    table = dict(images[name])
    if field == "prompt":
        table["prompt"] = table["prompt"] + " more"
    elif field == "references":
        table["references"] = [*table["references"], "https://example.com/new.webp"]
    else:
        choices = ASPECTS if field == "aspect_ratio" else RESOLUTIONS
        table[field] = data.draw(st.sampled_from([c for c in choices if c != table[field]]))
    before = spec_hashes(as_tables(images))
    after = spec_hashes(as_tables({**images, name: table}))
    assert before[name] != after[name]
    assert {k: v for k, v in before.items() if k != name} == {
        k: v for k, v in after.items() if k != name}


def test_reference_order_matters(tmp_path: Path) -> None:
    a = as_tables({"x": {"prompt": "p", "references": ["https://e.com/1", "https://e.com/2"]}})
    b = as_tables({"x": {"prompt": "p", "references": ["https://e.com/2", "https://e.com/1"]}})
    assert spec_hashes(a) != spec_hashes(b)


def test_hash_is_pinned_to_the_documented_definition() -> None:
    """The SPEC's definition, computed here without assetbuild's hashing helpers."""
    document = {
        "action": "see2ai_image_generation_v1",
        "provider": "see2ai",
        "prompt": "Café au lait",
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "references": [{"url": "https://example.com/ref.jpg"}],
    }
    expected = hashlib.sha256(json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    text = as_tables({"x": {"prompt": "Café au lait", "aspect_ratio": "16:9",
                            "references": ["https://example.com/ref.jpg"]}})
    assert spec_hashes(text)["x"] == expected
    assert canonical_json(document) == json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_changed_fields_names_what_differs() -> None:
    old = spec_document(provider="see2ai", prompt="a", aspect_ratio="1:1", resolution="2K",
                        references=[])
    new = spec_document(provider="emulator", prompt="b", aspect_ratio="1:1", resolution="4K",
                        references=[])
    assert changed_fields(new, locked_spec(old)) == ["prompt", "provider", "resolution"]
    assert changed_fields(old, locked_spec(old)) == []
