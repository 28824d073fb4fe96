"""`digest draft`: the weekly digest drafts itself, and an editor stays the gate.

From the feeds in config: compose the entries no earlier issue used, write the issue
file, check it, and send it to staff with a note on top saying how to preview and
schedule it. Nothing reaches subscribers until an editor schedules the file. With
nothing new in the feeds there is no draft and nothing is sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import httpx

from digest.build import build
from digest.compose import FeedIssue, compose_from_feeds
from digest.config import Settings
from digest.errors import ConfigError, DigestError, NothingNew
from digest.issuefile import dump_issue, write_issue
from digest.providers import Outcome
from digest.testsend import send_test

DRAFT_PREFIX = "[DRAFT] "


@dataclass(frozen=True)
class Draft:
    path: Path
    composed: FeedIssue
    outcomes: tuple[Outcome, ...]  # the send to staff; empty when not sent


def staff_note(composed: FeedIssue, path: Path, today: dt.date) -> str:
    count = len(composed.issue.sections)
    note = (
        f"**Draft for {today:%A, %B} {today.day}**: {count} conversation"
        f"{'' if count == 1 else 's'}. Preview with `digest preview {path}`; schedule with "
        f'`digest schedule {path} --at "YYYY-MM-DD HH:MM"`. Nothing reaches subscribers '
        "until an editor schedules it."
    )
    if composed.skipped:
        note += f" Skipped {len(composed.skipped)}: " + "; ".join(composed.skipped[:3])
    return note


def make_draft(
    settings: Settings,
    *,
    send: bool = True,
    client: httpx.Client | None = None,
    today: dt.date | None = None,
) -> Draft | None:
    """The new draft, or None when the feeds have nothing new."""
    if not settings.draft.feeds:
        raise ConfigError("draft.feeds: list the feeds (URLs or files) to draft issues from")
    today = today or dt.date.today()
    try:
        composed = compose_from_feeds(
            list(settings.draft.feeds),
            settings,
            max_entries=settings.draft.max_conversations,
            match=settings.draft.match,
            client=client,
            today=today,
        )
    except NothingNew:
        return None
    write_issue(dump_issue(composed.issue), composed.path, force=False)
    checked = build(composed.path, settings)
    errors = [f for f in checked.findings if f.level == "error"]
    if errors:
        raise DigestError(
            f"{composed.path}: the draft is written but fails the check with {len(errors)} "
            f"error(s), first: {errors[0].message}; nothing sent to staff"
        )
    outcomes: list[Outcome] = []
    if send:
        note = staff_note(composed, composed.path, today)
        outcomes = send_test(composed.path, settings, prefix=DRAFT_PREFIX, staff_note=note)
    return Draft(composed.path, composed, tuple(outcomes))
