"""The command line: parse options, call the library, print, set the exit code.

Every DigestError becomes one line on stderr and exit status 1; no traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from digest import __version__
from digest.config import Settings, load_settings, resolve_config_path
from digest.errors import DigestError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a DigestError into ``digest: error: …`` on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DigestError as err:
            click.echo(f"digest: error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("digest: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Settings file (default: ./config.yaml when present, else built-in defaults).",
)


def settings_from(config_path: str | None) -> Settings:
    return load_settings(resolve_config_path(config_path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
def main() -> None:
    """Turn a multi-expert conversation into an email newsletter and deliver it."""


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--url", help="The web address of a local file's conversation (for 'Read more').")
@click.option(
    "--out", "out_dir", metavar="DIR", help="Folder for the issue file (default: issues/)."
)
@click.option("--dry-run", is_flag=True, help="Print the issue YAML instead of writing it.")
@click.option("--force", is_flag=True, help="Replace an existing issue file.")
@config_option
@reports_errors
def compose(
    sources: tuple[str, ...],
    url: str | None,
    out_dir: str | None,
    dry_run: bool,
    force: bool,
    config_path: str | None,
) -> None:
    """Read conversation SOURCES (files or http(s) URLs) and write one issue file."""
    from digest.compose import compose as compose_issue
    from digest.issuefile import dump_issue, write_issue

    settings = settings_from(config_path)
    issue, path = compose_issue(
        list(sources), settings, url=url, out_dir=Path(out_dir) if out_dir else None
    )
    text = dump_issue(issue)
    if dry_run:
        click.echo(text, nl=False)
        return
    write_issue(text, path, force=force)
    experts = sum(len(s.experts) for s in issue.sections)
    click.echo(f"composed {len(issue.sections)} conversation(s), {experts} expert(s)", err=True)
    click.echo(str(path))


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", metavar="DIR", help="Folder for the output (default: build/).")
@config_option
@reports_errors
def render(issue: Path, out_dir: str | None, config_path: str | None) -> None:
    """Render ISSUE to HTML, plain text and a complete .eml message."""
    from digest.build import build, write_outputs

    settings = settings_from(config_path)
    result = build(issue, settings)
    for path in write_outputs(result, Path(out_dir or settings.render.out_dir)):
        click.echo(str(path))


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def check(issue: Path, config_path: str | None) -> None:
    """Check ISSUE before sending: exit 1 when any error is found."""
    from digest.build import build
    from digest.checks import has_errors

    result = build(issue, load_settings(resolve_config_path(config_path)))
    for finding in result.findings:
        click.echo(str(finding))
    errors = sum(f.level == "error" for f in result.findings)
    warnings = len(result.findings) - errors
    click.echo(f"{issue}: {errors} error(s), {warnings} warning(s)", err=True)
    if has_errors(result.findings):
        sys.exit(1)


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(0, 65535))
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in a browser.")
@config_option
@reports_errors
def preview(issue: Path, host: str, port: int, open_browser: bool, config_path: str | None) -> None:
    """Serve a live preview of ISSUE that re-renders on every save."""
    import webbrowser

    from digest.preview import serve

    config = resolve_config_path(config_path)
    load_settings(config)  # a broken config at start is an error, later ones show in the page

    def ready(address: str) -> None:
        click.echo(f"previewing {issue} at {address} (Ctrl+C to stop)", err=True)
        click.echo(address)
        if open_browser:
            webbrowser.open(address)

    serve(issue, config, host, port, ready)


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--test", "test_send", is_flag=True, help="Send a test to staff inboxes (required).")
@click.option(
    "--to",
    "to",
    metavar="ADDRESSES",
    help="Comma-separated addresses instead of config's staff list.",
)
@config_option
@reports_errors
def send(issue: Path, test_send: bool, to: str | None, config_path: str | None) -> None:
    """Send a test of ISSUE to staff, subject prefixed "[TEST] "."""
    from digest.testsend import send_test

    if not test_send:
        raise click.UsageError(
            "digest send only sends tests (--test); subscribers get an issue through digest schedule"
        )
    settings = settings_from(config_path)
    addresses = [a for a in (to or "").split(",") if a.strip()] or None
    outcomes = send_test(issue, settings, to=addresses)
    for outcome in outcomes:
        if outcome.status == "accepted":
            click.echo(f"accepted  {outcome.email}  {outcome.message_id or ''}".rstrip())
        else:
            click.echo(f"{outcome.status:<8}  {outcome.email}  {outcome.reason or ''}".rstrip())
    refused = sum(o.status != "accepted" for o in outcomes)
    click.echo(
        f"test send via {settings.provider.name}: {len(outcomes) - refused} accepted, {refused} not",
        err=True,
    )
    if refused:
        sys.exit(1)


# --- subscribers, scheduling and delivery ----------------------------------------------


def open_store(settings: Settings) -> Any:
    from digest.store.sqlite import SQLiteStore

    return SQLiteStore(Path(settings.delivery.database))


def address_argument(email: str) -> str:
    from email_validator import EmailNotValidError

    from digest.subscribers import normalise_email

    try:
        return normalise_email(email)
    except EmailNotValidError as err:
        raise DigestError(f"{email!r} is not a valid email address ({err})") from None


@main.group()
def subscribers() -> None:
    """Manage the subscriber list (stored in delivery.database)."""


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Make unsubscribed, bounced or forgotten people active again.",
)
@config_option
@reports_errors
def subscribers_import(csv_file: Path, resubscribe: bool, config_path: str | None) -> None:
    """Add or update subscribers from a CSV file with a header row (email required)."""
    from digest.subscribers import import_csv

    store = open_store(settings_from(config_path))
    try:
        report = import_csv(store, csv_file, resubscribe=resubscribe)
    finally:
        store.close()
    for line in report.lines():
        click.echo(line)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name, for greetings.")
@click.option(
    "--resubscribe", is_flag=True, help="Make an unsubscribed or forgotten address active again."
)
@config_option
@reports_errors
def subscribers_add(
    email: str, name: str | None, resubscribe: bool, config_path: str | None
) -> None:
    """Add one subscriber."""
    address = address_argument(email)
    store = open_store(settings_from(config_path))
    try:
        outcome = store.upsert_subscribers([(address, name, {})], resubscribe=resubscribe)
    finally:
        store.close()
    if outcome["suppressed"]:
        raise DigestError(
            f"{address} was removed with --forget; pass --resubscribe to add them back"
        )
    if outcome["kept"]:
        raise DigestError(
            f"{address} has unsubscribed (or bounced); pass --resubscribe to make them active again"
        )
    word = next(k for k in ("added", "updated", "unchanged") if outcome[k])
    click.echo(f"{word} {address}")


@subscribers.command("remove")
@click.argument("email")
@click.option(
    "--forget",
    is_flag=True,
    help="Delete their personal data; keep only a hash so imports skip them.",
)
@config_option
@reports_errors
def subscribers_remove(email: str, forget: bool, config_path: str | None) -> None:
    """Unsubscribe EMAIL (or forget them entirely)."""
    from digest.store import UNSUBSCRIBED

    address = address_argument(email)
    store = open_store(settings_from(config_path))
    try:
        if forget:
            found = store.forget(address)
            click.echo(
                f"forgot {address}"
                if found
                else f"{address} was not subscribed; suppressed for future imports"
            )
            return
        if not store.set_status(address, UNSUBSCRIBED):
            raise DigestError(f"{address} is not a subscriber")
        click.echo(f"unsubscribed {address}")
    finally:
        store.close()


@subscribers.command("list")
@click.option("--status", type=click.Choice(["active", "unsubscribed", "bounced", "complained"]))
@config_option
@reports_errors
def subscribers_list(status: str | None, config_path: str | None) -> None:
    """List subscribers: email, status, name."""
    store = open_store(settings_from(config_path))
    try:
        for sub in store.iter_subscribers(status):
            click.echo(f"{sub.email}\t{sub.status}\t{sub.name or ''}".rstrip())
    finally:
        store.close()


@subscribers.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def subscribers_export(csv_file: Path, config_path: str | None) -> None:
    """Write every subscriber to a CSV file."""
    from digest.subscribers import export_csv

    store = open_store(settings_from(config_path))
    try:
        count = export_csv(store, csv_file)
    finally:
        store.close()
    click.echo(f"exported {count} subscriber(s) to {csv_file}")


@subscribers.command("count")
@config_option
@reports_errors
def subscribers_count(config_path: str | None) -> None:
    """Count subscribers by status."""
    store = open_store(settings_from(config_path))
    try:
        counts = store.count_subscribers()
    finally:
        store.close()
    for status in ("active", "unsubscribed", "bounced", "complained"):
        click.echo(f"{status}\t{counts.get(status, 0)}")
    click.echo(f"total\t{sum(counts.values())}")


@main.command("schedule")
@click.argument("issue", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--at", "at", help='When: "YYYY-MM-DD HH:MM" (in --tz), an ISO time with offset, or "now".'
)
@click.option("--tz", help="Time zone of --at and of the list (default: delivery.timezone).")
@click.option("--list", "show_list", is_flag=True, help="Show what is scheduled.")
@config_option
@reports_errors
def schedule_command(
    issue: Path | None, at: str | None, tz: str | None, show_list: bool, config_path: str | None
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
        frozen = schedule(store, issue, settings, at, zone_name, dt.datetime.now(dt.UTC))
    finally:
        store.close()
    from digest.schedule import zone

    local = frozen.send_at.astimezone(zone(zone_name))
    click.echo(
        f"scheduled {frozen.slug} for {local:%Y-%m-%d %H:%M %Z} ({frozen.send_at:%Y-%m-%d %H:%M} UTC)"
    )


@main.command("unschedule")
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def unschedule_command(issue: Path, config_path: str | None) -> None:
    """Cancel a scheduled ISSUE that has not started sending."""
    from digest.issuefile import issue_slug

    store = open_store(settings_from(config_path))
    try:
        slug = issue_slug(issue)
        current = store.get_schedule(slug)
        if current is None:
            raise DigestError(f"{slug} is not scheduled")
        if not store.cancel_schedule(slug):
            raise DigestError(
                f"{slug} is {current.status}; only an issue that has not started can be unscheduled"
            )
    finally:
        store.close()
    click.echo(f"unscheduled {slug}")


class CliProgress:
    """A progress bar on a terminal, plain log lines elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

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
        elif time.monotonic() - self.last > 5 or settled >= total:
            self.last = time.monotonic()
            click.echo(line, err=True)

    def note(self, message: str) -> None:
        if self.tty:
            click.echo("", err=True)
        click.echo(message, err=True)


