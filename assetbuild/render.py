"""Sandboxed Jinja rendering of the manifest's templates.

One :class:`TemplateRenderer` per manifest compiles each distinct template source
once, however many images use it, and renders with strict undefined variables.
Templates can include files inside the manifest's folder only, cannot reach the
process environment, and cannot build huge values (ranges, repeated strings, powers)
or outputs longer than the caller's limit.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from assetbuild.errors import TemplateProblem
from assetbuild.fsutil import resolve_inside

MAX_REPEAT = 100_000
"""Longest string or list a template may build with ``*``."""
MAX_EXPONENT = 1_000


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


class _SafeEnvironment(SandboxedEnvironment):
    """The sandbox with limits on operators that could exhaust memory or time."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(
        self, context: jinja2.runtime.Context, operator_name: str, left: Any, right: Any
    ) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise jinja2.exceptions.SecurityError("exponent is too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if repeats and len(seq) * count > MAX_REPEAT:
                    raise jinja2.exceptions.SecurityError("repeated value is too long")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def make_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """A sandboxed, strict environment (give it a loader that reads only inside a folder)."""
    env = _SafeEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        cache_size=-1,
    )
    env.globals = {"range": env.globals["range"], "dict": dict}
    return env


def is_template(source: str) -> bool:
    """Whether ``source`` has any Jinja syntax (plain strings skip compilation)."""
    return "{{" in source or "{%" in source or "{#" in source


class TemplateRenderer:
    """Compiles each template source once and renders it with a size limit."""

    def __init__(self, root: Path) -> None:
        self.loader = _FolderLoader(root)
        self.env = make_environment(self.loader)
        self._compiled: dict[str, jinja2.Template] = {}

    def render(self, source: str, context: Mapping[str, Any], limit: int) -> str:
        """Render a template string; raise TemplateProblem with a readable reason."""
        if not is_template(source):
            return source
        template = self._compiled.get(source)
        if template is None:
            template = self._compile(lambda: self.env.from_string(source))
            self._compiled[source] = template
        return self._run(template, context, limit)

    def render_file(self, name: str, context: Mapping[str, Any], limit: int) -> str:
        """Render the template file ``name`` (relative to the manifest's folder)."""
        template = self._compile(lambda: self.env.get_template(name))
        return self._run(template, context, limit)

    @staticmethod
    def _compile(load: Callable[[], jinja2.Template]) -> jinja2.Template:
        try:
            return load()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error on line {exc.lineno}: "
                                  f"{exc.message}") from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"cannot read template file {exc.name}") from None

    @staticmethod
    def _run(template: jinja2.Template, context: Mapping[str, Any], limit: int) -> str:
        pieces: list[str] = []
        size = 0
        try:
            for piece in template.generate(context):
                size += len(piece)
                if size > limit:
                    raise TemplateProblem(f"renders to more than {limit} characters")
                pieces.append(piece)
        except TemplateProblem:
            raise
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"undefined variable: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateProblem(f"refused by the template sandbox: {exc}") from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"cannot include {exc.name}") from None
        except jinja2.TemplateError as exc:
            raise TemplateProblem(f"template error: {exc}") from None
        except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
            raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
        return "".join(pieces)
