"""The subscription page behind every message's "Unsubscribe" and "Manage your
subscription" links: one personal page per token, no sign-in.

- ``GET``: shows the newsletter the link came from with a button to leave it, and the
  subscriber's choices: their name, each newsletter with a box ticked where they are
  subscribed, and a way to leave them all. Reading changes nothing (link scanners follow
  links with GET).
- ``POST``: the RFC 8058 one-click body or the page's button leaves the link's
  newsletter (every newsletter when the link names none); ``action=save`` records the
  name and the boxes ticked; ``action=leave_all`` leaves every newsletter.

A bounced or complained address is suppressed: the page says so, and only signing up
again and confirming the address by email lifts that (the boxes are not offered).
Choices are recorded in the inbox and applied by the background loop, like
unsubscribes; the page answering a POST shows what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from digest.config import Settings
from digest.newsletters import Newsletter

SUPPRESSED = frozenset({"bounced", "complained"})


@dataclass(frozen=True)
class Offered:
    key: str
    name: str
    description: str | None
    subscribed: bool


def link_newsletter(settings: Settings, asked: str | None) -> Newsletter | None:
    """The newsletter a link names (its ``newsletter`` query value), or None: a link
    from a single-newsletter install, or naming one config.yaml no longer declares,
    leaves every newsletter."""
    if asked and asked in settings.newsletter_keys:
        return settings.newsletter_for(asked)
    return None


def offered(settings: Settings, statuses: dict[str, str], active: bool) -> list[Offered]:
    """Each declared newsletter with whether the subscriber gets it."""
    return [
        Offered(
            key,
            (n := settings.newsletter_for(key)).name,
            n.description,
            active and statuses.get(key) == "subscribed",
        )
        for key in settings.newsletter_keys
    ]


def page_context(
    settings: Settings, found: tuple[Any, dict[str, str]] | None, left: Newsletter | None
) -> dict[str, Any]:
    """What the subscription page shows for the subscriber ``found`` (None: nobody we
    know, for whom the page offers only the button)."""
    context: dict[str, Any] = {
        "leaving": left or settings.newsletter,
        "several": len(settings.newsletter_keys) > 1,
        "leaves_all": left is None,  # the button leaves every newsletter
        "known": found is not None,
    }
    if found is not None:
        row, statuses = found
        status = row["status"]
        context |= {
            "email": row["email"],
            "reader_name": row["name"] or "",
            "suppressed": status in SUPPRESSED,
            "left_all": status == "unsubscribed",
            "offered": offered(settings, statuses, status == "active"),
        }
    return context


def read_choice(settings: Settings, body: bytes) -> tuple[str, dict[str, object]]:
    """(action, choice) from a POSTed form: ``one-click``, ``leave`` (the page's
    button), ``leave_all`` or ``save`` with the name and the newsletters ticked."""
    if b"List-Unsubscribe=One-Click" in body:
        return "one-click", {}
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = (form.get("action") or ["leave"])[0]
    if action == "leave_all":
        return "leave_all", {}
    if action != "save":
        return "leave", {}
    keys = settings.newsletter_keys
    chosen = [key for key in form.get("newsletter", []) if key in keys]
    name = " ".join((form.get("name") or [""])[0].split())[:200]
    return "save", {"name": name, "newsletters": chosen, "offered": list(keys)}
