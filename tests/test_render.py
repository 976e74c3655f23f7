"""The template sandbox: strict, compiled once, confined to the manifest's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetbuild.errors import TemplateProblem
from assetbuild.render import TemplateRenderer


@pytest.fixture
def renderer(tmp_path: Path) -> TemplateRenderer:
    root = tmp_path / "root"
    (root / "parts").mkdir(parents=True)
    (root / "parts" / "footer.j2").write_text("footer for {{ brand }}")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "parts" / "escape.j2").symlink_to(tmp_path / "secret.txt")
    return TemplateRenderer(root.resolve())


def test_renders_with_context(renderer: TemplateRenderer) -> None:
    assert renderer.render("Hi {{ brand }}", {"brand": "Acme"}, 100) == "Hi Acme"


def test_plain_strings_are_not_compiled(renderer: TemplateRenderer) -> None:
    assert renderer.render("16:9", {}, 100) == "16:9"
    assert renderer._compiled == {}


def test_each_source_compiles_once(renderer: TemplateRenderer) -> None:
    source = "card {{ color | upper }} {{ n }}"
    outputs = {renderer.render(source, {"color": "red", "n": n}, 100) for n in range(1000)}
    assert len(outputs) == 1000
    assert list(renderer._compiled) == [source]


def test_undefined_variables_fail(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem, match=r"undefined variable: 'mood'$"):
        renderer.render("{{ mood }}", {}, 100)


def test_every_undefined_variable_is_named_at_once(renderer: TemplateRenderer) -> None:
    source = ("{{ brnd }} {{ colour }} {% if extra is defined %}{{ extra }}{% endif %}"
              "{{ size | default('M') }} {% for x in items %}{{ x }}{% endfor %}")
    with pytest.raises(TemplateProblem) as caught:
        renderer.render(source, {"brand": "Acme", "color": "red", "items": [1]}, 100)
    assert str(caught.value) == ("undefined variables: 'brnd' (did you mean 'brand'?), "
                                 "'colour' (did you mean 'color'?)"), "guarded names are fine"


def test_include_inside_the_folder(renderer: TemplateRenderer) -> None:
    text = renderer.render('A. {% include "parts/footer.j2" %}', {"brand": "Acme"}, 100)
    assert text == "A. footer for Acme"


@pytest.mark.parametrize("target", ["../secret.txt", "/etc/passwd", "parts/escape.j2"])
def test_include_cannot_leave_the_folder(renderer: TemplateRenderer, target: str) -> None:
    with pytest.raises(TemplateProblem, match="cannot"):
        renderer.render(f'{{% include "{target}" %}}', {}, 100)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ brand.__class__ }}",
    "{{ range.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__ }}",
    "{{ (brand|attr('__class__')) }}",
    "{{ brand.format.__globals__ }}",
    "{{ '{0.__class__}'.format(brand) }}",
    "{% for i in range(10**10) %}x{% endfor %}",
    "{{ 'a' * 10**9 }}",
    "{{ 10 ** 10000000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{{ self.__init__ }}",
])
def test_sandbox_refuses_escapes_and_bombs(renderer: TemplateRenderer, source: str) -> None:
    with pytest.raises(TemplateProblem):
        renderer.render(source, {"brand": "Acme"}, 20_000)


def test_no_access_to_the_environment(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem):
        renderer.render("{{ environ['HOME'] }}", {}, 100)
    with pytest.raises(TemplateProblem):
        renderer.render("{{ os.environ }}", {}, 100)


def test_output_longer_than_the_limit_fails(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem, match="more than 50 characters"):
        renderer.render("{% for i in range(100) %}x{% endfor %}", {}, 50)


def test_syntax_errors_name_the_line(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem, match="line 2"):
        renderer.render("ok\n{{ broken ", {}, 100)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.one_of(
    st.sampled_from(["{{ a }}", "{{b}}", "{{- a -}}", "{{ missing }}", "{{ a|upper }}",
                     "{% if a %}x{% endif %}", "{{ n }}", "{{ f }}", "{{ t }}", "{{ l }}"]),
    st.text(st.sampled_from("xy -\n\t{}%#"), max_size=6)), max_size=6))
def test_plain_substitution_renders_exactly_as_jinja(tmp_path_factory: pytest.TempPathFactory,
                                                     pieces: list[str]) -> None:
    """Templates that only put variables in text skip Jinja: the text must be Jinja's,
    and anything else must be left to Jinja."""
    source = "".join(pieces)
    context = {"a": "Ünï", "b": "", "n": 3, "f": 1.5, "t": True, "l": [1, "x"]}
    renderer = TemplateRenderer(tmp_path_factory.getbasetemp())
    fast = renderer._substitute(source, context)
    try:
        jinja = renderer.env.from_string(source).render(context)
    except Exception:  # noqa: BLE001 - a template Jinja refuses must not pass the fast path
        assert fast is None
        return
    if fast is not None:
        assert fast == jinja
    simple = all(p in ("{{ a }}", "{{b}}", "{{- a -}}", "{{ n }}", "{{ f }}", "{{ t }}",
                       "{{ l }}") or not any(c in p for c in "{}%#") for p in pieces)
    if simple:
        assert fast is not None, "a plain substitution skips Jinja"
