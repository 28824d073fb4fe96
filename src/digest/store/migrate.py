"""Bringing a database to the schema this digest expects, with Alembic, on SQLite and on
PostgreSQL (the revisions are in store/migrations/versions; store/tables.py is where they
arrive). SQLite databases are brought up to date when they are opened; PostgreSQL ones by
``digest db migrate``.

Alembic and SQLAlchemy are imported only when a database needs upgrading: a command on
an up-to-date SQLite list reads one number (``PRAGMA user_version``) and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

HEAD = "0012"  # the newest revision (a test checks it is Alembic's head)
SCHEMA_VERSION = int(HEAD)
WRITE_LOCK = 0x64696765  # "dige": PostgreSQL's advisory lock for every writing transaction
MIGRATIONS_FOLDER = Path(__file__).with_name("migrations")


def _upgrade(connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_FOLDER))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_sqlite(connect: Callable[[], Any]) -> None:
    """Upgrade the SQLite database ``connect`` opens (the caller holds the file's
    migration lock), and say so in ``user_version``, which older digests read."""
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _upgrade(connection)
            raw: Any = connection.connection.driver_connection
            raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        engine.dispose()


def upgrade_postgres(connect: Callable[[], Any]) -> None:
    """Upgrade the PostgreSQL database ``connect`` opens, in one transaction under the
    store's write lock; older digests read the version in ``meta``."""
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://", creator=connect, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": WRITE_LOCK})
            _upgrade(connection)
            connection.execute(
                sa.text(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', :version)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                {"version": str(SCHEMA_VERSION)},
            )
    finally:
        engine.dispose()
