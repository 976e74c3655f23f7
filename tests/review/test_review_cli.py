"""``assetbuild review`` driven as a user would: a git repo built and committed, an
edit rebuilt, and the page that shows exactly what changed, old beside new."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from assetbuild.hashing import sha256_file
from tests.conftest import ProjectDir, RunCli
from tests.review.conftest import Repo, git


def _locked(repo: Repo, name: str) -> dict[str, object]:
    lock = tomllib.loads((repo.project.root / "assetbuild.lock").read_text())
    entry: dict[str, object] = lock["images"][name]
    return entry


def _untrack_hero(repo: Repo) -> None:
    git(repo.project.root, "rm", "-q", "--cached", "generated/web/hero.png")
    with (repo.project.root / ".gitignore").open("a") as ignore:
        ignore.write("generated/web/hero.png\n")
    repo.commit("stop tracking the hero picture")


def test_an_edited_prompt_is_the_one_change_with_both_pictures(repo: Repo) -> None:
    before = sha256_file(repo.project.root / "generated/web/hero.png")
    repo.edit("calm sea", "stormy sea")
    repo.build()
    after = sha256_file(repo.project.root / "generated/web/hero.png")
    assert before != after

    data = repo.review()

    assert data["counts"] == {"changed": 1, "new": 0, "removed": 0, "unchanged": 2}
    [hero] = [card for card in data["images"] if card["status"] == "changed"]
    assert hero["image"] == "hero" and hero["prompt_changed"]
    assert hero["old"]["sha256"] == before and hero["old"]["source"] == "git"
    assert hero["new"]["sha256"] == after and hero["new"]["source"] == "working tree"
    assert (hero["old"]["width"], hero["old"]["height"]) == (1024, 576)
    for side in ("old", "new"):
        assert sha256_file(repo.folder / hero[side]["picture"]) == hero[side]["sha256"]
        assert (repo.folder / hero[side]["thumbnail"]).stat().st_size > 0
    page = (repo.folder / "index.html").read_text()
    assert hero["old"]["thumbnail"] in page and hero["new"]["thumbnail"] in page
    assert "<del>calm </del><ins>stormy </ins>" in page
    assert page.count('class="card"') == 1, "only the changed image has a card"


def test_since_compares_with_an_older_revision(repo: Repo) -> None:
    first = git(repo.project.root, "rev-parse", "HEAD").strip()
    repo.edit("red sneakers", "blue sneakers")
    repo.build()
    repo.commit("blue card")
    assert repo.review()["counts"]["changed"] == 0, "HEAD has the blue card already"
    data = repo.review("--since", first)
    assert [c["image"] for c in data["images"] if c["status"] == "changed"] == ["card"]
    assert data["base"].startswith(f"git {first} (")


def test_new_and_removed_images_have_their_own_sections(repo: Repo) -> None:
    text = repo.project.manifest.read_text()
    text = text.replace('[images.card]\nprompt = "a product card, red sneakers"\n'
                        'output = "web/card.jpg"\n', "")
    repo.project.manifest.write_text(text + '[images.icon]\nprompt = "a small cup icon"\n')
    repo.build()
    assert repo.run_cli("prune", "-f", str(repo.project.manifest), "--yes").code == 0
    data = repo.review()
    statuses = {card["image"]: card["status"] for card in data["images"]}
    assert statuses == {"card": "removed", "hero": "unchanged", "icon": "new",
                        "logo": "unchanged"}
    icon = next(c for c in data["images"] if c["image"] == "icon")
    assert icon["old"] is None and icon["new"]["source"] == "working tree"
    page = (repo.folder / "index.html").read_text()
    assert 'id="new"' in page and 'id="image-icon"' in page
    card = next(c for c in data["images"] if c["image"] == "card")
    assert card["old"]["source"] == "git" and card["new"] is None
    assert 'id="image-card"' in page


def test_the_old_picture_comes_from_the_cache_when_git_lacks_it(
        repo: Repo, tmp_path: Path) -> None:
    _untrack_hero(repo)
    repo.edit("calm sea", "foggy sea")
    repo.build()
    hero = next(c for c in repo.review()["images"] if c["image"] == "hero")
    assert hero["old"]["source"] == "result cache"


def test_the_old_picture_comes_from_its_url_when_git_and_cache_lack_it(
        repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _untrack_hero(repo)
    repo.edit("calm sea", "foggy sea")
    repo.build()
    monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(tmp_path / "empty-cache"))
    hero = next(c for c in repo.review()["images"] if c["image"] == "hero")
    assert hero["old"]["source"] == "URL", "downloaded from the emulator over loopback"
    assert sha256_file(repo.folder / hero["old"]["picture"]) == hero["old"]["sha256"]


def test_a_picture_found_nowhere_is_said_not_available(
        project: ProjectDir, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process emulator's URLs (".invalid") never resolve: no git, no cache, no URL.
    project.write_manifest('version = 1\n[settings]\nprovider = "emulator"\n'
                           '[images.sky]\nprompt = "a clear sky"\nresolution = "1K"\n')
    project.write(".gitignore", ".assetbuild/\ngenerated/\n")
    git(project.root, "init", "-q")
    assert run_cli("build", "-f", str(project.manifest)).code == 0
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    project.manifest.write_text(project.manifest.read_text().replace("clear", "cloudy"))
    assert run_cli("build", "-f", str(project.manifest)).code == 0
    monkeypatch.setenv("ASSETBUILD_CACHE_DIR", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    result = run_cli("review", "-f", str(project.manifest), "-o", str(out), "--json")
    assert result.code == 0, result.err
    page = (out / "index.html").read_text()
    assert "before: not available: not in git, not in the result cache" in page
    assert 'class="missing"' in page


def test_outside_git_the_review_is_of_the_last_build(
        project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest('version = 1\n[settings]\nprovider = "emulator"\n'
                           '[images.a]\nprompt = "one apple"\nresolution = "1K"\n'
                           '[images.b]\nprompt = "one pear"\nresolution = "1K"\n')
    manifest = str(project.manifest)
    assert run_cli("build", "-f", manifest).code == 0
    project.manifest.write_text(project.manifest.read_text().replace("one pear", "two pears"))
    assert run_cli("build", "-f", manifest).code == 0
    assert run_cli("build", "-f", manifest).code == 0, "a no-op build keeps the base"
    out = project.root / "review"
    result = run_cli("review", "-f", manifest, "-o", str(out), "--markdown")
    assert result.code == 0, result.err
    assert "[b](" in result.out and "[a](" not in result.out
    assert "before the last build" in result.out
    assert "~~pear~~ **pears**" in result.out.replace("one ", "").replace("two ", "")


@pytest.mark.parametrize("args, words", [
    (("--since", "no-such-branch"), "no such revision"),
    (("--since", "HEAD~5"), "no such revision"),
])
def test_a_revision_that_does_not_exist_is_exit_2(
        repo: Repo, run_cli: RunCli, args: tuple[str, ...], words: str) -> None:
    lock = (repo.project.root / "assetbuild.lock").read_bytes()
    result = run_cli("review", "-f", str(repo.project.manifest), "-o", str(repo.folder),
                     *args)
    assert result.code == 2
    assert words in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1, "one paragraph"
    assert not repo.folder.exists(), "nothing written"
    assert (repo.project.root / "assetbuild.lock").read_bytes() == lock


def test_since_outside_a_git_repository_is_exit_2(
        project: ProjectDir, run_cli: RunCli) -> None:
    project.write_manifest('version = 1\n[images.a]\nprompt = "x"\n')
    out = project.root / "review"
    result = run_cli("review", "-f", str(project.manifest), "--since", "main", "-o", str(out))
    assert result.code == 2
    assert "is not in a git repository" in result.err
    assert not out.exists()


def test_a_folder_that_is_not_a_review_is_never_replaced(
        repo: Repo, run_cli: RunCli) -> None:
    repo.folder.mkdir()
    (repo.folder / "notes.txt").write_text("mine")
    result = run_cli("review", "-f", str(repo.project.manifest), "-o", str(repo.folder))
    assert result.code == 2 and "is not a review folder" in result.err
    assert (repo.folder / "notes.txt").read_text() == "mine"
    shutil.rmtree(repo.folder)
    repo.review()
    repo.review()  # an older review is replaced
    assert (repo.folder / "index.html").exists()
    assert not any(p.name.startswith(".review-out") for p in repo.folder.parent.iterdir())


def test_targets_limit_the_review(repo: Repo, run_cli: RunCli) -> None:
    repo.edit("calm sea", "stormy sea")
    repo.edit("red sneakers", "green sneakers")
    repo.build()
    data = repo.review("card")
    assert [c["image"] for c in data["images"]] == ["card"]
    result = run_cli("review", "-f", str(repo.project.manifest), "nope")
    assert result.code == 2 and "matches 'nope'" in result.err


def test_markdown_links_each_changed_image_to_its_card(repo: Repo, run_cli: RunCli) -> None:
    repo.edit("calm sea", "calm | sea")
    repo.build()
    result = run_cli("review", "-f", str(repo.project.manifest), "-o", str(repo.folder),
                     "--markdown")
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if line.startswith("| [")]
    assert len(rows) == 1
    assert "index.html#image-hero)" in rows[0] and "| changed |" in rows[0]
    assert "\\|" in rows[0], "a pipe in the prompt does not break the table"
    assert rows[0].count(" | ") >= 4


def test_a_hostile_prompt_is_text_on_the_page(repo: Repo) -> None:
    repo.edit("calm sea", "<script>alert(1)</script><img src=x onerror=alert(2)>")
    repo.build()
    repo.review()
    page = (repo.folder / "index.html").read_text()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1, "only the page's own script"


def test_picked_take_shows_on_a_contact_sheet(repo: Repo, run_cli: RunCli) -> None:
    repo.edit('output = "web/hero.png"', 'output = "web/hero.png"\ntakes = 3')
    repo.build()
    repo.commit("three takes")
    assert run_cli("pick", "-f", str(repo.project.manifest), "hero", "3").code == 0
    data = repo.review()
    hero = next(c for c in data["images"] if c["image"] == "hero")
    assert hero["status"] == "changed" and "take 3 picked" in hero["note"]
    assert hero["cost_points"] == 0, "a pick pays for nothing"
    assert [t["take"] for t in hero["takes"]] == [1, 2, 3]
    assert [t["chosen"] for t in hero["takes"]] == [False, False, True]
    assert all((repo.folder / t["picture"]).exists() for t in hero["takes"])
    page = (repo.folder / "index.html").read_text()
    assert "assetbuild pick hero 2" in page
    assert _locked(repo, "hero")["take"] == 3


def test_more_takes_of_the_same_spec_keep_the_output_and_say_so(repo: Repo) -> None:
    repo.edit('output = "web/hero.png"', 'output = "web/hero.png"\ntakes = 3')
    repo.build()
    hero = next(c for c in repo.review()["images"] if c["image"] == "hero")
    assert hero["status"] == "changed"
    assert hero["note"] == "2 more take(s) paid for; output unchanged"
    assert hero["old"]["sha256"] == hero["new"]["sha256"]
    assert hero["cost_points"] == 2 * _locked(repo, "hero")["cost_points"]  # type: ignore[operator]
    page = (repo.folder / "index.html").read_text()
    assert "output (unchanged)" in page and "before</strong>" not in page
