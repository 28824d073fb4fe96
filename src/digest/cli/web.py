"""The public web app: unsubscribe pages, one-click unsubscribe, provider webhooks."""

from __future__ import annotations

import click

from digest.cli.common import config_option, main, reports_errors, settings_from


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8026, show_default=True, type=click.IntRange(0, 65535))
@config_option
@reports_errors
def serve_command(host: str, port: int, config_path: str | None) -> None:
    """Serve the unsubscribe pages, one-click unsubscribe and the provider webhooks."""
    from digest.tokens import signing_keys
    from digest.web import create_app
    from digest.web.server import listening_socket, run
    from digest.web.unsubscribe import unsubscribe_route

    settings = settings_from(config_path)
    app = create_app(settings, signing_keys(settings))
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    path = unsubscribe_route(settings).replace("{token:str}", "<token>")
    click.echo(f"serving {path} on http://{host}:{bound}/ (Ctrl+C to stop)", err=True)
    click.echo(f"http://{host}:{bound}/")
    run(app, sock)
