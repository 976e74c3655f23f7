"""Reading a lockfile: the bytes parsed (rtoml, a piece at a time), every entry checked,
and the parsed copy in the state folder reused while the file is unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetbuild.errors import LockfileError
from assetbuild.hashing import sha256_bytes, stat_key
from assetbuild.lockfile import (
    LOCKFILE_VERSION,
    LockEntry,
    Lockfile,
    OutputRecord,
    ParsedLockfile,
    parsed_copy_key,
)

if TYPE_CHECKING:
    from assetbuild.state import StateStore


def read_lockfile(path: Path, store: StateStore | None = None) -> Lockfile:
    """Read the lockfile at ``path``; a missing file is an empty lockfile.

    With a ``store``, the parsed lockfile is kept there and reused while the file's
    size, mtime and inode are unchanged, or else while its bytes are (a fresh clone
    with the state folder restored from a CI cache): parsing 10,000 entries of TOML
    takes seconds, reading and hashing them milliseconds.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Lockfile()
    except OSError as exc:
        raise LockfileError(path, f"cannot be read ({exc})") from None
    cached = store.get(parsed_copy_key(path), ParsedLockfile) if store is not None else None
    if cached is not None and cached.stat == stat_key(stat):
        return cached.lockfile
    try:
        data = path.read_bytes()
        digest = sha256_bytes(data)
        lockfile = (cached.lockfile if cached is not None and cached.sha256 == digest
                    else parse_lockfile_bytes(data, path))
    except FileNotFoundError:
        return Lockfile()
    except OSError as exc:
        raise LockfileError(path, f"cannot be read ({exc})") from None
    if store is not None:
        store.set(parsed_copy_key(path), ParsedLockfile(stat_key(stat), digest, lockfile))
    return lockfile


def parse_lockfile_bytes(data: bytes, path: Path) -> Lockfile:
    """Parse and validate a lockfile's bytes (``path`` names it in errors).

    rtoml, a compiled parser, reads a 10,000-image lockfile (10 MB) in about 0.4 s
    where the standard library's pure-Python ``tomllib`` takes 3.8 s; both give the
    same tables for the TOML assetbuild writes (a test compares them).
    """
    import rtoml

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockfileError(path, f"cannot be read ({exc})") from None
    try:
        document = parse_toml_in_pieces(text)
    except rtoml.TomlParsingError:
        # What rtoml refuses, tomllib reads or explains as before: its messages name
        # the line, and it reads values rtoml refuses (1e400 is inf), which the checks
        # below then name by image and field.
        import tomllib

        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LockfileError(path, f"is not valid TOML ({exc})") from None
    return parse_lockfile(document, path)


PIECE_CHARS = 1 << 20
"""About how much of a lockfile :func:`parse_toml_in_pieces` parses at a time."""


def parse_toml_in_pieces(text: str, piece_chars: int = PIECE_CHARS) -> dict[str, Any]:
    """The TOML document ``text``, parsed with rtoml a piece at a time.

    rtoml's time grows faster than the text: a 100,000-entry lockfile (100 MB) took
    5.3 s in one call and 1.5 s as 1 MB pieces. Pieces are cut just before an entry's
    own table header (``[images.NAME]``) and their entries put together. A cut in a
    wrong place (a header-like line inside a multi-line string) leaves a piece that does
    not parse; an entry whose tables lie in two pieces, or a key defined twice, is seen
    when they are put together: in either case the whole text is parsed in one call,
    which gives the same tables, or the error, as it always did.
    """
    import rtoml

    starts = _piece_starts(text, piece_chars)
    if len(starts) == 1:
        return rtoml.loads(text)
    try:
        pieces = [rtoml.loads(text[start:end])
                  for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]
    except rtoml.TomlParsingError:
        pieces = []
    document = _joined_pieces(pieces) if pieces else None
    return document if document is not None else rtoml.loads(text)