@main.command("deliver")
@click.option("--watch", is_flag=True, help="Keep running; deliver issues as they fall due.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again to recipients whose outcome was lost in a crash.",
)
@config_option
@reports_errors
def deliver_command(watch: bool, resend_unknown: bool, config_path: str | None) -> None:
    """Deliver every due issue to the active subscribers (one pass, or --watch)."""
    import time

    from digest.delivery import deliver_due
    from digest.providers import make_http_client

    settings = settings_from(config_path)
    store = open_store(settings)
    failed = False
    try:
        with make_http_client(settings) as client:
            while True:
                reports = deliver_due(
                    store,
                    settings,
                    client=client,
                    progress=CliProgress(),
                    resend_unknown=resend_unknown,
                )
                for report in reports:
                    counts = (
                        ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
                        or "nothing sent"
                    )
                    if report.skipped_reason:
                        continue
                    click.echo(f"{report.slug}: {counts} in {report.seconds:.1f}s")
                    for address in report.unknown:
                        click.echo(
                            f"unknown  {address}  (in flight when delivery stopped; --resend-unknown sends again)"
                        )
                    if report.error:
                        failed = True
                        click.echo(f"digest: error: {report.slug}: {report.error}", err=True)
                if not watch:
                    if not reports:
                        click.echo("no issue is due", err=True)
                    break
                resend_unknown = False
                time.sleep(settings.delivery.watch_interval)
    finally:
        store.close()
    if failed:
        sys.exit(1)


