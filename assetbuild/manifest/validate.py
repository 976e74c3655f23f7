"""Validating a manifest's TOML: every problem found, each naming its table, field
and line, and the valid part as plain frozen data."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assetbuild._types import PROVIDERS, RESOLUTIONS
from assetbuild.errors import ManifestError, Problem
from assetbuild.formats import FORMAT_NAMES
from assetbuild.fsutil import relative_path_problem
from assetbuild.manifest.lines import KeyLines, deep_key_line, line_from_message
from assetbuild.manifest.model import (
    DEFAULTS_KEYS,
    FORMAT_SPELLINGS,
    IMAGE_KEYS,
    IMAGE_NAME_RE,
    MANIFEST_VERSION,
    MAX_IMAGES,
    MAX_KEY_DOTS,
    MAX_MATRIX_IMAGES,
    MAX_TAKES,
    MAX_VARS_DEPTH,
    SETTINGS_KEYS,
    TOP_KEYS,
    VAR_NAME_RE,
    Defaults,
    ImageDecl,
    Manifest,
    Settings,
    matrix_label,
)
from assetbuild.suggest import did_you_mean


def parse_manifest(text: str, path: Path) -> tuple[Manifest, list[Problem]]:
    """Validate manifest ``text`` as if read from ``path``: (valid part, problems)."""
    deep = deep_key_line(text)
    if deep is not None:  # tomllib spends minutes and gigabytes on such keys
        raise ManifestError([Problem(path, f"a key is dotted more than {MAX_KEY_DOTS} levels "
                                           "deep", line=deep)])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or line_from_message(str(exc))
        raise ManifestError([Problem(path, f"is not valid TOML: {exc}", line=line)]) from None
    except RecursionError:
        raise ManifestError([Problem(path, "is nested too deeply to read")]) from None
    validator = _Validator(path, KeyLines(text))
    return validator.manifest(data), validator.problems


class _Validator:
    """Walks the parsed TOML once, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, lines: KeyLines) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[Problem] = []

    def add(
        self, message: str, *, image: str | None = None, field_name: str | None = None,
        table: tuple[str, ...] = (),
    ) -> None:
        table_lines = self.lines.of(*table)
        line = table_lines.get(field_name or "", table_lines.get(""))
        if line is None and field_name:  # a misspelt table: `[setings]`
            line = self.lines.of(*table, field_name).get("")
        self.problems.append(Problem(self.path, message, image, field_name, line))

    def manifest(self, data: dict[str, Any]) -> Manifest:
        self._unknown_keys(data, TOP_KEYS, ())
        self._version(data.get("version"))
        settings = self._settings(self._table(data, "settings"))
        global_vars = self._vars(self._table(data, "vars"), ("vars",), None)
        defaults = self._defaults(self._table(data, "defaults"))
        images = tuple(
            decl
            for name, body in self._table(data, "images").items()
            if (decl := self._image(name, body)) is not None
        )
        total = sum(math.prod(len(values) for _, values in decl.matrix) for decl in images)
        if total > MAX_IMAGES:
            self.add(f"the images expand to {total} images in all; the limit is {MAX_IMAGES}",
                     field_name="images")
            images = ()
        return Manifest(self.path, settings, global_vars, defaults, images)

    def _table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if isinstance(value, dict):
            return value
        self.add(f"must be a table, not {_kind(value)}", field_name=key)
        return {}

    def _unknown_keys(
        self, data: Mapping[str, Any], allowed: tuple[str, ...], table: tuple[str, ...],
        image: str | None = None,
    ) -> None:
        where = f"[{'.'.join(table)}]" if table else "the top level"
        for key in data:
            if key not in allowed:
                self.add(
                    f"unknown key in {where}{did_you_mean(key, allowed)}; "
                    f"allowed: {', '.join(allowed)}",
                    image=image, field_name=key, table=table,
                )

    def _version(self, version: Any) -> None:
        if version is None:
            self.add(f"is required: add `version = {MANIFEST_VERSION}`", field_name="version")
        elif type(version) is not int:
            self.add(f"must be the integer {MANIFEST_VERSION}", field_name="version")
        elif version != MANIFEST_VERSION:
            self.add(
                f"manifest version {version} is not supported; this assetbuild reads "
                f"version {MANIFEST_VERSION}",
                field_name="version",
            )

    def _settings(self, table: dict[str, Any]) -> Settings:
        self._unknown_keys(table, SETTINGS_KEYS, ("settings",))
        base = Settings()
        where = ("settings",)
        out_dir = self._path_field(table, "out_dir", base.out_dir, where)
        lockfile = self._path_field(table, "lockfile", base.lockfile, where)
        jobs = table.get("jobs", base.jobs)
        if type(jobs) is not int or not 1 <= jobs <= 4096:
            self.add("must be an integer from 1 to 4096", field_name="jobs", table=where)
            jobs = base.jobs
        provider = table.get("provider", base.provider)
        if provider not in PROVIDERS:
            self.add(
                f"must be one of {', '.join(PROVIDERS)}, not {provider!r}"
                f"{did_you_mean(str(provider), PROVIDERS)}",
                field_name="provider", table=where,
            )
            provider = base.provider
        timeout = table.get("timeout", base.timeout)
        if type(timeout) not in (int, float) or not 0 < timeout <= 86_400:
            self.add("must be a number of seconds from 1 to 86400", field_name="timeout",
                     table=where)
            timeout = base.timeout
        remote, readonly = table.get("remote", ""), table.get("remote_readonly", False)
        if not isinstance(remote, str) or not isinstance(readonly, bool):
            self.add("remote must be a URL string and remote_readonly true or false",
                     field_name="remote", table=where)
            remote, readonly = "", False
        return Settings(out_dir, lockfile, jobs, provider, float(timeout),
                        self._price_ceilings(table.get("price_ceilings", {}), where),
                        remote, readonly)

    def _price_ceilings(self, value: Any, where: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
        """``price_ceilings = { "4K" = 60 }``: points per image by resolution."""
        fine = isinstance(value, dict) and all(
            key in RESOLUTIONS and type(points) in (int, float) and 0 < points <= 100_000
            for key, points in value.items())
        if not fine:
            self.add(f"must be a table of points by resolution ({', '.join(RESOLUTIONS)}), "
                     'each from 1 to 100000, like { "4K" = 60 }', field_name="price_ceilings",
                     table=where)
            return ()
        return tuple(sorted((key, float(points)) for key, points in value.items()))

    def _path_field(
        self, table: dict[str, Any], key: str, default: str, where: tuple[str, ...]
    ) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.add(f"must be a string, not {_kind(value)}", field_name=key, table=where)
            return default
        problem = relative_path_problem(value)
        if problem:
            self.add(f"{value!r} {problem}", field_name=key, table=where)
            return default
        return value

    def _defaults(self, table: dict[str, Any]) -> Defaults:
        self._unknown_keys(table, DEFAULTS_KEYS, ("defaults",))
        base = Defaults()
        values: dict[str, Any] = {}
        for key in DEFAULTS_KEYS[:-1]:
            if key in table:
                if isinstance(table[key], str):
                    values[key] = table[key]
                else:
                    self.add(f"must be a string, not {_kind(table[key])}", field_name=key,
                             table=("defaults",))
        return Defaults(
            resolution=values.get("resolution", base.resolution),
            aspect_ratio=values.get("aspect_ratio", base.aspect_ratio),
            output=values.get("output", base.output),
            takes=self._takes(table.get("takes", base.takes), None) or base.takes,
        )

    def _vars(
        self, table: Any, where: tuple[str, ...], image: str | None
    ) -> Mapping[str, Any]:
        if not isinstance(table, dict):
            self.add(f"must be a table, not {_kind(table)}", image=image, field_name="vars",
                     table=where[:-1] if image else ())
            return {}
        for key in table:
            if not VAR_NAME_RE.match(key):
                self.add(f"variable name {key!r} is not a valid identifier",
                         image=image, field_name="vars", table=where)
        if _depth(table) > MAX_VARS_DEPTH:
            self.add(f"is nested too deeply (more than {MAX_VARS_DEPTH} levels of tables "
                     "and lists)", image=image, field_name="vars", table=where)
            return {}
        return dict(table)

    def _image(self, name: str, body: Any) -> ImageDecl | None:
        where = ("images", name)
        if not IMAGE_NAME_RE.match(name):
            self.add("image names may use only letters, digits, '_', '.' and '-'",
                     image=name, table=where)
        if not isinstance(body, dict):
            self.add(f"must be a table, not {_kind(body)}", image=name, table=where)
            return None
        self._unknown_keys(body, IMAGE_KEYS, where, image=name)
        strings = {key: self._string(body, key, name) for key in
                   ("prompt", "prompt_file", "output", "aspect_ratio", "resolution")}
        if not self._prompt_source(strings["prompt"], strings["prompt_file"], body, name):
            return None
        return ImageDecl(
            name=name,
            prompt=strings["prompt"],
            prompt_file=strings["prompt_file"],
            output=strings["output"],
            aspect_ratio=strings["aspect_ratio"],
            resolution=strings["resolution"],
            references=self._references(body.get("references", []), name),
            vars=self._vars(body.get("vars", {}), (*where, "vars"), name),
            matrix=self._matrix(body.get("matrix", {}), name),
            lines=self.lines.of(*where),
            sizes=self._sizes(body.get("sizes", []), name),
            formats=self._formats(body.get("formats", []), name),
            takes=self._takes(body["takes"], name) if "takes" in body else None,
        )

    def _takes(self, value: Any, image: str | None) -> int | None:
        """``takes = N``: 1 to MAX_TAKES tasks of the image's spec."""
        if type(value) is int and 1 <= value <= MAX_TAKES:
            return value
        self.add(f"{value!r} is not a number of takes from 1 to {MAX_TAKES}", image=image,
                 field_name="takes", table=("images", image) if image else ("defaults",))
        return None

    def _sizes(self, value: Any, image: str) -> tuple[int, ...]:
        where = ("images", image)
        if not isinstance(value, list):
            self.add(f"must be a list of widths in pixels, not {_kind(value)}", image=image,
                     field_name="sizes", table=where)
            return ()
        bad = [v for v in value if type(v) is not int or not 16 <= v <= 16_384]
        repeated = sorted({v for v in value if value.count(v) > 1}, key=str)
        if bad or repeated:
            what = (f"{bad[0]!r} is not a width from 16 to 16384 pixels" if bad
                    else f"{repeated[0]!r} is listed twice")
            self.add(f"{what}; sizes must be distinct widths in pixels", image=image,
                     field_name="sizes", table=where)
            return ()
        return tuple(value)

    def _formats(self, value: Any, image: str) -> tuple[str, ...]:
        where = ("images", image)
        if not isinstance(value, list):
            self.add(f"must be a list of formats, not {_kind(value)}", image=image,
                     field_name="formats", table=where)
            return ()
        spelled = [FORMAT_SPELLINGS.get(v, v) if isinstance(v, str) else v for v in value]
        bad = [v for v in spelled if v not in FORMAT_NAMES]
        if bad or len(set(spelled)) != len(spelled):
            what = f"{bad[0]!r} is not a format" if bad else "a format is listed twice"
            self.add(f"{what}; use distinct formats among {', '.join(FORMAT_NAMES)} "
                     "(or jpg)", image=image, field_name="formats", table=where)
            return ()
        return tuple(spelled)

    def _string(self, body: dict[str, Any], key: str, image: str) -> str | None:
        value = body.get(key)
        if value is None or isinstance(value, str):
            return value
        self.add(f"must be a string, not {_kind(value)}", image=image, field_name=key,
                 table=("images", image))
        return None

    def _prompt_source(
        self, prompt: str | None, prompt_file: str | None, body: dict[str, Any], image: str
    ) -> bool:
        """Check that exactly one usable prompt source is set; say whether one is."""
        where = ("images", image)
        if "prompt" in body and "prompt_file" in body:
            self.add("set either prompt or prompt_file, not both", image=image,
                     field_name="prompt", table=where)
            return False
        if "prompt" not in body and "prompt_file" not in body:
            self.add("is required (or prompt_file = \"path/to/prompt.j2\")", image=image,
                     field_name="prompt", table=where)
            return False
        if prompt_file is not None:
            problem = relative_path_problem(prompt_file)
            if problem:
                self.add(f"{prompt_file!r} {problem}", image=image, field_name="prompt_file",
                         table=where)
                return False
        return prompt is not None or prompt_file is not None

    def _references(self, value: Any, image: str) -> tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.add("must be a list of strings (URLs, image:NAME or local paths)",
                 image=image, field_name="references", table=("images", image))
        return ()

    def _matrix(self, value: Any, image: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        where = ("images", image)
        if not isinstance(value, dict):
            self.add(f"must be a table of lists, not {_kind(value)}", image=image,
                     field_name="matrix", table=where)
            return ()
        axes: list[tuple[str, tuple[Any, ...]]] = []
        count = 1
        for key, values in value.items():
            scalars = isinstance(values, list) and values and all(
                isinstance(v, str | int | float | bool) for v in values
            )
            if not VAR_NAME_RE.match(key) or not scalars:
                self.add(f"axis {key!r} must be an identifier with a non-empty list of "
                         "strings, numbers or booleans", image=image, field_name="matrix",
                         table=where)
                continue
            if len(set(map(matrix_label, values))) != len(values):
                self.add(f"axis {key!r} lists a value twice", image=image,
                         field_name="matrix", table=where)
            axes.append((key, tuple(values)))
            count *= len(values)
        if count > MAX_MATRIX_IMAGES:
            self.add(f"expands to {count} images; the limit is {MAX_MATRIX_IMAGES}",
                     image=image, field_name="matrix", table=where)
            return ()
        return tuple(axes)


def _depth(value: Any) -> int:
    """How deeply ``value``'s tables and lists nest (iteratively: no recursion limit)."""
    deepest = 0
    pending = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_VARS_DEPTH:
                return deepest
            pending.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                    else item))
    return deepest


def _kind(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
