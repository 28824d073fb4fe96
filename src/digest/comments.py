"""Each expert's whole comment, sentence by sentence, kept beside an issue file so that an
editor can choose the excerpt from the expert's own sentences (the desk shows them).

``issues/.comments/<issue>.json`` maps each expert's Read more link (which stays put when
experts are reordered or renamed) to their name and their comment as paragraphs of
sentences in inline Markdown. Composing writes it; nothing else does. An issue without
one (written by hand, or composed from feeds) is edited by typing the excerpt.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from digest.excerpt import sentence_markdown
from digest.issuefile import Issue
from digest.model import Conversation

FOLDER = ".comments"


def comments_for(conversations: list[Conversation], issue: Issue) -> dict[str, Any]:
    """Read more link -> {"name", "paragraphs": [[sentence, ...], ...]}, in the order the
    issue's sections and experts were built from the conversations."""
    out: dict[str, Any] = {}
    for conversation, section in zip(conversations, issue.sections, strict=False):
        for comment, expert in zip(conversation.comments, section.experts, strict=False):
            paragraphs = [sentence_markdown(p) for p in comment.paragraphs]
            out[expert.read_more] = {
                "name": expert.name,
                "paragraphs": [p for p in paragraphs if p],
            }
    return out


def comments_path(issue_path: Path) -> Path:
    return issue_path.parent / FOLDER / f"{issue_path.stem}.json"


def write_comments(issue_path: Path, comments: dict[str, Any]) -> None:
    """Write beside the issue file, atomically (a crash leaves the old one or the new)."""
    target = comments_path(issue_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(comments, out, ensure_ascii=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_comments(issue_path: Path) -> dict[str, Any]:
    """The comments kept for the issue, or {} (none kept, or unreadable)."""
    try:
        data = json.loads(comments_path(issue_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
