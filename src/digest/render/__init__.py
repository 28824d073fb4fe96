"""An issue file -> the rendered email: HTML with inlined CSS and a plain-text part.

Rendering runs Jinja2, MJML and premailer once per issue. What differs per recipient is
left as markers (see :mod:`digest.render.message`) and filled by plain substitution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

from digest.config import Settings
from digest.errors import RenderError
from digest.issuefile import Issue
from digest.links import tracked, utm_params
from digest.render.headers import ascii_id, direction, identity_headers
from digest.render.personal import Piece, Plan, plans_for

# Per-recipient markers: plain ASCII that survives MJML, premailer and URL encoding.
UNSUBSCRIBE_MARKER = "__DIGEST_UNSUBSCRIBE_URL__"
NAME_MARKER = "__DIGEST_NAME__"
ADDRESS_MARKER = "__DIGEST_ADDRESS__"  # the recipient's own address, in the footer
MARKERS = (UNSUBSCRIBE_MARKER, NAME_MARKER, ADDRESS_MARKER)

# Invisible characters after the preheader, so the inbox snippet ends with it.
PREHEADER_PADDING = "\u200c\u00a0" * 90


@dataclass(frozen=True)
class RenderedIssue:
    """One issue, rendered once; personalise() turns it into each recipient's message."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str
    sender: str
    reply_to: str | None
    unsubscribe_url: str  # pattern with {token}
    unsubscribe_mailto: str
    greeting_fallback: str
    # the greeting line, "Hi {first_name},": with it, the per-recipient value is the whole
    # line (none when the value is missing and greeting_fallback is empty); without it (a
    # render frozen before greetings by field), the value is the name in the line
    greeting: str | None = None
    greeting_field: str = "name"
    # the templates' uses of subscriber fields: marker __DIGEST_F<n>__ is pieces[n]
    pieces: tuple[Piece, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # List-Id, Feedback-ID
    # a message to one person about their own request (a signup confirmation), not list
    # mail: no List-Unsubscribe, and the provider's transactional stream
    transactional: bool = False

    @functools.cached_property
    def unsubscribe_pieces(self) -> tuple[str, str, str, str] | None:
        """The unsubscribe URL pattern before and after its one {token}, as text and as
        HTML-escaped text; None when the pattern has any other shape. A token of URL-safe
        characters then goes between them as it is: no quoting or escaping per recipient."""
        head, found, tail = self.unsubscribe_url.partition("{token}")
        if not found or any(c in head + tail for c in "{}"):
            return None
        return head, tail, escape(head), escape(tail)

    @functools.cached_property
    def piece_plans(self) -> tuple[Plan, ...]:
        """How each piece is filled per reader, worked out once."""
        return plans_for(self.pieces)

    @functools.cached_property
    def piece_fields(self) -> tuple[tuple[str, ...], ...]:
        """The fields each piece names, in piece order."""
        return tuple(plan.names for plan in self.piece_plans)

    @functools.cached_property
    def fields_used(self) -> tuple[str, ...]:
        """Every subscriber field a reader's message needs beyond name and address: the
        greeting's, and those the pieces name."""
        used = [self.greeting_field] if self.greeting is not None else []
        used.extend(name for names in self.piece_fields for name in names)
        return tuple(n for n in dict.fromkeys(used) if n not in ("name", "email"))

    @functools.cached_property
    def issue_id(self) -> str:
        """The slug in ASCII: what headers and provider tags carry."""
        return ascii_id(self.slug)


def newsletter_unsubscribe_url(settings: Settings) -> str:
    """The unsubscribe URL pattern for the settings' newsletter: where several are
    declared, it names the newsletter, so that leaving through it leaves that one only."""
    url = settings.unsubscribe_url
    if len(settings.newsletter_keys) < 2:
        return url
    return f"{url}{'&' if '?' in url else '?'}newsletter={quote(settings.newsletter.key)}"


def manage_suffix(settings: Settings) -> str:
    """What turns a reader's unsubscribe link into their "Manage your subscription"
    link: the same page, asked to open at its choices."""
    return ("&" if "?" in newsletter_unsubscribe_url(settings) else "?") + "manage=1#manage"


def web_path(slug: str) -> str:
    """Where an issue's web version lives, under web.base_url (a slug in any script is
    percent-encoded, as a link in mail must be)."""
    return f"/issues/{quote(slug, safe='')}"


def render_issue(
    issue: Issue,
    settings: Settings,
    slug: str,
    *,
    staff_note: str | None = None,
    web_version: bool = False,
    for_staff: bool = False,
) -> RenderedIssue:
    """``staff_note`` (inline Markdown) is shown on top of a draft sent to staff only.
    ``for_staff`` (a test send or draft) leaves out "View in browser": the issue has no
    web page until its delivery begins.
    ``web_version`` renders the page the archive and "View in browser" show: no greeting,
    no unsubscribe link, nothing personal; its ``text`` is unused."""
    # Jinja2, MJML and premailer load here, when something is rendered: commands that
    # only send a frozen render (deliver) never import them.
    from digest.render.html import compile_mjml, inline_css
    from digest.render.personal import (
        FieldUseError,
        Subscriber,
        check_markers,
        fallbacks_html,
        replace_markers,
        used_pieces,
    )
    from digest.render.templates import (
        HTML_TEMPLATE,
        TEXT_TEMPLATE,
        environment_for,
        render_template,
        template_path,
    )

    newsletter = settings.newsletter
    env = (
        environment_for(newsletter.templates, f"the {newsletter.key} newsletter's templates")
        if newsletter.templates
        else environment_for(settings.render.templates)
    )
    greeting = NAME_MARKER if newsletter.greeting else None  # the whole line, per recipient
    utm = utm_params(settings.compose.utm, slug)
    subscriber = Subscriber(settings.audience.fields)
    context: dict[str, object] = {
        "issue": issue,
        "newsletter": newsletter,
        "unsubscribe_url": UNSUBSCRIBE_MARKER,
        # the same personal page, opened at its choices: no second per-recipient value
        "manage_url": UNSUBSCRIBE_MARKER + manage_suffix(settings),
        "recipient_address": ADDRESS_MARKER,
        "greeting": greeting,
        "subscriber": subscriber,
        "preheader_padding": PREHEADER_PADDING if issue.preheader else "",
        "font_family": settings.render.font_family,
        "brand": settings.brand,
        "direction": direction(newsletter),
        "staff_note": staff_note,
        "web_version": web_version,
        "view_url": "" if for_staff else settings.web.url(web_path(slug)),
        "subscribe_url": settings.web.url("/subscribe"),
        "archive_url": settings.web.url("/issues/"),
        "feed_url": settings.web.url("/feed.xml"),
        # a section's whole conversation, tagged as its Read more links are
        "conversation_url": lambda url: tracked(url, utm) if url else "",
    }
    mjml_source = render_template(env, HTML_TEMPLATE, context)
    html = inline_css(compile_mjml(mjml_source, dict(settings.render.fonts)))
    text = render_template(env, TEXT_TEMPLATE, context)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
    for name, body in ((HTML_TEMPLATE, html), (TEXT_TEMPLATE, text)):
        try:
            check_markers(body, html=name == HTML_TEMPLATE)
        except FieldUseError as err:
            raise RenderError(f"{template_path(env, name)}: {err}") from None
    pieces, html, text = used_pieces(subscriber, html, text)
    if web_version:  # a template of one's own may not know web_version: nothing personal
        html = html.replace(UNSUBSCRIBE_MARKER, context["subscribe_url"])  # type: ignore[arg-type]
        html = html.replace(NAME_MARKER, "")
        html = html.replace(ADDRESS_MARKER, "")
        # the page everyone sees: each field's fallback, as for a reader without fields
        html = replace_markers(html, "html", fallbacks_html(plans_for(pieces)))
    return RenderedIssue(
        slug=slug,
        subject=issue.subject,
        preheader=issue.preheader or "",
        html=html,
        text=text,
        sender=newsletter.sender,
        reply_to=newsletter.reply_to,
        unsubscribe_url=newsletter_unsubscribe_url(settings),
        unsubscribe_mailto=settings.unsubscribe.mailto,
        greeting_fallback=newsletter.greeting_fallback,
        greeting=newsletter.greeting,
        greeting_field=newsletter.greeting_field,
        pieces=pieces,
        headers=identity_headers(newsletter, slug),
    )
