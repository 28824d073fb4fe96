"""Newsletters: what config.yaml declares, and who is on each."""

from __future__ import annotations

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from
from digest.errors import DigestError


@main.group(invoke_without_command=True)
@config_option
@click.pass_context
@reports_errors
def newsletters(ctx: click.Context, config_path: str | None) -> None:
    """List the newsletters, with how many active subscribers each has."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(config_path)
    store = open_store(settings)
    try:
        counts = store.newsletter_counts()
    finally:
        store.close()
    for key in settings.newsletter_keys:
        newsletter = settings.newsletter_for(key)
        default = " (default)" if key == settings.newsletter.key else ""
        click.echo(f"{key}{default}: {newsletter.name}, {counts.get(key, 0)} subscribed")
    for key in sorted(set(counts) - set(settings.newsletter_keys)):
        click.echo(
            f"{key}: not in config.yaml, {counts[key]} subscribed "
            f"(declare it, or move them: digest newsletters rename {key} NEW)"
        )


@newsletters.command("rename")
@click.argument("old")
@click.argument("new")
@config_option
@reports_errors
def newsletters_rename(old: str, new: str, config_path: str | None) -> None:
    """Move every subscription and issue of newsletter OLD to the key NEW."""
    from digest.newsletters import newsletter_key

    try:
        newsletter_key(new)
    except ValueError as err:
        raise DigestError(str(err)) from None
    store = open_store(settings_from(config_path))
    try:
        moved = store.rename_newsletter(old, new)
    finally:
        store.close()
    click.echo(f"moved {moved} subscription(s) from {old} to {new}")
