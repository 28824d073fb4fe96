"""PostgreSQL addresses: telling one from a file path, and with or without the password."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def password_url(url: str, password_env: str | None) -> str:
    """The URL with the password from the environment variable config names, if any
    (otherwise libpq's own: PGPASSWORD, ~/.pgpass)."""
    if not password_env or not os.environ.get(password_env):
        return url
    parts = urlsplit(url)
    from urllib.parse import quote

    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:{quote(os.environ[password_env], safe='')}@{host}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))
