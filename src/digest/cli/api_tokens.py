"""The HTTP API's tokens: make one (shown once), list them, revoke one."""

from __future__ import annotations

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from


@main.group("api-tokens")
def api_tokens() -> None:
    """Tokens for the HTTP API at /api/v1/ on digest serve."""


@api_tokens.command("add")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True,
              help="read: look at subscribers, issues, events; write: add and change "
              "subscribers (and learn nothing about who is subscribed).")  # fmt: skip
@config_option
@reports_errors
def api_tokens_add(name: str, scope: str, config_path: str | None) -> None:
    """Make a token called NAME and print it, once: only its hash is kept."""
    store = open_store(settings_from(config_path))
    try:
        token = store.add_api_token(name, scope)
        store.audit("cli", "api token added", name, scope=scope)
    finally:
        store.close()
    click.echo(token)
    click.echo(f"(the {scope} token {name!r}: keep it now, it cannot be shown again)", err=True)


@api_tokens.command("list")
@config_option
@reports_errors
def api_tokens_list(config_path: str | None) -> None:
    """Each token's name, scope and dates (never the token)."""
    store = open_store(settings_from(config_path))
    try:
        tokens = store.api_tokens()
    finally:
        store.close()
    for token in tokens:
        state = f"revoked {token.revoked_at}" if token.revoked_at else "live"
        click.echo(f"{token.name}\t{token.scope}\tmade {token.created_at}\t{state}")


@api_tokens.command("revoke")
@click.argument("name")
@config_option
@reports_errors
def api_tokens_revoke(name: str, config_path: str | None) -> None:
    """Revoke the live token called NAME: calls with it are refused from now on."""
    from digest.errors import DigestError

    store = open_store(settings_from(config_path))
    try:
        if not store.revoke_api_token(name):
            raise DigestError(f"no live API token named {name!r}")
        store.audit("cli", "api token revoked", name)
    finally:
        store.close()
    click.echo(f"revoked {name}")
