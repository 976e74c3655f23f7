"""review: the page that shows what a build made beside what was there before."""

from __future__ import annotations

from pathlib import Path

import click

from assetbuild.cli.app import (
    EXIT_OK,
    cli,
    echo,
    json_option,
    load_project,
    manifest_option,
    targets_argument,
)


@cli.command()
@manifest_option
@targets_argument
@click.option("--since", metavar="REV", default=None,
              help="Compare with the lockfile at this git revision (default: HEAD; "
                   "outside git, with the lockfile before the last build).")
@click.option("-o", "--output", "folder", type=click.Path(path_type=Path),
              default=Path("assetbuild-review"), show_default=True,
              help="The folder to write the review into (index.html and its pictures).")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print a Markdown summary table (for $GITHUB_STEP_SUMMARY) on stdout.")
@json_option
@click.option("--open", "open_page", is_flag=True, help="Open the page in a browser.")
def review(manifest_path: Path, targets: tuple[str, ...], since: str | None, folder: Path,
           as_markdown: bool, as_json: bool, open_page: bool) -> int:
    """Write a page of every image whose locked result changed, old beside new.

    The folder is self-contained (it opens from disk with no server, network or key),
    so CI can upload it as an artifact. TARGETS limit it to some images.
    """
    from assetbuild import report as reports
    from assetbuild.review import ReviewOptions, make_review
    from assetbuild.review.summary import as_json as review_json
    from assetbuild.review.summary import markdown

    project = load_project(manifest_path)
    done = make_review(project, ReviewOptions(targets=targets, since=since, folder=folder))
    if as_json:
        echo(reports.dumps(review_json(done)))
    elif as_markdown:
        echo(markdown(done, _link(done.page)))
    else:
        counts = done.counts()
        echo(f"Wrote {done.page}: {counts['changed']} changed, {counts['new']} new, "
             f"{counts['removed']} removed, {counts['unchanged']} unchanged "
             f"(compared with {done.base}).")
    if open_page:
        click.launch(str(done.page.absolute()))
    return EXIT_OK


def _link(page: Path) -> str:
    """The page as a Markdown link target: relative to here when it is below here."""
    from assetbuild.review import shown_path

    shown = shown_path(page)
    return page.absolute().as_uri() if Path(shown).is_absolute() else shown
