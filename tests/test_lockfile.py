"""The lockfile: deterministic bytes, atomic replacement, clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetbuild.errors import LockfileError
from assetbuild.lockfile import LockEntry, OutputRecord, dump_lockfile, write_lockfile
from assetbuild.lockread import parse_lockfile_bytes, read_lockfile


def entry(name: str, **changes: object) -> LockEntry:
    base: dict[str, object] = dict(
        spec_hash="ab" * 32, provider="emulator", task_id=f"task-{name}", state="completed",
        model="see2ai-image", result_urls=(f"https://cdn.example/{name}.png",),
        request={"prompt": f"prompt {name}", "input_urls": [], "aspect_ratio": "auto",
                 "resolution": "2K"},
        outputs=(OutputRecord(f"generated/{name}.png", "cd" * 32, 1234),),
        spec={"action": "see2ai_image_generation_v1"}, cost_points=10, cost_time=2300,
        input_tokens=5, output_tokens=7, total_tokens=12, warnings=("w",),
    )
    base.update(changes)
    return LockEntry(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    entries = {"b": entry("b"), "a": entry("a", cost_points=None)}
    write_lockfile(path, entries)
    assert dict(read_lockfile(path).entries) == entries


def test_bytes_are_sorted_and_stable(tmp_path: Path) -> None:
    first = dump_lockfile({"b": entry("b"), "a": entry("a")})
    second = dump_lockfile({"a": entry("a"), "b": entry("b")})
    assert first == second and first.endswith(b"\n")
    text = first.decode()
    assert text.index('[images.a]') < text.index('[images.b]')
    data = tomllib.loads(text)
    assert data["version"] == 1
    assert set(data["images"]["a"]) >= {
        "spec_hash", "provider", "task_id", "state", "model", "result_urls", "request",
        "outputs", "cost_points", "cost_time", "input_tokens", "output_tokens",
        "total_tokens", "warnings"}


def test_missing_lockfile_is_empty(tmp_path: Path) -> None:
    assert read_lockfile(tmp_path / "none.lock").entries == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("version = 1\n[images.a\n", "is not valid TOML"),
    ("[images]\n", "has no integer 'version'"),
    ("version = 9\n", "newer assetbuild"),
    ("version = 1\n[images.a]\nspec_hash = 3\n", "entry for image 'a' has no valid 'spec_hash'"),
    ("version = 1\nimages = 2\n", "'images' is not a table"),
])
def test_bad_lockfiles_are_errors_and_left_alone(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "assetbuild.lock"
    path.write_text(text)
    with pytest.raises(LockfileError, match=expected) as info:
        read_lockfile(path)
    assert str(path) in str(info.value) and "left as it is" in str(info.value)
    assert path.read_text() == text


def test_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    write_lockfile(path, {"a": entry("a")})
    before = path.read_bytes()

    class Boom(LockEntry):
        def to_toml(self) -> dict[str, object]:
            raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError):
        write_lockfile(path, {"a": entry("a"), "z": Boom(**vars(entry("z")))})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["assetbuild.lock"]


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    path = tmp_path / "assetbuild.lock"
    write_lockfile(path, {"a": entry("a")})
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_incremental_writer_gives_the_bytes_of_a_whole_dump(tmp_path: Path) -> None:
    import tomli_w

    from assetbuild.lockfile import HEADER, LockfileWriter

    entries = {name: entry(name) for name in ("b", "a", 'needs "quotes"', "card[x=1]")}
    writer = LockfileWriter()
    first = writer.render(entries)
    entries["a"] = entry("a", cost_points=99)
    second = writer.render(entries)
    whole = tomli_w.dumps({"version": 1, "images": {n: entries[n].to_toml()
                                                    for n in sorted(entries)}})
    assert second == (HEADER + whole).encode() and first != second
    assert read_lockfile_bytes(tmp_path, second) == entries
    assert tomllib.loads(LockfileWriter().render({}).decode()) == {"version": 1}


def read_lockfile_bytes(folder: Path, data: bytes) -> dict[str, LockEntry]:
    path = folder / "check.lock"
    path.write_bytes(data)
    return dict(read_lockfile(path).entries)


def test_the_parsed_copy_is_reused_while_the_bytes_are_the_same(tmp_path: Path) -> None:
    """A fresh clone (same bytes, new inode and mtime) with its state folder restored
    reuses the parsed lockfile instead of parsing it again; other bytes are parsed."""
    from assetbuild.lockfile import Lockfile, ParsedLockfile, parsed_copy_key
    from assetbuild.state import StateStore

    path = tmp_path / "assetbuild.lock"
    store = StateStore(tmp_path / ".assetbuild")
    write_lockfile(path, {"a": entry("a")})
    assert set(read_lockfile(path, store).entries) == {"a"}
    kept = store.get(parsed_copy_key(path), ParsedLockfile)
    assert kept is not None
    stat_key, digest = kept.stat, kept.sha256
    # What the state folder holds is told apart from a fresh parse by a planted entry.
    store.set(parsed_copy_key(path),
              ParsedLockfile(stat_key, digest, Lockfile({"planted": entry("planted")})))

    clone = tmp_path / "clone.lock"
    clone.write_bytes(path.read_bytes())
    clone.replace(path)  # the same bytes in a new file
    assert set(read_lockfile(path, store).entries) == {"planted"}
    again = store.get(parsed_copy_key(path), ParsedLockfile)
    assert again is not None and again.stat != stat_key, "the new stat is remembered"

    write_lockfile(path, {"b": entry("b")})  # other bytes
    assert set(read_lockfile(path, store).entries) == {"b"}
    store.close()


def _with_takes(chosen: int = 2) -> LockEntry:
    from assetbuild.lockfile import Take

    takes = tuple(Take(f"task-{n}", (f"https://cdn.example/{n}.png",), (f"{n}" * 64,), (n,), 10)
                  for n in range(1, 4))
    return entry("hero", task_id=takes[chosen - 1].task_id, takes=takes, take=chosen)


def test_takes_round_trip_and_make_the_lockfile_version_2(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    write_lockfile(path, {"hero": _with_takes(), "plain": entry("plain")})
    assert tomllib.loads(path.read_text())["version"] == 2
    assert read_lockfile(path).entries["hero"] == _with_takes()
    write_lockfile(path, {"plain": entry("plain")})
    assert tomllib.loads(path.read_text())["version"] == 1, "no takes: as older versions wrote"


@pytest.mark.parametrize(("edit", "said"), [
    (('take = 2', 'take = 5'), "chooses take 5 of 3"),
    (('task_id = "task-2"\nstate', 'task_id = "task-9"\nstate'), "is not take 2's"),
    (('bytes = [\n    1,\n]', 'bytes = []'), "disagree"),
])
def test_a_hand_edited_take_is_a_lockfile_error(tmp_path: Path, edit: tuple[str, str],
                                                said: str) -> None:
    path = tmp_path / "assetbuild.lock"
    write_lockfile(path, {"hero": _with_takes()})
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(LockfileError, match=said):
        read_lockfile(path)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(prompt=_TEXT, name=_TEXT.filter(bool), url=_TEXT, warnings=st.lists(_TEXT, max_size=3),
       points=st.integers(0, 2**63 - 1))
def test_the_compiled_parser_reads_what_is_written_as_tomllib_does(
        prompt: str, name: str, url: str, warnings: list[str], points: int) -> None:
    """rtoml reads lockfiles for speed: on anything assetbuild writes (escapes, control
    characters, any unicode) it must give exactly tomllib's tables."""
    import rtoml

    entry = LockEntry(spec_hash="h", provider="see2ai", task_id="t", state="completed",
                      model="m", result_urls=(url,), request={"prompt": prompt},
                      outputs=(OutputRecord("a.png", "s", 1),), cost_points=points,
                      warnings=tuple(warnings))
    text = dump_lockfile({name: entry}).decode("utf-8")
    assert rtoml.loads(text) == tomllib.loads(text)
    assert parse_lockfile_bytes(text.encode(), Path("x.lock")).entries[name] == entry


