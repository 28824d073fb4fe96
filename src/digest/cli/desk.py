"""The editors' desk from the command line: its users, its audit log, and ``digest desk``
itself."""

from __future__ import annotations

import datetime as dt
import getpass
import sys

import click

from digest.cli.common import config_option, main, open_store, reports_errors, settings_from
from digest.errors import DigestError

ROLE_CHOICE = click.Choice(["contributor", "editor", "admin"])


def _actor() -> str:
    """Who ran a command, for the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = click.prompt("Password", hide_input=True)
    again = click.prompt("Again", hide_input=True)
    if first != again:
        raise DigestError("the two passwords differ; nothing was changed")
    return str(first)


def _email(value: str) -> str:
    """checked_address, imported when used: email-validator costs start-up time."""
    from digest.addresses import checked_address

    return checked_address(value)


@main.group("users")
def users_group() -> None:
    """Who may sign in to the editors' desk, and with what role."""


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@users_group.command("add")
@click.argument("email")
@click.option("--role", type=ROLE_CHOICE, required=True, help="What the user may do.")
@click.option("--name", default=None, help="The name the desk shows.")
@password_stdin
@config_option
@reports_errors
def users_add(
    email: str, role: str, name: str | None, password_stdin: bool, config_path: str | None
) -> None:
    """Add a desk user (asks for a password: at least 12 characters)."""
    from digest.desk.passwords import hash_password

    address = _email(email)
    hashed = hash_password(_read_password(password_stdin))
    store = open_store(settings_from(config_path))
    try:
        store.add_user(address, name, role, hashed)
        store.audit(_actor(), "user added", address, role=role)
    finally:
        store.close()
    click.echo(f"added {address} ({role})")


@users_group.command("passwd")
@click.argument("email")
@password_stdin
@config_option
@reports_errors
def users_passwd(email: str, password_stdin: bool, config_path: str | None) -> None:
    """Set a desk user's password (their sessions end)."""
    from digest.desk.passwords import hash_password

    address = _email(email)
    hashed = hash_password(_read_password(password_stdin))
    store = open_store(settings_from(config_path))
    try:
        store.update_user(address, password_hash=hashed)
        store.audit(_actor(), "password changed", address)
    finally:
        store.close()
    click.echo(f"changed the password of {address}")


@users_group.command("list")
@config_option
@reports_errors
def users_list(config_path: str | None) -> None:
    """Every desk user: address, role, and whether they are disabled."""
    store = open_store(settings_from(config_path))
    try:
        users = store.users()
    finally:
        store.close()
    if not users:
        click.echo("no desk users yet: digest users add EMAIL --role editor")
    for user in users:
        state = "  disabled" if user.disabled else ""
        name = f"  {user.name}" if user.name else ""
        click.echo(f"{user.email}  {user.role}{state}{name}")


def _set_disabled(email: str, disabled: bool, config_path: str | None) -> None:
    address = _email(email)
    store = open_store(settings_from(config_path))
    try:
        store.update_user(address, disabled=disabled)
        store.audit(_actor(), "user disabled" if disabled else "user enabled", address)
    finally:
        store.close()
    click.echo(f"{'disabled' if disabled else 'enabled'} {address}")


@users_group.command("disable")
@click.argument("email")
@config_option
@reports_errors
def users_disable(email: str, config_path: str | None) -> None:
    """Stop a desk user from signing in (signed out at once)."""
    _set_disabled(email, True, config_path)


@users_group.command("enable")
@click.argument("email")
@config_option
@reports_errors
def users_enable(email: str, config_path: str | None) -> None:
    """Let a disabled desk user sign in again."""
    _set_disabled(email, False, config_path)


@users_group.command("role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
@config_option
@reports_errors
def users_role(email: str, role: str, config_path: str | None) -> None:
    """Change a desk user's role."""
    address = _email(email)
    store = open_store(settings_from(config_path))
    try:
        store.update_user(address, role=role)
        store.audit(_actor(), "role changed", address, role=role)
    finally:
        store.close()
    click.echo(f"{address} is now {role}")


@main.command("audit")
@click.option("--since", default=None, help="Only entries from this date (YYYY-MM-DD) on.")
@config_option
@reports_errors
def audit_command(since: str | None, config_path: str | None) -> None:
    """What desk users and commands did, newest first: sign-ins, edits, test sends,
    schedules, approvals."""
    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC)
        except ValueError:
            raise DigestError(f"--since {since}: not a date (YYYY-MM-DD)") from None
    store = open_store(settings_from(config_path))
    try:
        entries = store.audit_entries(start)
    finally:
        store.close()
    for entry in entries:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
        subject = f"  {entry.subject}" if entry.subject else ""
        click.echo(
            f"{entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.actor}  {entry.action}{subject}"
            f"{'  (' + detail + ')' if detail else ''}"
        )


__all__ = ["audit_command", "users_group"]


@main.command("desk")
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: desk.url's host when local, else 127.0.0.1].",
)
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="Port [default: desk.url's port]."
)
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
@config_option
@reports_errors
def desk_command(
    host: str | None, port: int | None, no_access_log: bool, config_path: str | None
) -> None:
    """Serve the editors' desk: sign in, edit issues beside their preview, test-send and
    schedule, read the audit log (add users first: digest users add EMAIL --role editor)."""
    from urllib.parse import urlsplit

    from digest.desk.app import create_desk_app
    from digest.readiness import is_loopback
    from digest.web.server import Options, listening_socket, run

    settings = settings_from(config_path)
    store = open_store(settings)
    if not store.users():
        click.echo("warning: no desk users yet: digest users add EMAIL --role editor", err=True)
    parts = urlsplit(settings.desk.url)
    local = is_loopback(parts.hostname)
    chosen = parts.hostname if local and parts.hostname and parts.hostname != "localhost" else None
    host = host or chosen or "127.0.0.1"
    port = settings.desk.port if port is None else port
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    click.echo(f"http://{'[' + host + ']' if ':' in host else host}:{bound}{settings.desk.path}/")
    if local and bound != settings.desk.port:
        click.echo(
            f"warning: desk.url is {settings.desk.url}: forms posted from port {bound} are"
            " refused as coming from another origin",
            err=True,
        )
    click.echo("Ctrl+C to stop", err=True)
    try:
        run(create_desk_app(settings, store), sock, Options(access_log=not no_access_log))
    finally:
        store.close()
