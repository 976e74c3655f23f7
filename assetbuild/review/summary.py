"""The review as a Markdown table (``$GITHUB_STEP_SUMMARY``, a pull-request comment)
and as JSON data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assetbuild.review import Review, ReviewCard

MAX_PROMPT_WORDS = 12


def markdown(review: Review, page_link: str) -> str:
    """A heading, the counts, and one row per image that is not unchanged; each name
    links to its card on the page at ``page_link``."""
    counts = review.counts()
    lines = [f"### assetbuild review of `{_code(review.manifest)}`", "",
             f"Compared with {_cell(review.base)}: " + ", ".join(
                 f"{count} {change}" for change, count in counts.items()), ""]
    rows = [card for card in review.cards if card.change.change != "unchanged"]
    if not rows:
        lines.append("No image changed.")
        return "\n".join(lines) + "\n"
    lines += ["| Image | Status | Prompt change | Cost | Takes |",
              "|---|---|---|---:|---:|"]
    for card in rows:
        change = card.change
        cost = "" if change.cost_points is None else f"{change.cost_points} points"
        takes = "" if change.new is None else str(change.new.take_count)
        status = change.change + (f" ({change.note})" if change.note else "")
        lines.append(f"| [{_cell(change.name)}]({page_link}#{change.anchor}) | "
                     f"{_cell(status)} | {_cell(_prompt_summary(card))} | {cost} | {takes} |")
    return "\n".join(lines) + "\n"


def as_json(review: Review) -> dict[str, Any]:
    """The review as data: the base, the counts, and each image's change."""
    return {"manifest": review.manifest, "base": review.base,
            "page": str(review.page), "counts": review.counts(),
            "images": [_card_json(card) for card in review.cards]}


def _card_json(card: ReviewCard) -> dict[str, Any]:
    change = card.change
    return {
        "image": change.name, "status": change.change, "note": change.note or None,
        "anchor": change.anchor, "prompt_changed": change.prompt_changed,
        "fields": {f.name: {"old": f.old, "new": f.new} for f in change.fields},
        "cost_points": change.cost_points,
        "old": _side(change.old, card.old), "new": _side(change.new, card.new),
        "takes": [{"take": t.number, "chosen": t.chosen, "task_id": t.task_id,
                   "picture": getattr(t.picture, "full", None)} for t in card.takes],
    }


def _side(entry: Any, picture: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    shown = {"task_id": entry.task_id, "sha256": entry.outputs[0].sha256,
             "path": entry.outputs[0].path}
    if picture is not None and hasattr(picture, "full"):
        shown |= {"picture": picture.full, "thumbnail": picture.thumb,
                  "width": picture.width, "height": picture.height,
                  "bytes": picture.bytes, "source": picture.source}
    elif picture is not None:
        shown["missing"] = picture.reason
    return shown


def _prompt_summary(card: ReviewCard) -> str:
    change = card.change
    if change.change != "changed":
        return ""
    if not change.prompt_changed:
        return ", ".join(f.name for f in change.fields) or "none"
    words = []
    for piece in change.prompt:
        if piece.kind == "same" or not piece.text.strip():
            continue
        text = " ".join(piece.text.split()[:MAX_PROMPT_WORDS])
        words.append(f"~~{text}~~" if piece.kind == "removed" else f"**{text}**")
    return " ".join(words)


def _cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no newlines, no HTML."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;").replace("\n", " "))


def _code(text: str) -> str:
    return text.replace("`", "'")
