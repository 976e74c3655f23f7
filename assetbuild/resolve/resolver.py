"""The resolver: each image declaration expanded, rendered and checked, every problem
collected (the images it makes are :mod:`assetbuild.resolve.images`)."""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from assetbuild._types import ASPECT_RATIOS, MAX_PROMPT_CHARS, RESOLUTIONS
from assetbuild.errors import Problem, TemplateProblem
from assetbuild.formats import OUTPUT_SUFFIXES
from assetbuild.fsutil import relative_path_problem, resolve_inside
from assetbuild.hashing import sha256_file, stat_key
from assetbuild.manifest import ImageDecl, Manifest, matrix_label
from assetbuild.resolve.images import (
    Reference,
    ResolutionInputs,
    ResolvedImage,
    picture_width,
)
from assetbuild.suggest import did_you_mean
from assetbuild.uploads import upload_problem

MAX_FIELD_CHARS = 1_000
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")
_URL_UNSAFE = re.compile(r'[\[\]:=,*?"<>|#% ]')
_NUMBERED = re.compile(r"(.+)-([2-9]|1[0-6])")


def _folded(path: str) -> str:
    """A path as case-insensitive, normalising filesystems (APFS, NTFS) compare it."""
    return unicodedata.normalize("NFC", path).casefold()


