"""The review page in a real browser: headless Chromium opens ``index.html`` from disk,
with every host unresolvable, and every picture on it must have decoded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.review.conftest import Repo

NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND"


def chromium() -> str:
    """Debian's chromium; CI installs it, so there a missing one fails the test."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it with apt-get)")
        pytest.skip("chromium is not installed")
    return found


def run_chromium(page: Path, profile: Path, *args: str) -> str:
    """Load ``page`` headless, offline, and return what chromium printed on stdout."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", NO_NETWORK, "--virtual-time-budget=10000",
               *args, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def counted(page: Path, profile: Path) -> tuple[int, int]:
    """(pictures, broken) as the page's own script counted them once it had loaded;
    chromium is asked again if it dumped the page before its load event (seen once on a
    loaded CI machine with a picture missing)."""
    for attempt in range(3):
        dom = run_chromium(page, profile.with_name(f"{profile.name}-{attempt}"), "--dump-dom")
        body = re.search(r'<body data-pictures="(\d+)" data-broken="(\d+)"', dom)
        if body is not None:
            return int(body[1]), int(body[2])
    tag = re.search(r"<body[^>]*>", dom)
    pytest.fail(f"the page's script never counted its pictures: {tag[0] if tag else dom[:300]}")


def _reviewed(repo: Repo, run_cli: RunCli) -> Path:
    repo.edit("calm sea", "stormy sea")
    repo.edit('output = "web/card.jpg"', 'output = "web/card.jpg"\ntakes = 3')
    repo.build()
    repo.review()
    return repo.folder / "index.html"


def test_every_picture_on_the_page_decodes_in_a_browser(
        repo: Repo, run_cli: RunCli, tmp_path: Path) -> None:
    page = _reviewed(repo, run_cli)
    shown = len(re.findall(r"<img ", page.read_text()))
    assert shown == 2 + 1 + 3, "hero old and new, card (output unchanged), its three takes"
    assert counted(page, tmp_path / "profile") == (shown, 0)


def test_a_screenshot_of_the_page_is_not_blank(
        repo: Repo, run_cli: RunCli, tmp_path: Path) -> None:
    from PIL import Image

    page = _reviewed(repo, run_cli)
    shot = tmp_path / "review.png"
    run_chromium(page, tmp_path / "profile", f"--screenshot={shot}",
                 "--window-size=900,1400")
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "pictures and text, not a blank page"


def test_a_missing_picture_is_counted_broken(
        repo: Repo, run_cli: RunCli, tmp_path: Path) -> None:
    # The counter itself is checked: a thumbnail removed after writing shows as broken.
    page = _reviewed(repo, run_cli)
    hero = next(c for c in repo.review()["images"] if c["image"] == "hero")
    thumbnail = hero["old"]["thumbnail"]  # shown once (take 1 of card shares its output's)
    assert page.read_text().count(thumbnail) == 1
    (repo.folder / thumbnail).unlink()
    pictures, broken = counted(page, tmp_path / "profile")
    assert (pictures, broken) == (6, 1)
