"""Scheduling and delivering issues to subscribers, and how a delivery stands."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.delivery import IssueReport


@main.command("schedule")
@click.argument("issue", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--at", "at", help='When: "YYYY-MM-DD HH:MM" (in --tz), an ISO time with offset, or "now".'
)
@click.option("--tz", help="Time zone of --at and of the list (default: delivery.timezone).")
@click.option("--list", "show_list", is_flag=True, help="Show what is scheduled.")
@click.option(
    "--segment",
    help="Only the subscribers it selects: \"region = 'Asia' and joined >= 2025-01-01\", "
    "or the name of a segment saved in config.yaml (audience.segments).",
)
@config_option
@reports_errors
def schedule_command(
    issue: Path | None,
    at: str | None,
    tz: str | None,
    show_list: bool,
    segment: str | None,
    config_path: str | None,
) -> None:
    """Schedule ISSUE for the subscriber list, or --list what is scheduled."""
    import datetime as dt

    from digest.schedule import list_schedule, schedule

    settings = settings_from(config_path)
    zone_name = tz or settings.delivery.timezone
    store = open_store(settings)
    try:
        if show_list:
            lines = list_schedule(store, zone_name)
            if not lines:
                click.echo("nothing scheduled")
            for line in lines:
                counts = store.delivery_counts(line.issue.slug)
                done = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                changed = (
                    "  (issue file changed since scheduling)"
                    if line.changed and line.issue.status == "scheduled"
                    else ""
                )
                click.echo(
                    f"{line.local_time}  {line.issue.status:<9}  {line.issue.slug}{'  ' + done if done else ''}{changed}"
                )
            return
        if issue is None or not at:
            raise click.UsageError("give ISSUE and --at (or --list)")
        if settings.desk.require_approval:
            raise DigestError(
                "desk.require_approval is on: ask for the schedule in the desk (digest desk),"
                " where another editor or an admin approves it"
            )
        frozen = schedule(
            store, issue, settings, at, zone_name, dt.datetime.now(dt.UTC), segment=segment
        )
        reach = store.count_recipients(frozen.newsletter, frozen.segment)
    finally:
        store.close()
    from digest.readiness import send_readiness
    from digest.schedule import zone

    for finding in send_readiness(settings):  # errors stopped schedule() already
        click.echo(str(finding), err=True)
    local = frozen.send_at.astimezone(zone(zone_name))
    click.echo(
        f"scheduled {frozen.slug} for {local:%Y-%m-%d %H:%M %Z} ({frozen.send_at:%Y-%m-%d %H:%M} UTC)"
    )
    within = f", in the segment {segment!r}" if segment else ""
    click.echo(f"to {reach} subscriber(s) of {frozen.newsletter} as of now{within}")


@main.command("unschedule")
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def unschedule_command(issue: Path, config_path: str | None) -> None:
    """Cancel ISSUE: before it starts, or while it is being sent (the delivery stops
    before its next batch; scheduling it again resumes where it stopped)."""
    from digest.slugs import issue_slug

    store = open_store(settings_from(config_path))
    try:
        slug = issue_slug(issue)
        current = store.get_schedule(slug)
        if current is None:
            raise DigestError(f"{slug} is not scheduled")
        if not store.cancel_schedule(slug):
            raise DigestError(f"{slug} is {current.status}; there is nothing left to cancel")
    finally:
        store.close()
    click.echo(f"unscheduled {slug}")


class CliProgress:
    """A progress bar on a terminal, plain log lines elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = 0  # recipients settled at the last line written

    def start(self, slug: str, total: int) -> None:
        click.echo(f"{slug}: delivering to {total} recipient(s)", err=True)

    def advance(self, slug: str, settled: int, total: int, rate: float) -> None:
        import time

        eta = (total - settled) / rate if rate > 0 else 0
        line = f"{slug}: {settled}/{total} sent, {rate:.0f}/s, ETA {eta:.0f}s"
        if self.tty:
            width = 30
            filled = int(width * settled / total) if total else width
            click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {line}   ", err=True, nl=False)
            if settled >= total:
                click.echo("", err=True)
        elif settled != self.shown and (time.monotonic() - self.last > 5 or settled >= total):
            # a line when something moved (start() said how many there are to send)
            self.last, self.shown = time.monotonic(), settled
            click.echo(line, err=True)

    def note(self, message: str) -> None:
        if self.tty:
            click.echo("", err=True)
        click.echo(message, err=True)


