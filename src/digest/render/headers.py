"""The headers that identify the list to mailbox providers: List-Id (RFC 2919) and
Feedback-ID (Gmail's feedback loop), and the text direction of the newsletter's language.

They are fixed per issue, so they are worked out once with the render.
"""

from __future__ import annotations

import hashlib
import re
from email.utils import formataddr, parseaddr

from digest.newsletters import Newsletter

# Languages written right to left (ISO 639 codes), for the default text direction.
RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd", "ug", "ur", "yi"}
)
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


def ascii_id(name: str) -> str:
    """``name`` itself when it is plain ASCII; else its ASCII letters, digits and dashes
    plus a short hash of the whole, so "2024-03-01-中美关系" becomes "2024-03-01-9f2c…":
    fit for Message-IDs, Feedback-ID, idempotency keys and provider tags."""
    if name.isascii():
        return name
    kept = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_.:-]+", "-", name)).strip("-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{kept}-{digest}" if kept else digest


def direction(newsletter: Newsletter) -> str:
    if newsletter.direction:
        return newsletter.direction
    return "rtl" if newsletter.language.split("-")[0].lower() in RTL_LANGUAGES else "ltr"


def sender_domain(sender: str) -> str:
    """The domain of a From address ("Name <news@example.org>" -> "example.org")."""
    return parseaddr(sender)[1].rpartition("@")[2].lower() or "localhost"


def list_id(newsletter: Newsletter) -> str:
    """The configured list id, else "<name as a label>.<sender's domain>"."""
    if newsletter.list_id:
        return newsletter.list_id
    label = _NOT_LABEL.sub("-", newsletter.name.lower()).strip("-")[:63] or "newsletter"
    return f"{label}.{sender_domain(newsletter.sender)}"


def sender_id(newsletter: Newsletter) -> str:
    return newsletter.sender_id or sender_domain(newsletter.sender).replace(".", "-")


def feedback_id(newsletter: Newsletter, issue: str, kind: str = "issue") -> str:
    """Gmail's four fields, most specific first: campaign (the issue), kind of mail
    (an issue, a test), list, sender. No field may hold a colon."""
    fields = (issue, kind, list_id(newsletter).split(".")[0], sender_id(newsletter))
    return ":".join(field.replace(":", "-") for field in fields)


def identity_headers(newsletter: Newsletter, issue: str) -> dict[str, str]:
    return {
        "List-Id": formataddr((newsletter.name, list_id(newsletter)), charset="utf-8"),
        "Feedback-ID": feedback_id(newsletter, ascii_id(issue)),
    }