@main.command("status")
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def status_command(issue: Path, config_path: str | None) -> None:
    """Show how delivery of ISSUE stands: counts, rate and ETA."""
    import datetime as dt

    from digest.issuefile import issue_slug

    settings = settings_from(config_path)
    slug = issue_slug(issue)
    store = open_store(settings)
    try:
        current = store.get_schedule(slug)
        if current is None:
            raise DigestError(f"{slug} is not scheduled")
        counts = store.delivery_counts(slug)
        remaining = store.remaining(slug)
        recent = store.accepted_since(slug, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    finally:
        store.close()
    click.echo(f"{slug}: {current.status}" + (f" ({current.error})" if current.error else ""))
    for status in ("pending", "inflight", "accepted", "rejected", "failed", "unknown", "skipped"):
        click.echo(f"{status}\t{counts.get(status, 0)}")
    click.echo(f"not yet sent\t{remaining}")
    if current.status == "sending" and recent:
        rate = recent / 60
        click.echo(f"rate\t{rate:.1f}/s over the last minute, ETA {remaining / rate:.0f}s")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8026, show_default=True, type=click.IntRange(0, 65535))
@config_option
@reports_errors
def serve_command(host: str, port: int, config_path: str | None) -> None:
    """Serve the unsubscribe pages and one-click unsubscribe endpoint."""
    import socket

    import uvicorn

    from digest.serve import create_app, unsubscribe_route
    from digest.tokens import signing_key

    settings = settings_from(config_path)
    key = signing_key(settings)
    store = open_store(settings)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        raise DigestError(f"cannot listen on {host}:{port} ({err.strerror})") from None
    bound = sock.getsockname()[1]
    click.echo(
        f"serving {unsubscribe_route(settings).replace('{token:str}', '<token>')} on http://{host}:{bound}/ (Ctrl+C to stop)",
        err=True,
    )
    click.echo(f"http://{host}:{bound}/")
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings, key), log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        store.close()
