"""An issue file -> everything a preview, a check or a send needs, rendered once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from digest.checks import Finding, check_all
from digest.config import Settings
from digest.errors import ConfigError, IssueFileError, RenderError
from digest.fileio import write_tree
from digest.issuefile import Issue, issue_slug, load_issue
from digest.render import RenderedIssue, render_issue
from digest.render.message import Message, Recipient, personalise, to_email


@dataclass(frozen=True)
class Build:
    path: Path
    issue: Issue
    rendered: RenderedIssue
    sample: Message  # the message as the configured sample recipient gets it
    eml: bytes
    findings: list[Finding]
    newsletter: str = ""  # the key of the newsletter it goes to
    # where the templates use subscriber fields: the message as a reader without any
    # field gets it (each fallback in place), for the preview and the checks
    without_fields: Message | None = None

    @property
    def slug(self) -> str:
        return self.rendered.slug


def settings_for(issue: Issue, path: Path, settings: Settings) -> Settings:
    """``settings`` with the issue's newsletter (its name, From, List-Id, footer) in
    place of the default; an issue naming an undeclared newsletter is refused."""
    try:
        return settings.for_newsletter(issue.newsletter)
    except ConfigError as err:
        raise IssueFileError(f"{path}: {err}") from None


def sample_recipient(settings: Settings) -> Recipient:
    """The sample reader the preview and checks show, with the fields audience.sample
    gives. Where the greeting greets by a field that gives none, the sample has the
    first word of sample_name (greeting_without_field says how a subscriber without it
    is greeted)."""
    from digest.render.personal import shown

    name = settings.render.sample_name
    fields = {f: shown(v) for f, v in settings.audience.sample_values().items()}
    greeting_field = settings.newsletter.greeting_field
    greets = fields.get(greeting_field) or next(iter((name or "").split()), None)
    return Recipient(settings.render.sample_recipient, name, "sample", greets, fields)


def reader_without_fields(settings: Settings) -> Recipient:
    """The sample reader with no subscriber field at all (a name and an address only)."""
    name = settings.render.sample_name
    return Recipient(settings.render.sample_recipient, name, "sample", None, {})


def notes_without_fields(rendered: RenderedIssue) -> list[str]:
    """What a subscriber lacking the fields of each use in the templates gets, e.g.
    "a subscriber without city gets 'there' in place of subscriber.city"."""
    notes = []
    for plan in rendered.piece_plans:
        lacking = [n for n in plan.names if n != "email"]
        if not lacking:
            continue
        where = f"subscriber.{plan.names[0]}" if plan.alone else repr(plan.phrase)
        fallback = plan.fallback
        gets = f"{fallback!r} in place of {where}" if fallback else f"nothing for {where}"
        notes.append(f"a subscriber without {' or '.join(lacking)} gets {gets}")
    return notes


def greeting_without_field(result: Build) -> str | None:
    """Where the greeting greets by a field: the greeting a subscriber without that
    field gets (an empty string: none at all); None for a greeting by name."""
    from digest.render.message import greeting_for

    rendered = result.rendered
    if rendered.greeting is None or rendered.greeting_field == "name":
        return None
    return greeting_for(rendered, None)


def sample_date(issue: Issue) -> dt.datetime:
    """A fixed Date for the sample .eml, so the same issue gives the same bytes."""
    return dt.datetime.combine(issue.date, dt.time(7, 0), tzinfo=dt.UTC)


def build(
    path: Path,
    settings: Settings,
    *,
    staff_note: str | None = None,
    for_staff: bool = False,
    for_subscribers: bool = False,
) -> Build:
    """Render and check the issue at ``path``. ``for_subscribers`` (digest check, schedule)
    adds the settings a real send needs changed (:mod:`digest.readiness`): errors when
    the provider reaches people, else warnings. The preview, test sends and drafts go to
    editors and staff: they leave those out."""
    from digest.readiness import send_readiness

    issue = load_issue(path, settings.limits)
    settings = settings_for(issue, path, settings)
    rendered = render_issue(
        issue, settings, issue_slug(path), staff_note=staff_note, for_staff=for_staff
    )
    sample = personalise(rendered, sample_recipient(settings))
    without = (
        personalise(rendered, reader_without_fields(settings))
        if rendered.pieces or rendered.fields_used
        else None
    )
    eml = bytes(to_email(sample, date=sample_date(issue)))
    findings = check_all(issue, rendered, sample.html, settings)
    if for_subscribers:
        findings = sorted(findings + send_readiness(settings), key=lambda f: f.level != "error")
    return Build(path, issue, rendered, sample, eml, findings, settings.newsletter.key, without)


def write_outputs(result: Build, out_dir: Path) -> list[Path]:
    """Write <slug>.html, .txt and .eml; all three appear, or none is left half-written."""
    contents = {
        ".html": result.sample.html.encode("utf-8"),
        ".txt": result.sample.text.encode("utf-8"),
        ".eml": result.eml,
    }
    return write_tree(
        out_dir, {result.slug + suffix: data for suffix, data in contents.items()}, RenderError
    )