def matrix_combinations(decl: ImageDecl) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, matrix values) for each image a declaration expands to."""
    if not decl.matrix:
        yield decl.name, {}
        return
    keys = [key for key, _ in decl.matrix]
    for combo in itertools.product(*(values for _, values in decl.matrix)):
        values = dict(zip(keys, combo, strict=True))
        label = ",".join(f"{k}={matrix_label(v)}" for k, v in values.items())
        yield f"{decl.name}[{label}]", values


def default_output(decl: ImageDecl, matrix_values: Mapping[str, Any]) -> str:
    """``NAME.png``; for a matrix image ``NAME-v1-v2.png`` (no brackets or colons in paths)."""
    if not matrix_values:
        return f"{decl.name}.png"
    labels = [_UNSAFE_FILENAME.sub("_", matrix_label(v)) for v in matrix_values.values()]
    return f"{decl.name}-{'-'.join(labels)}.png"


class Resolver:
    """Resolves one manifest's declarations, collecting every problem and warning."""

    def __init__(self, manifest: Manifest) -> None:
        from assetbuild.render import TemplateRenderer

        self.manifest = manifest
        self.root = manifest.root
        self.renderer = TemplateRenderer(manifest.root)
        self.problems: list[Problem] = []
        self._file_digests: dict[Path, str] = {}
        self._files_read: dict[str, tuple[int, int, int]] = {}
        self._folders: dict[str, str | ValueError] = {}
        self.expanded_names: set[str] = set()
        self.warnings: list[str] = []
        out_dir = manifest.settings.out_dir
        self.out_dir = PurePosixPath(out_dir)
        self._out_prefix = "" if str(self.out_dir) == "." else f"{self.out_dir}/"

    def inputs(self) -> ResolutionInputs:
        files = dict(self._files_read)
        files.update({str(p): key for p, key in self.renderer.loader.loaded.items()})
        # By absolute name: the check that they still resolve there must not depend on
        # the folder the next command runs in.
        folders = {os.path.join(self.root, name): r  # noqa: PTH118 - strings, like the rest
                   for name, r in self._folders.items() if isinstance(r, str)}
        return ResolutionInputs(tuple(sorted(files.items())), tuple(sorted(folders.items())))

    def _folder_problem(self, relative: str) -> str | None:
        """Whether an output folder stays inside the manifest's folder (checked once each)."""
        if relative not in self._folders:
            try:
                self._folders[relative] = str(resolve_inside(self.root, relative))
            except ValueError as exc:
                self._folders[relative] = exc
        found = self._folders[relative]
        return str(found) if isinstance(found, ValueError) else None

    def check_written_folders(self) -> None:
        """The lockfile's folder and ``out_dir`` must resolve inside the manifest's folder
        (a symlinked folder in a checkout must not lead a write outside it); they are
        resolved again whenever this resolution is reused."""
        settings = self.manifest.settings
        lock_folder = PurePosixPath(settings.lockfile).parent
        for field_name, folder in (("lockfile", lock_folder),
                                   ("out_dir", PurePosixPath(settings.out_dir))):
            problem = self._folder_problem(str(folder))
            if problem:
                self.problems.append(Problem(
                    self.manifest.path, f"{str(folder)!r} {problem}", None,
                    field_name, None))

    def fail(self, decl: ImageDecl, field_name: str, message: str, name: str) -> None:
        problem = self.manifest.problem(message, decl, field_name)
        self.problems.append(Problem(problem.file, message, name, field_name, problem.line))

    def expand(self, decl: ImageDecl) -> Iterator[ResolvedImage]:
        for name, values in matrix_combinations(decl):
            self.expanded_names.add(name)
            image = self._resolve_one(decl, name, values)
            if image is not None:
                yield image

    def _resolve_one(
        self, decl: ImageDecl, name: str, values: dict[str, Any]
    ) -> ResolvedImage | None:
        context = {**self.manifest.vars, **decl.vars, **values, "name": name}
        before = len(self.problems)
        prompt = self._prompt(decl, name, context)
        defaults = self.manifest.defaults
        aspect = self._enum(decl, name, context, "aspect_ratio",
                            decl.aspect_ratio or defaults.aspect_ratio, ASPECT_RATIOS)
        resolution = self._enum(decl, name, context, "resolution",
                                decl.resolution or defaults.resolution, RESOLUTIONS)
        output_source = decl.output or defaults.output or default_output(decl, values)
        output = self._output(decl, name, context, output_source)
        references = tuple(
            ref for source in decl.references
            if (ref := self._reference(decl, name, context, source)) is not None
        )
        if aspect and resolution:
            self._check_sizes(decl, name, aspect, resolution)
        if len(self.problems) > before:
            return None
        assert prompt is not None and aspect and resolution and output
        return ResolvedImage(name, decl.name, prompt, aspect, resolution, references, output,
                             decl.sizes, decl.formats, decl.takes or defaults.takes)

    def _check_sizes(self, decl: ImageDecl, name: str, aspect: str, resolution: str) -> None:
        """A derived width larger than the picture would only be a copy at full size:
        refuse it while that is known (``auto`` leaves the shape to the API, but never a
        side longer than the resolution's)."""
        widest = picture_width(resolution, aspect)
        too_wide = [w for w in decl.sizes if w > widest]
        if too_wide:
            shape = "at most" if aspect == "auto" else "exactly"
            self.fail(decl, "sizes", f"{too_wide[0]} is wider than the picture: a "
                      f"{resolution} {aspect} image is {shape} {widest} px wide", name)

    def _render(
        self, decl: ImageDecl, name: str, field_name: str, source: str,
        context: Mapping[str, Any], limit: int = MAX_FIELD_CHARS,
    ) -> str | None:
        try:
            return self.renderer.render(source, context, limit)
        except TemplateProblem as exc:
            self.fail(decl, field_name, str(exc), name)
            return None

    def _prompt(self, decl: ImageDecl, name: str, context: dict[str, Any]) -> str | None:
        field_name = "prompt" if decl.prompt is not None else "prompt_file"
        try:
            if decl.prompt is not None:
                prompt = self.renderer.render(decl.prompt, context, MAX_PROMPT_CHARS)
            else:
                assert decl.prompt_file is not None
                prompt = self.renderer.render_file(decl.prompt_file, context, MAX_PROMPT_CHARS)
        except TemplateProblem as exc:
            self.fail(decl, field_name, str(exc), name)
            return None
        if not prompt.strip():
            self.fail(decl, field_name, "renders to an empty prompt", name)
            return None
        return prompt

    def _enum(
        self, decl: ImageDecl, name: str, context: dict[str, Any], field_name: str,
        source: str, allowed: tuple[str, ...],
    ) -> str | None:
        value = self._render(decl, name, field_name, source, context)
        if value is None:
            return None
        if value not in allowed:
            self.fail(decl, field_name, f"{value!r} is not one of {', '.join(allowed)}"
                      f"{did_you_mean(value, allowed)}", name)
            return None
        return value

    def _output(
        self, decl: ImageDecl, name: str, context: dict[str, Any], source: str
    ) -> str | None:
        value = self._render(decl, name, "output", source, context)
        if value is None:
            return None
        problem = relative_path_problem(value)
        suffix = os.path.splitext(value)[1].lower()  # noqa: PTH122 - a string, per output
        if problem is None and suffix not in OUTPUT_SUFFIXES:
            problem = f"must end in one of {', '.join(OUTPUT_SUFFIXES)}"
        joined = self._joined(value)
        if problem is None:
            problem = self._folder_problem(joined.rpartition("/")[0] or ".")
        if problem:
            self.fail(decl, "output", f"{value!r} {problem}", name)
            return None
        unsafe = sorted(set(_URL_UNSAFE.findall(value)))
        if unsafe:
            self.warnings.append(
                f"{self.manifest.path}: image '{name}': output {value!r} has characters "
                f"that Windows and many web servers refuse ({' '.join(unsafe)!r}); the "
                "default output avoids them")
        return joined

    def _joined(self, value: str) -> str:
        """``out_dir / value`` as ``str(PurePosixPath)`` writes it, by string joining
        when nothing in ``value`` needs normalising (pathlib costs ~20 us an output)."""
        if "//" in value or "/./" in value or value.startswith("./") or value.endswith("/"):
            return str(self.out_dir / value)
        return self._out_prefix + value

    def _reference(
        self, decl: ImageDecl, name: str, context: dict[str, Any], source: str
    ) -> Reference | None:
        value = self._render(decl, name, "references", source, context, limit=8_192)
        if value is None:
            return None
        if value.startswith(("http://", "https://")):
            if not urlsplit(value).hostname:
                self.fail(decl, "references", f"{value!r} is not a valid URL", name)
                return None
            return Reference("url", value)
        if value.startswith("image:"):
            return Reference("image", value[len("image:"):])
        has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value)
        if has_scheme and not re.match(r"^[A-Za-z]:[\\/]", value):
            self.fail(decl, "references", f"{value!r}: only http(s) URLs, image:NAME and "
                      "local files are supported", name)
            return None
        return self._local_file(decl, name, value)

    def _local_file(self, decl: ImageDecl, name: str, value: str) -> Reference | None:
        try:
            path = resolve_inside(self.root, value)
        except ValueError as exc:
            self.fail(decl, "references", f"{value!r} {exc}", name)
            return None
        if not path.is_file():
            self.fail(decl, "references", f"{value!r} does not exist (local file references "
                      "are relative to the manifest's folder)", name)
            return None
        digest = self._file_digests.get(path)
        if digest is None:
            stat = path.stat()
            refused = upload_problem(stat.st_size)
            if refused:
                self.fail(decl, "references", f"{value!r} {refused}", name)
                return None
            self._files_read[str(path)] = stat_key(stat)
            digest = self._file_digests[path] = sha256_file(path)
        return Reference("file", str(PurePosixPath(value)), digest)

    def check_cross_references(self, images: list[ResolvedImage]) -> None:
        names = self.expanded_names
        declared = {decl.name: decl for decl in self.manifest.images}
        outputs: dict[str, str] = {}
        for image in images:
            decl = declared[image.base_name]
            for dep in image.dependencies:
                if dep in names:
                    continue
                if dep in declared and declared[dep].matrix:
                    example = next(matrix_combinations(declared[dep]))[0]
                    message = (f"image:{dep} is a matrix; name one of its images, "
                               f"for example image:{example}")
                else:
                    message = f"image:{dep} is not an image of this manifest" + did_you_mean(
                        dep, sorted(names))
                self.fail(decl, "references", message, image.name)
            for path in (image.output, *(p for p, _, _ in image.derived_outputs())):
                other = outputs.setdefault(_folded(path), image.name)
                if other != image.name:
                    self.fail(decl, "output", f"{path!r} is also the output of image "
                              f"'{other}', or the same file on filesystems that ignore case "
                              "and Unicode normalisation", image.name)
        self._check_numbered_siblings(images, outputs)

    def _check_numbered_siblings(self, images: list[ResolvedImage],
                                 outputs: dict[str, str]) -> None:
        """``hero-2.png`` is where a second result of ``hero.png`` goes: no other image
        may write there (it would be overwritten, and ``check`` fail for ever)."""
        declared = {decl.name: decl for decl in self.manifest.images}
        for image in images:
            path = PurePosixPath(image.output)
            match = _NUMBERED.fullmatch(path.stem)
            if match is None:
                continue
            base = _folded(str(path.with_name(match.group(1) + path.suffix)))
            owner = outputs.get(base)
            if owner is not None and owner != image.name:
                self.fail(declared[image.base_name], "output",
                          f"{image.output!r} is where a further result of image '{owner}' "
                          "goes (its second result is numbered -2); choose another name",
                          image.name)
