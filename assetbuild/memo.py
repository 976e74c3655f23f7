"""Typed memos as plain JSON: what the state folder and the result cache store.

Nothing assetbuild keeps on disk is a pickle. A state folder can come from an
untrusted checkout (a pull request can force-add ``.assetbuild/``), and unpickling
its rows would run whatever code they name. Values are encoded here to JSON with
msgspec and decoded back into the exact type the caller asks for; a row that does
not decode into that type is treated as absent, never as code or as a crash.

Every memo key carries :data:`MEMO_FORMAT`; bump it when a stored type changes shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MEMO_FORMAT = 3
"""The shape of stored memos (1 was pickles keyed by the package version; 3 has takes)."""


def _encode_hook(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(f"cannot store a {type(value).__name__}")


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read a {kind}")


def encode(value: Any) -> bytes | None:
    """``value`` (dataclasses, tuples, mappings, paths, JSON scalars) as JSON bytes;
    None if it holds something JSON cannot carry (a TOML date in ``[vars]``), in which
    case the caller simply does not memoise it."""
    import msgspec

    try:
        return msgspec.json.encode(value, enc_hook=_encode_hook)
    except (NotImplementedError, TypeError, OverflowError, msgspec.EncodeError):
        return None


def decode(data: object, kind: type[T]) -> T | None:
    """The value of type ``kind`` that ``data`` encodes, or None if it is not one."""
    import msgspec

    if not isinstance(data, bytes):
        return None
    try:
        return msgspec.json.decode(data, type=kind, dec_hook=_decode_hook)
    except (msgspec.DecodeError, msgspec.ValidationError, NotImplementedError,
            ValueError, TypeError, RecursionError):
        return None