def test_a_lockfile_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "assetbuild.lock"
    path.write_text('version = 1\n[images.a]\nspec_hash = "unterminated\n')
    with pytest.raises(LockfileError, match=r"is not valid TOML.*line 3"):
        read_lockfile(path)


_KEYS = ["spec_hash", "provider", "task_id", "state", "model", "result_urls", "request",
         "outputs", "spec", "cost_points", "cost_time", "input_tokens", "output_tokens",
         "total_tokens", "warnings", "derived", "take", "takes"]
_VALUES = st.one_of(st.text(max_size=3), st.sampled_from([-1, 0, 3, 2**63, True, 1.5]),
                    st.floats(allow_nan=False), st.lists(st.text(max_size=2), max_size=2),
                    st.lists(st.integers(-1, 3), max_size=2), st.dictionaries(
                        st.sampled_from(["path", "sha256", "bytes"]),
                        st.one_of(st.text(max_size=2), st.integers(-1, 3)), max_size=3),
                    st.lists(st.fixed_dictionaries({"path": st.text(max_size=2),
                                                    "sha256": st.text(max_size=2),
                                                    "bytes": st.sampled_from([-1, 3, "3"])}),
                             min_size=1, max_size=2))


@settings(max_examples=600, deadline=None)
@given(dropped=st.sets(st.sampled_from(_KEYS), max_size=3),
       replaced=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=3))
