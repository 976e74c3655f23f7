"""Where things are in a manifest's TOML text: the line of each table and key (for
messages that name them), found by scanning the text tomllib parsed."""

from __future__ import annotations

import re

from assetbuild.manifest.model import MAX_KEY_DOTS


def deep_key_line(text: str) -> int | None:
    """The line of a key (or table header) with more than MAX_KEY_DOTS dots, if any."""
    if text.count(".") <= MAX_KEY_DOTS:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if line.partition("=")[0].count(".") > MAX_KEY_DOTS:
            return number
    return None


def line_from_message(message: str) -> int | None:
    """The line number a TOML error message names, if any."""
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class KeyLines:
    """Line numbers of table headers and keys, found by scanning the TOML text."""

    _HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")
    _KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, ...], dict[str, int]] = {(): {}}
        current: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                current = tuple(_split_dotted(header.group(1)))
                self.tables.setdefault(current, {})[""] = number
                continue
            key = self._KEY.match(line)
            if key:
                name = next(g for g in key.groups() if g is not None)
                self.tables.setdefault(current, {}).setdefault(name, number)

    def of(self, *table: str) -> dict[str, int]:
        """Key -> line for a table ("" is the header's line)."""
        lines = dict(self.tables.get(tuple(table), {}))
        if not lines and len(table) == 2:  # an inline table: `name = { ... }`
            parent_line = self.tables.get(table[:1], {}).get(table[1])
            if parent_line:
                lines[""] = parent_line
        return lines


def _split_dotted(key: str) -> list[str]:
    parts = re.findall(r"""\s*(?:"([^"]*)"|'([^']*)'|([^.\s]+))\s*(?:\.|$)""", key)
    return [next((p for p in groups if p), "") for groups in parts]
