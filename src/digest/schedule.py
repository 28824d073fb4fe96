"""Scheduling: check an issue, freeze its rendering, and set when it goes out.

What the editor previewed and scheduled is what subscribers get: the rendered issue is
stored at scheduling time, and later edits of the file change nothing until the issue is
scheduled again. Times are stored in UTC and read in the configured time zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import Settings
from digest.errors import DigestError
from digest.render import RenderedIssue
from digest.store import ScheduledIssue, Store
from digest.tokens import key_id, signing_keys


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DigestError(f"unknown time zone {name!r} (use a name like Europe/London)") from None


def parse_send_time(text: str, tz_name: str, now: dt.datetime) -> dt.datetime:
    """``now``, an ISO time with an offset, or a local time in ``tz_name`` -> UTC.

    A local time that a daylight-saving change skips is refused; one that happens twice
    (clocks going back) means the first of the two."""
    text = text.strip()
    if text.lower() == "now":
        return now.astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise DigestError(
            f"--at {text!r}: not a time; use 'YYYY-MM-DD HH:MM', an ISO time with offset, or 'now'"
        ) from None
    try:
        if moment.tzinfo is not None:
            return moment.astimezone(dt.UTC)
        local_zone = zone(tz_name)
        first = moment.replace(tzinfo=local_zone, fold=0)
        back = first.astimezone(dt.UTC).astimezone(local_zone).replace(tzinfo=None)
        utc = first.astimezone(dt.UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 pushed past the calendar's end
        raise DigestError(
            f"--at {text!r}: out of range; pick a time in the next few years"
        ) from None
    if back != moment:
        raise DigestError(
            f"--at {text!r}: that time does not exist in {tz_name} (the clocks go forward then); pick another"
        )
    return utc


PAST_SLACK = dt.timedelta(minutes=5)  # a time typed a moment ago is still "now"


def not_in_the_past(text: str, send_at: dt.datetime, now: dt.datetime) -> None:
    """Refuse a send time more than a few minutes ago: it would go out at once, which
    `--at now` says plainly; a typo in the year should not mail the list."""
    if text.strip().lower() != "now" and send_at < now - PAST_SLACK:
        raise DigestError(
            f"--at {text.strip()!r} is in the past ({send_at:%Y-%m-%d %H:%M} UTC); to send "
            "at once say --at now"
        )


def file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def rendered_to_json(rendered: RenderedIssue) -> str:
    return json.dumps(dataclasses.asdict(rendered), ensure_ascii=False)


def rendered_from_json(text: str) -> RenderedIssue:
    data = json.loads(text)
    if "pieces" in data:  # JSON keeps the (phrase, fallback) pairs as lists
        data["pieces"] = tuple((str(p[0]), str(p[1])) for p in data["pieces"])
    return RenderedIssue(**data)


def segment_for(settings: Settings, segment: str | None) -> str | None:
    """What a scheduled issue keeps of ``segment`` (a saved segment's name, or an
    expression): its text and parsed tree as JSON; a bad one is refused by name."""
    if segment is None:
        return None
    from digest.segments import parse_segment
    from digest.store.segments import segment_json

    text = settings.audience.segments.get(segment, segment)
    return segment_json(text, parse_segment(text, settings.audience.segment_fields()))


def schedule(
    store: Store,
    path: Path,
    settings: Settings,
    at: str,
    tz_name: str,
    now: dt.datetime,
    *,
    expected_hash: str | None = None,
    segment: str | None = None,
) -> ScheduledIssue:
    """Check, render and freeze the issue at ``path``, to go out at ``at``.
    ``expected_hash``: only the file with these bytes (an approved version) is frozen.
    ``segment``: an expression over the subscriber fields, or a saved segment's name;
    the issue goes to the newsletter's subscribers it selects."""
    chosen = segment_for(settings, segment)
    signing_keys(settings)  # no delivery can work without them: say so now
    send_at = parse_send_time(at, tz_name, now)
    not_in_the_past(at, send_at, now)
    from digest.archive import web_version  # rendering loads Jinja2, MJML and premailer
    from digest.build import build

    result = build(path, settings, for_subscribers=True)
    errors = [f for f in result.findings if f.level == "error"]
    if errors:
        raise DigestError(
            f"{path}: fails the pre-send check with {len(errors)} error(s), first: {errors[0].message}; "
            "not scheduled (see digest check)",
            details=[str(f) for f in errors],
        )
    source_hash = file_hash(path)  # read after the render: a change between them differs
    if expected_hash is not None and source_hash != expected_hash:
        raise DigestError(
            f"{path.name} changed since it was approved for sending: nothing was scheduled"
        )
    existing = store.get_schedule(result.slug)
    status = "scheduled"
    if existing is not None:
        if existing.status == "sent":
            raise DigestError(f"{result.slug}: already sent; it cannot be scheduled again")
        if existing.status != "scheduled" and store.has_started(result.slug):
            if existing.source_hash != source_hash:
                raise DigestError(
                    f"{result.slug}: delivery has started, so its content cannot change now; "
                    "undo your edits to resume it, or save the changes as a new issue"
                )
            status = "sending"  # resume a stopped, cancelled or incomplete delivery
    frozen = ScheduledIssue(
        slug=result.slug,
        path=str(path),
        source_hash=source_hash,
        send_at=send_at,
        status=status,
        rendered_json=rendered_to_json(result.rendered),
        web_json=web_version(result.issue, settings, result.slug).to_json(),
        newsletter=result.newsletter,
        segment=chosen,
    )
    store.save_schedule(frozen)
    store.record_signing_key(key_id(signing_keys(settings)[0]))  # the key its links carry
    if existing is not None and existing.status == "incomplete":
        store.reopen_failed(result.slug, now)  # scheduling again retries the failed
    return store.get_schedule(result.slug) or frozen


@dataclass(frozen=True)
class ScheduleLine:
    issue: ScheduledIssue
    local_time: str
    changed: bool


def list_schedule(store: Store, tz_name: str) -> list[ScheduleLine]:
    local_zone = zone(tz_name)
    lines = []
    for issue in store.list_schedules():
        local = issue.send_at.astimezone(local_zone)
        changed = file_hash(Path(issue.path)) != issue.source_hash
        lines.append(ScheduleLine(issue, f"{local:%Y-%m-%d %H:%M %Z}", changed))
    return lines
