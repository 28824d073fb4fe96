"""The subscriber list: import, add, remove, list, export, count, pending signups, the form."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Settings


def address_argument(email: str) -> str:
    from email_validator import EmailNotValidError

    from digest.addresses import normalise_email

    try:
        return normalise_email(email)
    except EmailNotValidError as err:
        raise DigestError(f"{email!r} is not a valid email address ({err})") from None


@main.group()
def subscribers() -> None:
    """Manage the subscriber list (stored in delivery.database)."""


newsletter_option = click.option(
    "--newsletter", "newsletters", multiple=True, metavar="KEY",
    help="A newsletter to subscribe them to (repeat for several; default: the default one).",
)  # fmt: skip


def chosen_newsletters(settings: Settings, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys asked for, each checked against config.yaml; else the default's."""
    for key in keys:
        settings.newsletter_for(key)
    return tuple(dict.fromkeys(keys)) or (settings.newsletter.key,)


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Make unsubscribed, bounced or forgotten people active again.",
)
@click.option(
    "--encoding",
    metavar="NAME",
    help="The file's text encoding (default: UTF-8, or detected, and said).",
)
@newsletter_option
@config_option
@reports_errors
def subscribers_import(
    csv_file: Path,
    resubscribe: bool,
    encoding: str | None,
    newsletters: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Add or update subscribers from a CSV file with a header row (email required).
    Exports of Mailchimp, Substack, Buttondown and listmonk are recognised by their
    headers: names are read, and people who had left come in as they left."""
    from digest.subscribers import import_csv

    settings = settings_from(config_path)
    chosen = chosen_newsletters(settings, newsletters)
    store = open_store(settings)
    try:
        report = import_csv(
            store, csv_file, resubscribe=resubscribe, encoding=encoding, newsletters=chosen,
            audience=settings.audience,
        )  # fmt: skip
    finally:
        store.close()
    how = "as named" if encoding else "detected; --encoding NAME reads it otherwise"
    if encoding or report.encoding not in ("utf-8", "utf-8-sig"):
        click.echo(f"{csv_file}: read as {report.encoding} ({how})", err=True)
    for line in report.lines():
        click.echo(line)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name, for greetings.")
@click.option(
    "--resubscribe", is_flag=True, help="Make an unsubscribed or forgotten address active again."
)
@newsletter_option
@config_option
@reports_errors
def subscribers_add(
    email: str,
    name: str | None,
    resubscribe: bool,
    newsletters: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Add one subscriber."""
    address = address_argument(email)
    settings = settings_from(config_path)
    chosen = chosen_newsletters(settings, newsletters)
    store = open_store(settings)
    try:
        outcome = store.upsert_subscribers(
            [(address, name, {})], resubscribe=resubscribe, newsletters=chosen
        )
    finally:
        store.close()
    if outcome.suppressed:
        raise DigestError(
            f"{address} was removed with --forget; pass --resubscribe to add them back"
        )
    if outcome.kept:
        raise DigestError(
            f"{address} has unsubscribed (or bounced); pass --resubscribe to make them active again"
        )
    word = next(k for k in ("added", "updated", "unchanged") if getattr(outcome, k))
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
        status = store.unsubscribe_email(address)
        if status is None:
            raise DigestError(f"{address} is not a subscriber")
        click.echo(
            f"unsubscribed {address}"
            if status == UNSUBSCRIBED
            else f"{address} is {status} already"
        )
    finally:
        store.close()


STATUSES = ["active", "unsubscribed", "bounced", "complained", "pending"]


@subscribers.command("unsuppress")
@click.option(
    "--event-since",
    "since",
    required=True,
    metavar="TIME",
    help="Undo bounces recorded at or after this time (ISO 8601, e.g. 2026-11-29T08:00; UTC "
    "unless it names a zone).",
)
@click.option("--reason", required=True, help="Why: kept with each subscriber's history.")
@click.option("--provider", help="Only bounces reported by this provider (e.g. smtp).")
@click.option("--issue", "issue", metavar="SLUG", help="Only bounces while sending this issue.")
@click.option("--dry-run", is_flag=True, help="List who would be put back; change nothing.")
@config_option
@reports_errors
def subscribers_unsuppress(
    since: str,
    reason: str,
    provider: str | None,
    issue: str | None,
    dry_run: bool,
    config_path: str | None,
) -> None:
    """Put wrongly bounced subscribers back on the list, in bulk and on the record."""
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(since.strip())
    except ValueError:
        raise DigestError(
            f"--event-since {since!r}: not a time (use ISO 8601, e.g. 2026-11-29T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if not reason.strip():
        raise DigestError("--reason: say why these suppressions are undone")
    store = open_store(settings_from(config_path))
    try:
        emails = store.unsuppress(
            moment, reason.strip(), provider=provider, issue=issue, dry_run=dry_run
        )
    finally:
        store.close()
    for email in emails:
        click.echo(email)
    verb = "would put back" if dry_run else "put back"
    click.echo(f"{verb} {len(emails)} bounced subscriber(s) as active", err=True)


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    help="Only these; pending are signups from the site not yet confirmed (never mailed issues).",
)
@config_option
@reports_errors
def subscribers_list(status: str | None, config_path: str | None) -> None:
    """List subscribers: email, status, name (pending signups: with when they asked)."""
    store = open_store(settings_from(config_path))
    try:
        if status in (None, "pending"):
            for signup in store.signups() if status == "pending" else ():
                asked = f"{signup.requested_at:%Y-%m-%d %H:%M}"
                click.echo(f"{signup.email}\tpending\t{signup.name or ''}\t{asked}")
        if status != "pending":
            for sub in store.iter_subscribers(status):
                click.echo(f"{sub.email}\t{sub.status}\t{sub.name or ''}".rstrip())
    finally:
        store.close()


@subscribers.command("purge-pending")
@config_option
@reports_errors
def subscribers_purge_pending(config_path: str | None) -> None:
    """Forget signups not confirmed within web.confirm_days (digest deliver does this too)."""
    import datetime as dt

    settings = settings_from(config_path)
    store = open_store(settings)
    try:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.web.confirm_days)
        purged = store.purge_signups(before)
    finally:
        store.close()
    click.echo(f"purged {purged} pending signup(s) older than {settings.web.confirm_days:g} days")


@subscribers.command("form")
@click.option(
    "--newsletter", "newsletters", multiple=True,
    help="A newsletter the form signs people up to (repeat for several); default: each "
    "declared newsletter offered, the default one ticked.",
)  # fmt: skip
@config_option
@reports_errors
def subscribers_form(newsletters: tuple[str, ...], config_path: str | None) -> None:
    """Print the signup form as HTML to paste into the site's own pages."""
    from digest.signup import signup_form

    settings = settings_from(config_path)
    click.echo(
        "<!-- The signup form of the digest app at "
        f"{settings.web.base_url}: a plain POST, no JavaScript. If your site sends a "
        "Content-Security-Policy, its form-action must allow that address. -->"
    )
    click.echo(signup_form(settings, newsletters))


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
    for status in STATUSES:
        click.echo(f"{status}\t{counts.get(status, 0)}")
    click.echo(f"total\t{sum(n for s, n in counts.items() if s != 'pending')}")
