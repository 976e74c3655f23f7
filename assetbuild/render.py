"""Sandboxed Jinja rendering of the manifest's templates.

One :class:`TemplateRenderer` per manifest compiles each distinct template source
once, however many images use it, and renders with strict undefined variables.
Templates can include files inside the manifest's folder only, cannot reach the
process environment, cannot change a value once made (the immutable sandbox), and
cannot build huge values (ranges, repeated strings, joins, replacements, powers) or
outputs longer than the caller's limit. A template nested deeper than a person would
write is refused before it is compiled, the loops of one render share a budget of
steps, and in the main thread a render that runs past :data:`RENDER_SECONDS` is
stopped by a timer: a checkout's templates cannot hold ``check`` hostage.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assetbuild.errors import TemplateProblem
from assetbuild.fsutil import resolve_inside
from assetbuild.suggest import did_you_mean

MAX_REPEAT = 100_000
"""Longest string or list a template may build with ``*``, a join or a replacement."""
MAX_EXPONENT = 1_000
MAX_POWER_BITS = 100_000
"""Largest integer (in bits) a power may make."""
MAX_STEPS = 100_000
"""Loop iterations and calls one render may make in all."""
MAX_BLOCK_DEPTH = 16
MAX_BRACKET_DEPTH = 40
_BLOCK = re.compile(r"{%-?\s*(end)?(for|if|macro|call|filter|with|block)\b")
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate")
_STEPS_GLOBAL = "_assetbuild_counted"
"""The global every ``for`` loop's iterable is passed through (see ``_parse``)."""
MAX_INCLUDE_DEPTH = 8
_DEPTH_VAR = "_assetbuild_include_depth"


class _DepthCountingTemplate(jinja2.Template):
    """A template whose contexts say how deeply includes nest: a file that includes
    itself is refused at depth 8 instead of recursing a thousand frames deep."""

    def new_context(self, vars: dict[str, Any] | None = None, shared: bool = False,
                    locals: Mapping[str, Any] | None = None) -> jinja2.runtime.Context:
        """A context one include deeper than the one whose variables it gets."""
        values = dict(vars or {})
        values[_DEPTH_VAR] = depth = int(values.get(_DEPTH_VAR, 0)) + 1
        if depth > MAX_INCLUDE_DEPTH:
            raise jinja2.exceptions.SecurityError(
                f"includes nest more than {MAX_INCLUDE_DEPTH} deep")
        return super().new_context(values, shared, locals)


def nesting_problem(source: str) -> str | None:
    """Why ``source`` is nested too deeply to compile safely, or None."""
    depth = deepest = 0
    for match in _BLOCK.finditer(source):
        depth += -1 if match.group(1) else 1
        deepest = max(deepest, depth)
    if deepest > MAX_BLOCK_DEPTH:
        return f"blocks are nested more than {MAX_BLOCK_DEPTH} deep"
    depth = deepest = 0
    for char in source:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    if deepest > MAX_BRACKET_DEPTH:
        return f"brackets are nested more than {MAX_BRACKET_DEPTH} deep"
    return None


class _FolderLoader(jinja2.BaseLoader):
    """Loads ``{% include %}`` and ``prompt_file`` templates from inside one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: dict[Path, tuple[int, int, int]] = {}
        """Every file read, with the stat that says whether it changed since."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            path = resolve_inside(self.root, template)
        except ValueError as exc:
            raise jinja2.TemplateNotFound(f"{template} ({exc})") from None
        try:
            source = path.read_text(encoding="utf-8")
            stat = path.stat()
            mtime = stat.st_mtime_ns
            self.loaded[path] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        except (OSError, UnicodeDecodeError) as exc:
            raise jinja2.TemplateNotFound(f"{template} ({exc})") from None

        def uptodate() -> bool:
            try:
                return path.stat().st_mtime_ns == mtime
            except OSError:
                return False

        return source, str(path), uptodate


