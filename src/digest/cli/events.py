"""Provider events: the ones that could not be applied and were set aside."""

from __future__ import annotations

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from


@main.group()
def events() -> None:
    """Provider events (bounces, complaints, unsubscribes) and their handling."""


@events.command("failed")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="List at most this many.",
)
@config_option
@reports_errors
def events_failed(limit: int, config_path: str | None) -> None:
    """List events set aside because they could not be applied, with the reason.

    Each was kept whole; the events after it were applied as usual."""
    store = open_store(settings_from(config_path))
    try:
        failed = store.failed_events(limit)
    finally:
        store.close()
    for item in failed:
        event = item.event
        click.echo(
            f"{item.failed_at:%Y-%m-%d %H:%M}  {event.provider}  {event.kind}  {event.email}"
            f"  {item.reason}"
        )
    click.echo(f"{len(failed)} event(s) set aside", err=True)