class HardStop(BaseException):
    """A second stop signal: leave now (what is in flight is settled by the next run)."""


def stop_on_signals(stop: threading.Event, grace: float) -> None:
    """SIGTERM or SIGINT once: finish gracefully; twice: stop at once."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise HardStop
        stop.set()
        click.echo(
            f"digest: {signal.Signals(signum).name} received: no new batches; waiting up to "
            f"{grace:g}s for the ones in flight (send it again to stop at once)",
            err=True,
        )

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def print_report(report: IssueReport) -> bool:
    """One issue's outcome; True when it failed."""
    if report.skipped_reason:
        return False
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing sent"
    click.echo(f"{report.slug}: {counts} in {report.seconds:.1f}s")
    for address in report.unknown:
        click.echo(
            f"unknown  {address}  (in flight when delivery stopped; --resend-unknown sends again)"
        )
    if report.interrupted:
        left = (
            f"; {report.abandoned} batch(es) unanswered stay in flight" if report.abandoned else ""
        )
        click.echo(
            f"{report.slug}: stopped on request after {report.sent_now} recipient(s) this run{left}; "
            "run digest deliver to resume",
            err=True,
        )
    if report.error:
        click.echo(f"digest: error: {report.slug}: {report.error}", err=True)
        return True
    return False


@main.command("deliver")
@click.option("--watch", is_flag=True, help="Keep running; deliver issues as they fall due.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again to recipients whose outcome was lost in a crash.",
)
@click.option(
    "--retry-failed",
    "retry_failed",
    metavar="ISSUE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Give ISSUE's failed recipients another set of attempts.",
)
@config_option
@reports_errors
def deliver_command(
    watch: bool, resend_unknown: bool, retry_failed: Path | None, config_path: str | None
) -> None:
    """Deliver every due issue to the active subscribers (one pass, or --watch).

    SIGTERM or Ctrl-C stops gracefully: no new batches, answers to the ones in flight
    recorded, exit 0; a second signal stops at once."""
    from digest.delivery import deliver_due
    from digest.providers import make_http_client
    from digest.slugs import issue_slug

    settings = settings_from(config_path)
    store = open_store(settings)
    stop = threading.Event()
    stop_on_signals(stop, settings.delivery.stop_grace_seconds)
    failed = abandoned = False
    retry_slug = issue_slug(retry_failed) if retry_failed else None
    try:
        with make_http_client(settings) as client:
            while True:
                reports = deliver_due(
                    store,
                    settings,
                    client=client,
                    progress=CliProgress(),
                    resend_unknown=resend_unknown,
                    retry_failed=retry_slug,
                    stop=stop,
                )
                for report in reports:
                    failed |= print_report(report)
                    abandoned |= report.abandoned > 0
                if not watch or stop.is_set():
                    if not reports and not stop.is_set():
                        click.echo("no issue is due", err=True)
                    break
                resend_unknown, retry_slug = False, None
                stop.wait(settings.delivery.watch_interval)
    except HardStop:
        click.echo(
            "digest: stopped at once; batches in flight are settled by the next digest deliver",
            err=True,
        )
        abandoned, failed = True, True
    finally:
        store.close()
    if abandoned:  # worker threads may still wait on the network: do not wait for them
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if failed else 0)
    if failed:
        sys.exit(1)


