"""What happened to one issue: `digest report ISSUE` as text, JSON, CSV or a page.

Counts come from the delivery ledger (accepted, rejected, failed, unknown, skipped) and
from provider events (delivered, deferred, bounces, complaints, unsubscribes, opens and
clicks where tracking is on). Unsubscribes through digest's own links and mailto are not
tied to an issue; they are counted for the time from this issue's start to the next's.
Rates are taken against the recipients the provider answered, and judged by the
bulk-sender rules: complaints under 0.3 % (better 0.1 %), hard bounces under 2 %.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from digest.config import Settings
from digest.errors import DigestError
from digest.rates import percent
from digest.store import Store, StoredEvent

COMPLAINT_LIMIT, COMPLAINT_AIM, BOUNCE_LIMIT = 0.003, 0.001, 0.02
EVENT_KINDS = ("delivered", "deferred", "hard_bounce", "soft_bounce", "complaint", "unsubscribe",
               "open", "click")  # fmt: skip
LEDGER = ("accepted", "rejected", "failed", "unknown", "skipped", "pending", "inflight")


@dataclass
class Report:
    slug: str
    status: str
    answered: int  # accepted + rejected: the base of every rate
    ledger: dict[str, int]
    events: dict[str, int]
    unsubscribes: dict[str, int]  # by channel: one-click, link, mailto, provider names
    rates: dict[str, float]
    warnings: list[str]
    problems: list[StoredEvent] = field(default_factory=list)  # bounced and complained
    timeline: list[tuple[str, str, int]] = field(default_factory=list)  # minute, status, n
    unique_opens: int = 0  # with tracking on
    clicks: list[tuple[str, int]] = field(default_factory=list)  # (link or expert, unique)
    tracked: bool = True  # provider.tracking: opens and clicks are counted at all
    title: str = ""  # the issue's subject, as it was sent
    newsletter: str = "main"  # the key of the newsletter it went to
    segment: str | None = None  # the segment of its subscribers, as written


def _page(url: str) -> str:
    """A link without its query (UTM tags) for matching clicks to "Read more" links."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=""))


def make_report(
    store: Store,
    slug: str,
    issue_id: str,
    read_more: dict[str, str] | None = None,
    *,
    tracked: bool = True,
) -> Report:
    """``read_more`` maps each expert's "Read more" link to their name, so clicks say
    which expert's excerpt drew readers."""
    scheduled = store.get_schedule(slug)
    if scheduled is None:
        raise DigestError(f"{slug} is not scheduled, so there is nothing to report")
    ledger = store.delivery_counts(slug)
    events = store.issue_event_counts(slug, issue_id)
    start, end = store.issue_window(slug)
    unsubscribes = store.unsubscribes_between(start, end, scheduled.newsletter) if start else {}
    for event in store.issue_events(slug, issue_id, ("unsubscribe",)):
        unsubscribes[event.provider] = unsubscribes.get(event.provider, 0) + 1
    answered = ledger.get("accepted", 0) + ledger.get("rejected", 0)
    opens, clicks = store.engagement(slug, issue_id)
    labels = {_page(url): f"Read more from {name}" for url, name in (read_more or {}).items()}
    rates = {
        kind: (events.get(kind, 0) / answered if answered else 0.0)
        for kind in ("hard_bounce", "soft_bounce", "complaint")
    }
    rates["unsubscribe"] = sum(unsubscribes.values()) / answered if answered else 0.0
    warnings = []
    if rates["complaint"] > COMPLAINT_LIMIT:
        warnings.append(
            f"complaints at {percent(rates['complaint'])} ({events.get('complaint', 0):,} of "
            f"{answered:,}) are over Gmail's 0.3 % limit: stop and clean the list"
        )
    elif rates["complaint"] > COMPLAINT_AIM:
        warnings.append(
            f"complaints at {percent(rates['complaint'])} ({events.get('complaint', 0):,} of "
            f"{answered:,}) are over the 0.1 % to aim for"
        )
    if rates["hard_bounce"] > BOUNCE_LIMIT:
        warnings.append(
            f"hard bounces at {percent(rates['hard_bounce'])} ({events.get('hard_bounce', 0):,} "
            f"of {answered:,}) are over 2 %: the list has dead addresses"
        )
    if events.get("not_on_the_list"):
        warnings.append(
            f"{events['not_on_the_list']} event(s) named addresses not on the list "
            "(forgotten, or never subscribed); they are kept, not applied"
        )
    if scheduled.error:
        warnings.append(scheduled.error)
    frozen = json.loads(scheduled.rendered_json) if scheduled.rendered_json else {}
    title = frozen.get("subject", "") if isinstance(frozen, dict) else ""
    return Report(
        title=title or slug,
        slug=slug,
        status=scheduled.status,
        answered=answered,
        ledger={k: ledger.get(k, 0) for k in LEDGER},
        events={k: events.get(k, 0) for k in EVENT_KINDS if k != "unsubscribe"},
        unsubscribes=unsubscribes,
        rates=rates,
        warnings=warnings,
        problems=store.issue_events(slug, issue_id, ("hard_bounce", "complaint")),
        timeline=store.delivery_timeline(slug),
        unique_opens=opens,
        clicks=[(labels.get(_page(url), url), n) for url, n in clicks],
        tracked=tracked,
        newsletter=scheduled.newsletter,
        segment=json.loads(scheduled.segment)["text"] if scheduled.segment else None,
    )