class _SafeEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with limits on what could exhaust memory or time."""

    intercepted_binops = frozenset(["*", "**"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.steps = 0
        """Loop iterations and calls the current render made (reset per render)."""

    def step(self, count: int = 1) -> None:
        """Count ``count`` steps of the current render; refuse past the budget."""
        self.steps += count
        if self.steps > MAX_STEPS:
            raise jinja2.exceptions.SecurityError("loops and calls take too many steps")

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, one step per item."""
        for item in iterable:
            self.step()
            yield item

    def call(self, __context: jinja2.runtime.Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        """Every call a template makes (macros included) is a step."""
        self.step()
        return super().call(__context, __obj, *args, **kwargs)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse as Jinja does, then pass every ``for`` loop's iterable through
        :meth:`counted`, so loops over strings and lists count as ``range`` does."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_STEPS_GLOBAL, "load", lineno=loop.lineno),
                                   [loop.iter], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(
        self, context: jinja2.runtime.Context, operator_name: str, left: Any, right: Any
    ) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise jinja2.exceptions.SecurityError("exponent is too large")
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and left.bit_length() * right > MAX_POWER_BITS):
                raise jinja2.exceptions.SecurityError("power is too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if repeats and len(seq) * count > MAX_REPEAT:
                    raise jinja2.exceptions.SecurityError("repeated value is too long")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def make_environment(loader: jinja2.BaseLoader) -> _SafeEnvironment:
    """A sandboxed, strict environment (give it a loader that reads only inside a folder)."""
    env = _SafeEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        cache_size=-1,
    )
    env.globals = {"range": env.globals["range"], "dict": dict, _STEPS_GLOBAL: env.counted}
    env.template_class = _DepthCountingTemplate
    _bound_filters(env)
    return env


