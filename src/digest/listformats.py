"""Other tools' subscriber exports, recognised by their header rows: where the names
are, and which people had left, so that an import brings them in as they were.

- Mailchimp: "Email Address", "First Name", "Last Name", OPTIN_TIME; its unsubscribed
  export has UNSUB_TIME, its cleaned (bounced) export CLEAN_TIME.
- Substack: "email", "active_subscription", "email_disabled" (true: they left).
- Buttondown: "email" or "email_address", and "type" or "subscriber_type"
  (unsubscribed, removed: they left; undeliverable: bounced).
- listmonk: "uuid", "email", "name", "status" (blocklisted: they left).
- Any file with a "status" column, digest's own export among them: unsubscribed,
  bounced, cleaned, complained are taken as said.

Someone an export says had left comes in unsubscribed, bounced or complained, never
active; a row the export calls active is imported as usual. Where an export says when
someone subscribed (Mailchimp's OPTIN_TIME, the others' creation dates), a person new to
the list joins on that date (the `joined` of segments), not on the day of the import.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

UNSUBSCRIBED, BOUNCED, COMPLAINED = "unsubscribed", "bounced", "complained"
STATUS_WORDS = {
    "unsubscribed": UNSUBSCRIBED, "blocklisted": UNSUBSCRIBED, "blacklisted": UNSUBSCRIBED,
    "removed": UNSUBSCRIBED, "churned": UNSUBSCRIBED, "bounced": BOUNCED,
    "cleaned": BOUNCED, "undeliverable": BOUNCED, "complained": COMPLAINED,
    "spam": COMPLAINED,
}  # fmt: skip
TRUE = frozenset({"true", "yes", "1", "t", "y"})


@dataclass(frozen=True)
class ListFormat:
    """Where one export keeps what an import needs, by column position."""

    name: str  # said in the import's report: "a Mailchimp export"
    first: int | None = None  # first and last name columns, joined when no full name
    last: int | None = None
    left_when_filled: tuple[tuple[int, str], ...] = ()  # a column whose value means left
    left_when_true: tuple[tuple[int, str], ...] = ()  # a true/false column: true means left
    status: int | None = None  # a column of status words
    joined: int | None = None  # when they subscribed (opted in): a date or a time

    def joined_on(self, cells: list[str]) -> str | None:
        """The date the row's person joined (YYYY-MM-DD), when the export says."""
        if self.joined is None:
            return None
        text = cells[self.joined].strip()[:10]
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            return None

    def left(self, cells: list[str]) -> str | None:
        """The status the row says its person left with, or None (still subscribed)."""
        for column, status in self.left_when_filled:
            if cells[column].strip():
                return status
        for column, status in self.left_when_true:
            if cells[column].strip().lower() in TRUE:
                return status
        if self.status is not None:
            return STATUS_WORDS.get(cells[self.status].strip().lower())
        return None


def _at(headers: list[str], *names: str) -> int | None:
    return next((headers.index(n) for n in names if n in headers), None)


def recognise(headers: list[str]) -> ListFormat:
    """The format of a file with these (lower-cased) headers."""
    first = _at(headers, "first name", "first_name", "firstname", "fname")
    last = _at(headers, "last name", "last_name", "lastname", "lname")
    if "email address" in headers and ("member_rating" in headers or "leid" in headers
                                       or "optin_time" in headers):  # fmt: skip
        left = tuple(
            (i, status)
            for column, status in (("unsub_time", UNSUBSCRIBED), ("clean_time", BOUNCED))
            if (i := _at(headers, column)) is not None
        )
        joined = _at(headers, "optin_time", "confirm_time")
        return ListFormat("a Mailchimp export", first, last, left_when_filled=left, joined=joined)
    if "active_subscription" in headers and "email_disabled" in headers:
        disabled = _at(headers, "email_disabled")
        assert disabled is not None
        return ListFormat(
            "a Substack export", first, last, left_when_true=((disabled, UNSUBSCRIBED),),
            joined=_at(headers, "created_at"),
        )  # fmt: skip
    kind = _at(headers, "subscriber_type", "type")
    if kind is not None and "creation_date" in headers:
        joined = _at(headers, "creation_date")
        return ListFormat("a Buttondown export", first, last, status=kind, joined=joined)
    if "uuid" in headers and "status" in headers and "attributes" in headers:
        return ListFormat(
            "a listmonk export", first, last, status=_at(headers, "status"),
            joined=_at(headers, "created_at"),
        )  # fmt: skip
    return ListFormat("a CSV file", first, last, status=_at(headers, "status"))