def _piece_starts(text: str, piece_chars: int) -> list[int]:
    """Where each piece begins: 0, then the first entry header after each stretch."""
    import rtoml

    starts, position = [0], piece_chars
    while (found := text.find("\n[images.", position)) != -1:
        line_end = text.find("\n", found + 1)
        header = text[found + 1:line_end if line_end != -1 else len(text)]
        try:
            images = rtoml.loads(header).get("images")
        except rtoml.TomlParsingError:
            images = None
        if isinstance(images, dict) and len(images) == 1 and next(iter(images.values())) == {}:
            starts.append(found + 1)
            position = found + 1 + piece_chars
        else:
            position = found + 1
    return starts


def _joined_pieces(pieces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The pieces as one document, or None if they overlap (the whole text decides)."""
    document = pieces[0]
    images = document.setdefault("images", {})
    if not isinstance(images, dict):
        return None
    for piece in pieces[1:]:
        for key, value in piece.items():
            if key != "images":
                if key in document:
                    return None
                document[key] = value
                continue
            for name, entry in value.items():
                if name in images:
                    return None
                images[name] = entry
    return document


def parse_lockfile(data: Mapping[str, Any], path: Path) -> Lockfile:
    """Validate parsed lockfile TOML."""
    version = data.get("version")
    if type(version) is not int:
        raise LockfileError(path, "has no integer 'version'")
    if version > LOCKFILE_VERSION:
        raise LockfileError(path, f"was written by a newer assetbuild (lockfile version "
                                  f"{version}; this one reads {LOCKFILE_VERSION}); upgrade")
    if version < 1:
        raise LockfileError(path, f"has an unknown version {version}")
    images = data.get("images", {})
    if not isinstance(images, dict):
        raise LockfileError(path, "'images' is not a table")
    entries: dict[str, LockEntry] = {}
    for name, table in images.items():
        try:
            if not isinstance(table, dict):
                raise ValueError("is not a table")
            entries[name] = plain_entry(table) or LockEntry.from_toml(table)
        except (ValueError, TypeError) as exc:
            raise LockfileError(path, f"entry for image '{name}' {exc}") from None
    return Lockfile(entries)


def plain_entry(table: Mapping[str, Any]) -> LockEntry | None:
    """The entry, if it has the shape a build writes (no takes; every field present is
    of its type and range), in one pass; else None, and :meth:`LockEntry.from_toml`
    checks it field by field and names what is wrong. A third of a 10,000-entry
    lockfile's check went to calling a checker per field."""
    if not isinstance(table, dict) or "takes" in table or "take" in table:
        return None
    get: Any = table.get  # the values are checked below, one by one
    strings: tuple[Any, ...] = (get("spec_hash"), get("provider"), get("task_id"),
                                get("state"), get("model", ""))
    request, spec = get("request"), get("spec", {})
    urls, warnings = get("result_urls"), get("warnings", [])
    counts = (get("input_tokens", 0), get("output_tokens", 0), get("total_tokens", 0),
              get("cost_points", 0), get("cost_time", 0))
    outputs, derived = _plain_records(get("outputs")), _plain_records(get("derived", []))
    if (not all(type(value) is str for value in strings)
            or type(request) is not dict or type(spec) is not dict
            or not _plain_strings(urls) or not _plain_strings(warnings)
            or not all(type(n) is int and 0 <= n < 2**63 for n in counts)
            or outputs is None or derived is None):
        return None
    spec_hash, provider, task_id, state, model = strings
    return LockEntry(spec_hash, provider, task_id, state, model, result_urls=tuple(urls),
                     request=request, outputs=outputs, spec=spec,
                     cost_points=get("cost_points"), cost_time=get("cost_time"),
                     input_tokens=counts[0], output_tokens=counts[1], total_tokens=counts[2],
                     warnings=tuple(warnings), derived=derived)


def _plain_strings(values: Any) -> bool:
    return type(values) is list and all(type(value) is str for value in values)


def _plain_records(items: Any) -> tuple[OutputRecord, ...] | None:
    if type(items) is not list:
        return None
    records = []
    for item in items:
        if type(item) is not dict:
            return None
        path, sha256, size = item.get("path"), item.get("sha256"), item.get("bytes")
        if type(path) is not str or type(sha256) is not str or type(size) is not int or size < 0:
            return None
        records.append(OutputRecord(path, sha256, size))
    return tuple(records)