def _bound_filters(env: jinja2.Environment) -> None:
    """Refuse joins, replacements and widths that would build a huge string before the
    output limit could see it (they run in C, where no timer interrupts them)."""
    join, replace = env.filters["join"], env.filters["replace"]

    def bounded_join(context: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        if len(items) * len(str(d)) > MAX_REPEAT:
            raise jinja2.exceptions.SecurityError("joined value is too long")
        return str(join(context, items, d, attribute))

    def bounded_replace(context: Any, s: Any, old: str, new: str, count: Any = None) -> str:
        text = str(s)
        if text.count(str(old)) * len(str(new)) > MAX_REPEAT:
            raise jinja2.exceptions.SecurityError("replaced value is too long")
        return str(replace(context, s, old, new, count))

    bounded_join.jinja_pass_arg = join.jinja_pass_arg  # type: ignore[attr-defined]
    bounded_replace.jinja_pass_arg = replace.jinja_pass_arg  # type: ignore[attr-defined]
    env.filters["join"], env.filters["replace"] = bounded_join, bounded_replace
    for name in _WIDTH_FILTERS:
        env.filters[name] = _width_checked(env.filters[name])


def _width_checked(original: Callable[..., Any]) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        numbers = [v for v in (*args[1:], *kwargs.values())
                   if isinstance(v, int) and not isinstance(v, bool)]
        if any(abs(n) > MAX_REPEAT for n in numbers):
            raise jinja2.exceptions.SecurityError("width is too large")
        return original(*args, **kwargs)

    if hasattr(original, "jinja_pass_arg"):
        checked.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return checked


def unguarded_names(tree: nodes.Template) -> set[str]:
    """Variables a template reads that no ``is defined`` test or ``default`` filter
    guards: the ones whose absence fails a render."""
    guarded = {node.node.name for node in tree.find_all((nodes.Test, nodes.Filter))
               if node.name in ("defined", "undefined", "default", "d")
               and isinstance(node.node, nodes.Name)}
    from jinja2 import meta

    return meta.find_undeclared_variables(tree) - guarded


def is_template(source: str) -> bool:
    """Whether ``source`` has any Jinja syntax (plain strings skip compilation)."""
    return "{{" in source or "{%" in source or "{#" in source


class TemplateRenderer:
    """Compiles each template source once and renders it with a size limit."""

    def __init__(self, root: Path) -> None:
        self.loader = _FolderLoader(root)
        self.env = make_environment(self.loader)
        self._compiled: dict[str, jinja2.Template] = {}
        self._substitutions: dict[str, tuple[tuple[bool, str], ...] | None] = {}

    def render(self, source: str, context: Mapping[str, Any], limit: int) -> str:
        """Render a template string; raise TemplateProblem with a readable reason."""
        if not is_template(source):
            if len(source) > limit:
                raise TemplateProblem(f"is longer than {limit} characters")
            return source
        substituted = self._substitute(source, context)
        if substituted is not None:
            if len(substituted) > limit:
                raise TemplateProblem(f"renders to more than {limit} characters")
            return substituted
        template = self._compiled.get(source)
        if template is None:
            template = self._compile(source, lambda: self.env.from_string(source))
            self._compiled[source] = template
        return self._run(template, context, limit, source)

    def _substitute(self, source: str, context: Mapping[str, Any]) -> str | None:
        """``source`` rendered without Jinja when it only puts variables in text
        (``"tile {{ a }}-{{ b }}"``: most prompts and outputs of a catalog), exactly as
        Jinja renders it (``str`` of each value); None when Jinja must render it (any
        filter, tag or expression, or a variable the context lacks)."""
        if source not in self._substitutions:
            self._substitutions[source] = self._parts(source)
        parts = self._substitutions[source]
        if parts is None:
            return None
        pieces = []
        for is_name, text in parts:
            if not is_name:
                pieces.append(text)
            elif text in context:
                value = context[text]
                pieces.append(value if type(value) is str else str(value))
            else:
                return None
        return "".join(pieces)

    def _parts(self, source: str) -> tuple[tuple[bool, str], ...] | None:
        """The text and variable names of a template that is only those, else None."""
        if nesting_problem(source):
            return None
        try:
            tree = self.env.parse(source)
        except Exception:  # noqa: BLE001 - Jinja's own path reports what is wrong
            return None
        parts: list[tuple[bool, str]] = []
        for node in tree.body:
            if not isinstance(node, nodes.Output):
                return None
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    parts.append((False, child.data))
                elif isinstance(child, nodes.Name) and child.ctx == "load":
                    parts.append((True, child.name))
                else:
                    return None
        return tuple(parts)

    def _undefined(self, source: str, context: Mapping[str, Any],
                   exc: jinja2.UndefinedError) -> str:
        """Every variable the template lacks at once, each with a likely spelling."""
        known = [*context, *self.env.globals]
        missing = sorted(unguarded_names(self.env.parse(source)) - set(known))
        if not missing:  # an attribute or an included file's variable: jinja's words
            return f"undefined variable: {exc.message}"
        named = ", ".join(f"'{name}'{did_you_mean(name, list(context))}" for name in missing)
        return f"undefined variable{'s' if len(missing) > 1 else ''}: {named}"

    def render_file(self, name: str, context: Mapping[str, Any], limit: int) -> str:
        """Render the template file ``name`` (relative to the manifest's folder)."""
        template = self._compile(None, lambda: self.env.get_template(name))
        return self._run(template, context, limit, self.loader.get_source(self.env, name)[0])

    def _compile(self, source: str | None, load: Callable[[], jinja2.Template]
                 ) -> jinja2.Template:
        if source is not None and (problem := nesting_problem(source)):
            raise TemplateProblem(f"too complex to compile: {problem}")
        try:
            return load()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error on line {exc.lineno}: "
                                  f"{exc.message}") from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"cannot read template file {exc.name}") from None
        except TemplateProblem:
            raise
        except (SyntaxError, RecursionError, MemoryError) as exc:
            raise TemplateProblem(f"too complex to compile ({type(exc).__name__})") from None
        except jinja2.UndefinedError as exc:  # constant folding evaluates some expressions
            raise TemplateProblem(f"undefined variable: {exc.message}") from None
        except Exception as exc:  # noqa: BLE001 - a template's failure, whatever it is
            raise TemplateProblem(f"template error: {type(exc).__name__}: "
                                  f"{str(exc)[:200]}") from None

    def _run(self, template: jinja2.Template, context: Mapping[str, Any], limit: int,
             source: str) -> str:
        pieces: list[str] = []
        size = 0
        self.env.steps = 0
        try:
            for piece in template.generate(context):
                size += len(piece)
                if size > limit:
                    raise TemplateProblem(f"renders to more than {limit} characters")
                pieces.append(piece)
        except TemplateProblem:
            raise
        except MemoryError:
            raise TemplateProblem("needs too much memory to render") from None
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(self._undefined(source, context, exc)) from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateProblem(f"refused by the template sandbox: {exc}") from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"cannot include {exc.name}") from None
        except jinja2.TemplateError as exc:
            raise TemplateProblem(f"template error: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a template's failure, whatever it is
            raise TemplateProblem(f"template failed: {type(exc).__name__}: "
                                  f"{str(exc)[:200]}") from None
        return "".join(pieces)