def as_text(report: Report) -> str:
    lines = [f"{report.slug}: {report.status}, {report.answered:,} recipient(s) answered"]
    if report.segment or report.newsletter != "main":
        within = f", the segment {report.segment}" if report.segment else ""
        lines.append(f"sent to: newsletter {report.newsletter}{within}")
    lines += [f"  {name:<13}{count:>10,}" for name, count in report.ledger.items() if count]
    lines.append("after sending (provider events):")
    lines += [f"  {name:<13}{count:>10,}" for name, count in report.events.items()]
    unsubscribed = sum(report.unsubscribes.values())
    by = ", ".join(f"{k} {v}" for k, v in sorted(report.unsubscribes.items())) or "none"
    lines.append(f"  {'unsubscribed':<13}{unsubscribed:>10,}  ({by})")
    lines.append(
        "rates: "
        + ", ".join(f"{k.replace('_', ' ')} {percent(v)}" for k, v in report.rates.items())
    )
    if not report.tracked and not (report.unique_opens or report.clicks):
        lines.append("opens and clicks: not tracked (provider.tracking is off)")
    elif report.unique_opens or report.clicks:
        lines.append(f"tracking: {report.unique_opens:,} unique open(s); unique clicks:")
        lines += [f"  {n:>6,}  {label}" for label, n in report.clicks]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    data = asdict(report)
    data["problems"] = [
        {**asdict(p), "occurred_at": p.occurred_at.isoformat()} for p in report.problems
    ]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_csv(report: Report, path: Path) -> int:
    """The bounced and complained addresses with their reasons; spreadsheet-safe."""
    from digest.subscribers import spreadsheet_safe

    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "kind", "provider", "when", "reason"])
            for p in report.problems:
                writer.writerow(
                    [spreadsheet_safe(v) for v in
                     (p.email, p.kind, p.provider, p.occurred_at.isoformat(), p.detail)]
                )  # fmt: skip
    except OSError as err:
        raise DigestError(f"{path}: cannot write ({err.strerror})") from None
    return len(report.problems)


COLOURS = {"accepted": "#2f7d4f", "rejected": "#b3261e", "failed": "#c77700", "unknown": "#6b6b6b",
           "skipped": "#9a9a9a", "pending": "#4a6fa5", "inflight": "#4a6fa5"}  # fmt: skip
CHART_WIDTH, CHART_HEIGHT = 640, 160


@dataclass(frozen=True)
class Bar:
    """One rectangle of a chart, in the chart's own units, with what it stands for."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str
    count: int


def timeline_bars(report: Report) -> list[Bar]:
    """Recipients settled per minute, stacked by outcome."""
    minutes: dict[str, dict[str, int]] = {}
    for minute, status, count in report.timeline:
        minutes.setdefault(minute, {})[status] = count
    if not minutes:
        return []
    step = min(48.0, max(2.0, (CHART_WIDTH - 40) / len(minutes)))  # one minute: one bar
    peak = max(sum(v.values()) for v in minutes.values()) or 1
    bars = []
    for i, (minute, counts) in enumerate(sorted(minutes.items())):
        y = float(CHART_HEIGHT)
        for status in LEDGER:
            n = counts.get(status, 0)
            if n:
                h = n / peak * (CHART_HEIGHT - 20)
                y -= h
                bars.append(
                    Bar(20 + i * step, y, step - 1, h, COLOURS[status], f"{minute} {status}", n)
                )
    return bars


def click_bars(report: Report) -> list[Bar]:
    """Unique clicks per link (each expert's Read more by name), longest first."""
    if not report.clicks:
        return []
    peak = max(n for _, n in report.clicks) or 1
    ordered = sorted(report.clicks, key=lambda c: -c[1])
    return [
        Bar(0, i * 28, max(1.0, n / peak * 380), 20, "#7a2e12", label, n)
        for i, (label, n) in enumerate(ordered)
    ]


def as_html(report: Report, settings: Settings, **page: Any) -> str:
    """The report as a page (``desk/report.html.j2``): the desk's report, and what
    ``digest report --html`` writes. No scripts; the charts are SVG drawn here."""
    from digest.render.pages import render_named

    return render_named(
        settings, "desk/report.html.j2", robots="noindex", report=report,
        bars=timeline_bars(report), clicks=click_bars(report), colours=COLOURS,
        width=CHART_WIDTH, height=CHART_HEIGHT, percent=percent, **({"signed": None, "root": ""} | page),
    )  # fmt: skip