def test_the_one_pass_reader_accepts_only_what_the_field_checks_accept(
        dropped: set[str], replaced: dict[str, object]) -> None:
    """plain_entry (the fast path) reads an entry exactly as LockEntry.from_toml does, or
    leaves it to from_toml: it never accepts what from_toml would refuse."""
    from assetbuild.lockread import plain_entry

    table = entry("a").to_toml() | {"derived": [{"path": "d.webp", "sha256": "e", "bytes": 3}]}
    for key in dropped:
        table.pop(key, None)
    table.update(replaced)
    fast = plain_entry(table)
    try:
        checked: LockEntry | None = LockEntry.from_toml(table)
    except (ValueError, TypeError):
        checked = None
    if fast is not None:
        assert checked == fast
    if not dropped and not replaced:
        assert fast == entry("a", derived=(OutputRecord("d.webp", "e", 3),))


def _long_lockfile_text() -> str:
    entries = {f"tile-{n:02}": entry(f"tile-{n:02}") for n in range(60)}
    return dump_lockfile(entries).decode()


def test_a_long_lockfile_is_parsed_in_pieces_to_the_same_tables() -> None:
    from assetbuild.lockread import _piece_starts, parse_toml_in_pieces

    text = _long_lockfile_text()
    assert len(_piece_starts(text, 300)) > 20, "cut into pieces"
    assert all(text[start:].startswith("[images.") for start in _piece_starts(text, 300)[1:])
    assert parse_toml_in_pieces(text, 300) == tomllib.loads(text)


@pytest.mark.parametrize("edit", ["table moved away", "header in a string", "entry twice"])
def test_pieces_that_do_not_fit_together_leave_it_to_the_whole_text(edit: str) -> None:
    """Hand edits that pieces would misread: an entry's table far from the entry, a
    header-like line inside a multi-line string, an entry defined twice. Each parses
    as one document would (or fails as it would)."""
    import rtoml

    from assetbuild.lockread import parse_toml_in_pieces

    text = _long_lockfile_text()
    if edit == "table moved away":
        start = text.index("[images.tile-03.request]")
        end = text.index("\n\n", start)
        text = text[:start] + text[end + 2:] + "\n" + text[start:end] + "\n"
    elif edit == "header in a string":
        text = text.replace('model = "see2ai-image"', 'model = """x\n[images.fake]\ny"""', 5)
    else:
        start = text.index("[images.tile-04]")
        text += "\n" + text[start:text.index("[images.tile-05]")]
        with pytest.raises(rtoml.TomlParsingError):
            parse_toml_in_pieces(text, 300)
        return
    assert parse_toml_in_pieces(text, 300) == tomllib.loads(text)
