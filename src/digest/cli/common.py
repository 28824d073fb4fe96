"""What every command shares: the command group, the error boundary, settings, store."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest import __version__
from digest.errors import DigestError

# Settings (pydantic), the store and everything else a command needs are imported by the
# command when it runs: `digest --help` loads only click.
if TYPE_CHECKING:
    from digest.config import Settings
    from digest.store.sqlite import SQLiteStore

F = TypeVar("F", bound=Callable[..., Any])


def quiet_after_broken_pipe() -> None:
    """The reader of our output went away (``digest status X | head -2``): end quietly,
    as command-line tools do, with nothing more written to the closed pipe."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    sys.exit(0)


def reports_errors(func: F) -> F:
    """Turn a DigestError (or an operating-system error such as a full disk) into one line
    on stderr, ``digest: error: …``, and exit status 1; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            quiet_after_broken_pipe()
        except DigestError as err:
            for line in err.details:
                click.echo(line, err=True)
            click.echo(f"digest: error: {err}", err=True)
            sys.exit(1)
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            click.echo(f"digest: error: {where}{err.strerror or err}", err=True)
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
    from digest.config import load_settings
    from digest.storeconfig import resolve_config_path

    return load_settings(resolve_config_path(config_path))


def open_store(settings: Settings) -> SQLiteStore:
    from digest.store import open_database

    store = open_database(settings.delivery.database, password_env=settings.delivery.password_env)
    return store  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
def main() -> None:
    """Turn a multi-expert conversation into an email newsletter and deliver it."""


def signing_key_note(settings: Settings) -> None:
    """With a list here and a signing key set: a warning when the key did not sign the
    links in the mail last sent (a database elsewhere or no key: nothing to say)."""
    import os

    from digest.store.postgres_urls import is_postgres
    from digest.tokens import key_warning, signing_keys

    database = settings.delivery.database
    env = settings.unsubscribe.signing_key_env
    if not os.environ.get(env) or not (is_postgres(database) or Path(database).is_file()):
        return
    try:
        keys = signing_keys(settings)
        store = open_store(settings)
    except DigestError:
        return
    try:
        warning = key_warning(keys, store.signing_key_id(), env)
    finally:
        store.close()
    if warning:
        click.echo(f"warning: {warning}", err=True)
