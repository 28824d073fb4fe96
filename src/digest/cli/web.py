"""The public web app: home page, signup, archive, unsubscribe, provider webhooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from digest.cli.common import (
    config_option,
    main,
    open_store,
    reports_errors,
    settings_from,
    signing_key_note,
)
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Settings

DEFAULT_PORT = 8026


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Port [default: web.base_url's port when it is on this machine, else 8026].",
)
@click.option("--root-path", default="", help="The sub-path a reverse proxy strips, e.g. /digest.")
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Believe X-Forwarded-For/-Proto from --trusted-proxies (the client's address "
    "for rate limits).",
)
@click.option(
    "--trusted-proxies",
    default=None,
    help="Comma-separated proxy addresses or networks whose forwarded headers count "
    "[default: web.trusted_proxies, 127.0.0.1].",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes answering on the one socket.",
)
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
@config_option
@reports_errors
def serve_command(
    host: str | None,
    port: int | None,
    root_path: str,
    proxy_headers: bool,
    trusted_proxies: str | None,
    workers: int,
    no_access_log: bool,
    config_path: str | None,
) -> None:
    """Serve the public app: home page, signup, archive and feed, unsubscribe pages,
    one-click unsubscribe and the provider webhooks."""
    from digest.config import is_local_url
    from digest.storeconfig import resolve_config_path
    from digest.tokens import signing_keys
    from digest.web import CONFIG_ENV, create_app
    from digest.web.server import Options, listening_socket, run, run_workers

    settings = settings_from(config_path)
    trusted = proxies(trusted_proxies, settings)  # a junk list is refused before anything
    keys = signing_keys(settings)
    signing_key_note(settings)
    base = settings.web.base_url
    parts = urlsplit(base)
    if is_local_url(base):
        host = host or ("127.0.0.1" if parts.hostname == "localhost" else parts.hostname)
        port = DEFAULT_PORT if port is None and parts.port is None else port
        port = port if port is not None else parts.port
    host, port = host or "127.0.0.1", DEFAULT_PORT if port is None else port
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    options = Options(
        root_path=root_path.rstrip("/"),
        proxy_headers=proxy_headers,
        trusted_proxies=trusted,
        access_log=not no_access_log,
        workers=workers,
        max_connections=settings.web.max_connections,
        header_timeout=settings.web.header_timeout,
    )
    where = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    same = is_local_url(base) and (parts.port or 80) == bound
    click.echo(f"{base}/" if same else f"{where}/")  # the address, once, on stdout
    if is_local_url(base) and not same:
        click.echo(
            f"warning: web.base_url is {base}, so links in mail point there, not to port {bound}",
            err=True,
        )
    elif not same:
        click.echo(f"links in mail point to {base}/ (web.base_url)", err=True)
    click.echo("Ctrl+C to stop", err=True)
    if workers > 1:
        path = resolve_config_path(config_path)
        if path is not None:
            os.environ[CONFIG_ENV] = str(Path(path).resolve())
        run_workers(sock, options)
    else:
        run(create_app(settings, keys), sock, options)


def proxies(given: str | None, settings: Settings) -> str:
    """--trusted-proxies, checked, or web.trusted_proxies."""
    from digest.config import proxy_list

    if given is None:
        return settings.web.trusted_proxies
    try:
        return proxy_list(given)
    except ValueError as err:
        raise DigestError(f"--trusted-proxies: {err}") from None


@main.group()
def archive() -> None:
    """The public archive of sent issues."""


@archive.command("build")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the archive to (for any static host or CDN).",
)
@config_option
@reports_errors
def archive_build(out_dir: Path, config_path: str | None) -> None:
    """Write the archive as static files: the home page, issues/, each issue's web
    version and feed.xml, the same pages digest serve answers."""
    from digest.archive import Archive
    from digest.fileio import write_tree

    settings = settings_from(config_path)
    store = open_store(settings)
    try:
        published = store.published_issues(scheduled_too=settings.web.publish == "scheduled")
    finally:
        store.close()
    files = Archive(settings, published).files()
    write_tree(out_dir, files)
    click.echo(f"wrote {len(published)} issue(s), {len(files)} file(s) to {out_dir}/")
