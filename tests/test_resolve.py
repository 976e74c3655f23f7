"""Resolution: matrices, defaults, references, outputs and the dependency order."""

from __future__ import annotations

import pytest

from assetbuild.errors import ManifestError
from assetbuild.project import Project
from tests.conftest import ProjectDir


def resolve_problems(project: ProjectDir, text: str) -> str:
    project.write_manifest(text)
    with pytest.raises(ManifestError) as info:
        Project.load(project.manifest)
    return str(info.value)


def test_matrix_expands_in_written_key_order(simple_project: ProjectDir) -> None:
    images = Project.load(simple_project.manifest).resolved.by_name()
    card = images["card[color=red,ratio=9:16]"]
    assert card.prompt == "Product card for red sneakers"
    assert card.aspect_ratio == "9:16"
    assert card.output == "generated/cards/red-9x16.png"
    assert sorted(n for n in images if n.startswith("card")) == [
        "card[color=blue,ratio=1:1]", "card[color=blue,ratio=9:16]",
        "card[color=red,ratio=1:1]", "card[color=red,ratio=9:16]",
    ]


def test_defaults_and_default_outputs(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [defaults]
        resolution = "1K"
        [images.plain]
        prompt = "p"
        [images.grid]
        prompt = "{{ n }} {{ flag }}"
        matrix = { n = [1, 2], flag = [true] }
    """)
    images = Project.load(project.manifest).resolved.by_name()
    plain = images["plain"]
    assert (plain.output, plain.resolution, plain.aspect_ratio) == (
        "generated/plain.png", "1K", "auto")
    assert images["grid[n=1,flag=true]"].output == "generated/grid-1-true.png"
    assert images["grid[n=2,flag=true]"].prompt == "2 True"


def test_dependencies_come_first_and_cycles_are_named(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [images.child]
        prompt = "c"
        references = ["image:parent"]
        [images.parent]
        prompt = "p"
    """)
    assert [i.name for i in Project.load(project.manifest).resolved.images] == ["parent", "child"]
    message = resolve_problems(project, """
        version = 1
        [images.a]
        prompt = "a"
        references = ["image:b"]
        [images.b]
        prompt = "b"
        references = ["image:a"]
    """)
    assert "dependency cycle: image:a -> image:b -> image:a" in message


def test_reference_kinds(project: ProjectDir) -> None:
    project.write("assets/ref.jpg", "jpeg bytes")
    project.write_manifest("""
        version = 1
        [images.a]
        prompt = "a"
        [images.b]
        prompt = "b"
        references = ["https://example.com/x.jpg", "image:a", "assets/ref.jpg"]
    """)
    refs = Project.load(project.manifest).resolved.by_name()["b"].references
    assert [(r.kind, r.value) for r in refs] == [
        ("url", "https://example.com/x.jpg"), ("image", "a"), ("file", "assets/ref.jpg")]
    import hashlib
    assert refs[2].sha256 == hashlib.sha256(b"jpeg bytes").hexdigest()


@pytest.mark.parametrize(("reference", "expected"), [
    ("../outside.jpg", "contains '..'"),
    ("/etc/passwd", "absolute path"),
    ("missing.jpg", "does not exist"),
    ("file:///etc/passwd", "only http(s) URLs"),
    ("ftp://example.com/a.jpg", "only http(s) URLs"),
    ("image:nope", "not an image of this manifest"),
    ("image:grid", "is a matrix; name one of its images, for example image:grid[n=1]"),
    ("https://", "is not a valid URL"),
])
def test_bad_references(project: ProjectDir, reference: str, expected: str) -> None:
    message = resolve_problems(project, f"""
        version = 1
        [images.grid]
        prompt = "g"
        matrix = {{ n = [1, 2] }}
        [images.a]
        prompt = "a"
        references = ["{reference}"]
    """)
    assert "image 'a': field 'references'" in message and expected in message


def test_symlink_escape_is_refused(project: ProjectDir) -> None:
    outside = project.root.parent / "secret.jpg"
    outside.write_text("secret")
    (project.root / "link.jpg").symlink_to(outside)
    (project.root / "up").symlink_to(project.root.parent)
    message = resolve_problems(project, """
        version = 1
        [images.a]
        prompt = "a"
        references = ["link.jpg"]
        output = "../up/x.png"
        [images.b]
        prompt = "b"
        output = "x.png"
        [settings]
        out_dir = "up"
    """)
    assert "'link.jpg' leads outside the manifest's folder" in message
    assert "image 'b': field 'output'" in message


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("output", "a.gif", "must end in one of .png"),
    ("output", "/tmp/a.png", "absolute path"),
    ("aspect_ratio", "21:9", "'21:9' is not one of auto"),
    ("resolution", "8K", "'8K' is not one of 1K, 2K, 4K"),
    ("prompt", "{{ '' }}", "renders to an empty prompt"),
    ("prompt", "{{ 'x' * 20001 }}", "more than 20000 characters"),
])
def test_bad_rendered_fields(project: ProjectDir, field: str, value: str, expected: str) -> None:
    body = {"prompt": "p", field: value}
    lines = "\n".join(f"{k} = {value!r}" if k == field else f"{k} = 'p'" for k in body)
    message = resolve_problems(project, f"version = 1\n[images.a]\n{lines}\n")
    assert f"image 'a': field '{field}'" in message and expected in message


def test_two_images_cannot_share_an_output(project: ProjectDir) -> None:
    message = resolve_problems(project, """
        version = 1
        [images.a]
        prompt = "a"
        output = "same.png"
        [images.b]
        prompt = "b"
        output = "Same.png"
    """)
    assert "also the output of image 'a'" in message


def test_prompt_file_and_its_errors(project: ProjectDir) -> None:
    project.write("prompts/p.j2", "From a file for {{ who }}\n")
    project.write_manifest("""
        version = 1
        [images.a]
        prompt_file = "prompts/p.j2"
        vars = { who = "you" }
    """)
    assert Project.load(project.manifest).resolved.images[0].prompt == "From a file for you"
    message = resolve_problems(project, "version = 1\n[images.a]\nprompt_file = 'nope.j2'\n")
    assert "field 'prompt_file': cannot read template file nope.j2" in message


def test_matrix_values_and_vars_layer_over_globals(project: ProjectDir) -> None:
    project.write_manifest("""
        version = 1
        [vars]
        a = "global"
        b = "global"
        [images.x]
        prompt = "{{ a }} {{ b }} {{ c }} {{ name }}"
        vars = { b = "image", c = "image" }
        matrix = { c = ["matrix"] }
    """)
    image = Project.load(project.manifest).resolved.images[0]
    assert image.prompt == "global image matrix x[c=matrix]"