@main.command("status")
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def status_command(issue: Path, config_path: str | None) -> None:
    """Show how delivery of ISSUE stands: counts, rate and ETA."""
    import datetime as dt

    from digest.slugs import issue_slug
    from digest.store import open_database
    from digest.storeconfig import resolve_config_path, store_location

    # only the store's place is read: the command a send desk runs in a loop starts fast
    where = store_location(resolve_config_path(config_path))
    slug = issue_slug(issue)
    store = open_database(where.database, password_env=where.password_env)
    try:
        current = store.get_schedule(slug)
        if current is None:
            raise DigestError(f"{slug} is not scheduled")
        counts = store.delivery_counts(slug)
        remaining = store.remaining(slug)
        recent = store.accepted_since(slug, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    finally:
        store.close()
    now = dt.datetime.now(dt.UTC)
    waiting = current.status == "sending" and current.send_at > now
    if waiting:  # begun, then scheduled again for later: nothing goes until then
        state = f"sending, paused: resumes at {current.send_at:%Y-%m-%d %H:%M} UTC"
    else:
        state = current.status + (f" ({current.error})" if current.error else "")
    click.echo(f"{slug}: {state}")
    for status in ("pending", "inflight", "accepted", "rejected", "failed", "unknown", "skipped"):
        click.echo(f"{status}\t{counts.get(status, 0)}")
    click.echo(f"not yet sent\t{remaining}")
    if current.status == "sending" and recent and not waiting:
        rate = recent / 60
        click.echo(f"rate\t{rate:.1f}/s over the last minute, ETA {remaining / rate:.0f}s")


@main.command("report")
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--csv", "csv_path", metavar="FILE", help="Write the bounced and complained addresses."
)
@click.option(
    "--html", "html_path", metavar="FILE", help="Write the report as a self-contained page."
)
@config_option
@reports_errors
def report_command(
    issue: Path, as_json: bool, csv_path: str | None, html_path: str | None, config_path: str | None
) -> None:
    """Report what happened to ISSUE: outcomes, bounces, complaints, unsubscribes, rates."""
    from digest import report as reports
    from digest.issuefile import issue_slug, load_issue
    from digest.render.headers import ascii_id

    settings = settings_from(config_path)
    slug = issue_slug(issue)
    read_more = {}
    if issue.is_file():  # to name the expert behind each "Read more" click
        read_more = {
            e.read_more: e.name
            for section in load_issue(issue, settings.limits).sections
            for e in section.experts
        }
    store = open_store(settings)
    try:
        made = reports.make_report(
            store, slug, ascii_id(slug), read_more, tracked=settings.provider.tracking
        )
        set_aside = len(store.failed_events())
    finally:
        store.close()
    click.echo(reports.as_json(made) if as_json else reports.as_text(made), nl=False)
    if set_aside:
        click.echo(
            f"note: {set_aside} provider event(s) could not be applied and were set aside; "
            "see digest events failed",
            err=True,
        )
    if csv_path:
        count = reports.write_csv(made, Path(csv_path))
        click.echo(f"wrote {count} bounced or complained address(es) to {csv_path}", err=True)
    if html_path:
        try:
            Path(html_path).write_text(reports.as_html(made, settings), encoding="utf-8")
        except OSError as err:
            raise DigestError(f"{html_path}: cannot write ({err.strerror})") from None
        click.echo(f"wrote {html_path}", err=True)


@main.group()
def db() -> None:
    """The database behind the list and the delivery ledger (delivery.database)."""


@db.command("migrate")
@config_option
@reports_errors
def db_migrate(config_path: str | None) -> None:
    """Create the schema, or bring it up to date (PostgreSQL; an SQLite file migrates itself
    whenever it is opened)."""
    from digest.store.postgres import PostgresStore, is_postgres, password_url, redacted

    settings = settings_from(config_path)
    database = settings.delivery.database
    if not is_postgres(database):
        store = open_store(settings)
        version = store.schema_version()
        store.close()
        click.echo(f"{database}: schema {version}, up to date")
        return
    url = password_url(database, settings.delivery.password_env)
    pg = PostgresStore(url, migrate=True)
    version = pg.schema_version()
    pg.close()
    click.echo(f"{redacted(database)}: schema {version}, up to date")


@db.command("copy")
@click.option("--from", "source", required=True, help="The SQLite file to copy from.")
@click.option("--to", "target", required=True, help="postgresql://… (an empty database).")
@config_option
@reports_errors
def db_copy(source: str, target: str, config_path: str | None) -> None:
    """Copy a list and its whole history from an SQLite file into PostgreSQL."""
    from digest.store.postgres import PostgresStore, is_postgres, password_url, redacted
    from digest.store.postgres_copy import copy_sqlite_to_postgres
    from digest.store.sqlite import SQLiteStore

    if not is_postgres(target):
        raise DigestError(f"--to {target!r}: not a postgresql:// URL")
    if not Path(source).is_file():
        raise DigestError(f"--from {source}: no such SQLite file")
    settings = settings_from(config_path)
    sqlite = SQLiteStore(Path(source))
    pg = PostgresStore(password_url(target, settings.delivery.password_env), migrate=True)
    try:
        copied = copy_sqlite_to_postgres(sqlite, pg)
    finally:
        sqlite.close()
        pg.close()
    summary = ", ".join(f"{table} {count}" for table, count in copied.items() if table != "meta")
    click.echo(f"copied {source} to {redacted(target)}: {summary}")
