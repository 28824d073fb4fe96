"""Signup with double opt-in: the form, the confirmation mail, and sending it.

Someone who signs up on the site is kept apart from the list (pending) until they press
the button behind the link in the confirmation mail; pending people never get issues.
The mail is rendered through the same pipeline as an issue (Jinja2 -> MJML -> inlined
CSS) from its own templates, ``confirm.mjml.j2`` and ``confirm.txt.j2`` (a template
folder of one's own may have them; otherwise the bundled ones are used). It is a
transactional message to one person: no List-Unsubscribe, the provider's transactional
stream. The link carries a signed token that expires after ``web.confirm_days``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.render import NAME_MARKER, UNSUBSCRIBE_MARKER, RenderedIssue
from digest.render.headers import identity_headers
from digest.store import Signup, Store
from digest.tokens import make_confirm_token

if TYPE_CHECKING:
    from digest.providers import Provider

log = logging.getLogger("digest.signup")

HONEYPOT = "website"  # a field people never see or fill; bots that fill every field do
CONFIRM_HTML = "confirm.mjml.j2"
CONFIRM_TEXT = "confirm.txt.j2"
CONFIRM_PATH = "/confirm/{token}"
MAX_NAME = 200


def signup_form(settings: Settings, newsletters: tuple[str, ...] = ()) -> str:
    """The signup form as HTML (``pages/signup_form.html.j2``): a plain POST that works
    without JavaScript, for embedding in a site's own pages. ``newsletters``: the keys it
    signs people up to (one: a hidden field; several: boxes to tick); none: every
    declared newsletter is offered, the default one ticked."""
    from digest.render.pages import render_page

    for key in newsletters:
        settings.newsletter_for(key)  # an undeclared key is refused by name
    extra: dict[str, object] = {"honeypot": HONEYPOT}
    if newsletters:
        extra["signup_choices"] = [
            {"key": key, "name": settings.newsletter_for(key).name,
             "description": settings.newsletter_for(key).description, "checked": True}
            for key in newsletters
        ]  # fmt: skip
    return render_page(settings, "signup_form", **extra)


def confirmation(settings: Settings) -> RenderedIssue:
    """The confirmation mail, rendered once; the confirm link is filled per person like an
    issue's unsubscribe link (the same marker). It greets nobody by name: the name in the
    form is the submitter's text, not yet the address owner's."""
    from digest.render.html import compile_mjml, inline_css
    from digest.render.templates import environment_for, render_template

    folder = settings.render.templates
    if folder is not None and not (Path(folder) / CONFIRM_HTML).is_file():
        folder = None  # a template folder of one's own without them: the bundled ones
    env = environment_for(folder)
    newsletter = settings.newsletter
    context: dict[str, object] = {
        "newsletter": newsletter,
        "confirm_url": UNSUBSCRIBE_MARKER,
        "name": NAME_MARKER,
        "days": _days(settings.web.confirm_days),
        "site_url": settings.web.url("/"),
        "font_family": settings.render.font_family,
        "brand": settings.brand,
    }
    html_body = inline_css(
        compile_mjml(render_template(env, CONFIRM_HTML, context), dict(settings.render.fonts))
    )
    text = render_template(env, CONFIRM_TEXT, context)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
    headers = {k: v for k, v in identity_headers(newsletter, "confirm").items() if k == "List-Id"}
    return RenderedIssue(
        slug="confirm-subscription",
        subject=f"Confirm your subscription to {newsletter.name}",
        preheader="One click and you are on the list.",
        html=html_body,
        text=text,
        sender=newsletter.sender,
        reply_to=newsletter.reply_to,
        unsubscribe_url=settings.web.url(CONFIRM_PATH),
        unsubscribe_mailto=settings.unsubscribe.mailto,
        greeting_fallback="there",
        headers=headers,
        transactional=True,
    )


def _days(days: float) -> str:
    whole = int(days)
    return f"{whole} day{'s' if whole != 1 else ''}" if whole == days else f"{days:g} days"


@dataclass(frozen=True)
class Sent:
    sent: int
    failed: int


def send_confirmations(
    store: Store,
    settings: Settings,
    key: bytes,
    list_id: str,
    provider: Provider,
    now: dt.datetime,
    limit: int = 50,
) -> Sent:
    """Send every confirmation that is due, in batches the provider takes; each claimed
    before it is sent, so two processes never mail one person twice."""
    from digest.providers import Batch, send_with_retries
    from digest.render.message import Recipient

    signups = store.claim_confirmations(now, min(limit, provider.batch_size))
    if not signups:
        return Sent(0, 0)
    rendered = confirmation(settings)
    expires = (now + dt.timedelta(days=settings.web.confirm_days)).timestamp()
    by_email: dict[str, Signup] = {s.email: s for s in signups}
    # no name: whoever filled in the form typed it, and the address may not be theirs;
    # the name joins the list with the address once its owner confirms
    recipients = tuple(
        Recipient(s.email, None, make_confirm_token(key, list_id, s.uid, expires)) for s in signups
    )
    batch = Batch(rendered, recipients, key=f"confirm-{signups[0].uid}-{int(now.timestamp())}")
    try:
        outcomes = send_with_retries(
            provider,
            batch,
            attempts=settings.provider.max_attempts,
            base_delay=settings.provider.retry_delay,
            max_delay=settings.provider.max_retry_delay,
        )
    except Exception as err:  # a refused key, a broken provider: try again later
        log.error("confirmation mail not sent: %s", err)
        for signup in signups:
            store.confirmation_failed(signup.uid, str(err), retry=True)
        return Sent(0, len(signups))
    failed = 0
    for outcome in outcomes:
        if outcome.status == "accepted":
            continue
        failed += 1
        log.warning("confirmation to %s %s: %s", outcome.email, outcome.status, outcome.reason)
        store.confirmation_failed(
            by_email[outcome.email].uid, outcome.reason or outcome.status, outcome.retryable
        )
    return Sent(len(signups) - failed, failed)
