"""The store's schema and its migrations (Alembic): a database made by any older digest,
on SQLite or PostgreSQL, upgrades in place with nothing lost, and every migrated database
has exactly the tables store/tables.py defines."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from digest.store.migrate import HEAD, MIGRATIONS_FOLDER, SCHEMA_VERSION
from digest.store.schema import MIGRATIONS
from digest.store.sqlite import SQLiteStore

STAMP = "2026-11-01T07:00:00.000+00:00"
LATER = "2026-11-02T08:30:00.250+00:00"


def _differences(connection: Any, metadata: Any) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``.
    SQLite reports a primary key's NULL-ability and its defaults' text loosely (its own
    quirks, not differences in the schema): only types, columns, tables and indexes are
    compared there."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    sqlite = connection.dialect.name == "sqlite"

    def include(name: str | None, kind: str, parents: Any) -> bool:
        return not (kind == "table" and name in ("alembic_version", "sqlite_sequence"))

    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": not sqlite, "include_name": include},
    )
    found = []
    for change in compare_metadata(context, metadata):
        steps = change if isinstance(change, list) else [change]
        kept = [
            step
            for step in steps
            if not (sqlite and step[0] in ("modify_nullable", "modify_default"))
        ]
        found.extend(kept)
    return found


def _sqlite_engine(path: Path) -> Any:
    import sqlalchemy as sa

    return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(path))


def _postgres_engine(url: str) -> Any:
    import psycopg
    import sqlalchemy as sa

    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))


def test_the_store_expects_the_newest_alembic_revision() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_FOLDER))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD
    assert int(HEAD) == SCHEMA_VERSION


def test_a_new_sqlite_database_has_exactly_the_tables_defined_once(tmp_path: Path) -> None:
    from digest.store.tables import metadata

    SQLiteStore(tmp_path / "new.sqlite3").close()
    with _sqlite_engine(tmp_path / "new.sqlite3").connect() as connection:
        assert _differences(connection, metadata) == []


def _legacy_sqlite(path: Path, version: int) -> None:
    """A database as the digest of SQLite schema ``version`` left it, with a list, an
    issue sent to it, and (where the schema has them) events and a signup."""
    db = sqlite3.connect(path, isolation_level=None)
    for number in range(version):
        for statement in MIGRATIONS[number].split(";"):
            if statement.strip():
                db.execute(statement)
        if number == 0:
            db.execute(
                "INSERT INTO subscribers (id, email, name, status, attributes, created_at,"
                " updated_at) VALUES (1, 'ann@example.org', 'Ann', 'active', '{\"city\": \"Oslo\"}', ?, ?)",
                (STAMP, STAMP),
            )
            db.execute(
                "INSERT INTO issues (slug, path, source_hash, send_at, status, rendered, created_at,"
                " started_at) VALUES ('old', 'issues/old.yaml', 'h', ?, 'sent', '{\"x\": 1}', ?, ?)",
                (STAMP, STAMP, STAMP),
            )
            db.execute(
                "INSERT INTO deliveries (issue, subscriber_id, status, message_id, updated_at)"
                " VALUES ('old', 1, 'accepted', '<m1@example.org>', ?)",
                (STAMP,),
            )
        if number == 3:
            db.execute(
                "INSERT INTO events (fingerprint, provider, kind, email, subscriber_id, issue,"
                " message_id, occurred_at, received_at) VALUES ('f1', 'mailgun', 'delivered',"
                " 'ann@example.org', 1, 'old', 'm1@example.org', ?, ?)",
                (LATER, LATER),
            )
        if number == 4:
            db.execute(
                "INSERT INTO signups (uid, email, name, requested_at, due)"
                " VALUES ('u-bob', 'bob@example.org', 'Bob', ?, 1)",
                (LATER,),
            )
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_a_sqlite_database_of_every_older_schema_upgrades_in_place_with_nothing_lost(
    tmp_path: Path, version: int
) -> None:
    from digest.store.tables import metadata

    path = tmp_path / f"schema-{version}.sqlite3"
    _legacy_sqlite(path, version)
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and (ann.id, ann.name, ann.attributes) == (1, "Ann", {"city": "Oslo"})
    issue = store.get_schedule("old")
    assert issue is not None and issue.status == "sent" and issue.rendered_json == '{"x": 1}'
    assert store.delivery_counts("old") == {"accepted": 1}
    if version >= 4:
        assert [e.kind for e in store.events_for("ann@example.org")] == ["delivered"]
    if version >= 5:
        assert [s.email for s in store.signups()] == ["bob@example.org"]
        assert store.confirmations_due()
    store.close()
    with _sqlite_engine(path).connect() as connection:
        assert _differences(connection, metadata) == []


# --- PostgreSQL ---------------------------------------------------------------------------


def _revision(name: str) -> ModuleType:
    path = next((MIGRATIONS_FOLDER / "versions").glob(f"{name}_*.py"))
    spec = importlib.util.spec_from_file_location(f"revision_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_postgres_database_has_exactly_the_tables_defined_once(
    postgres_server: Any,
) -> None:
    import sqlalchemy as sa

    from digest.store.postgres import PostgresStore
    from digest.store.tables import inbox, metadata

    postgres_url = postgres_server.new_database()
    PostgresStore(postgres_url, migrate=True).close()
    with _postgres_engine(postgres_url).connect() as connection:
        assert _differences(connection, metadata) == []
        connection.execute(sa.text("SET search_path TO inbox"))
        assert _differences(connection, inbox) == []


def _legacy_postgres(url: str, version: int) -> None:
    """A database as the digest of PostgreSQL schema ``version`` (6 or 7) left it: every
    time as text, attributes as text, the signup flag an integer."""
    import psycopg

    schema = _revision("0007")
    with psycopg.connect(url, autocommit=True) as db:
        for statement in schema.SCHEMA.split(";\n"):
            if statement.strip():
                db.execute(statement)
        if version == 6:
            db.execute("DROP TABLE events_failed")
            db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
        db.execute(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES ('u-ann', 'ann@example.org', 'Ann', 'active', '{\"city\": \"Oslo\"}', %s, %s)",
            (STAMP, STAMP),
        )
        db.execute(
            "INSERT INTO issues (slug, key, path, source_hash, send_at, status, rendered,"
            " created_at, started_at) VALUES ('old', 1, 'issues/old.yaml', 'h', %s, 'sent', '',"
            " %s, %s)",
            (STAMP, STAMP, STAMP),
        )
        db.execute("INSERT INTO renders (slug, rendered) VALUES ('old', '{\"x\": 1}')")
        db.execute(
            "INSERT INTO deliveries (issue, subscriber_id, status, next_attempt_at, updated_at)"
            " VALUES (1, 1, 'pending', %s, 1761980400)",
            (LATER,),
        )
        db.execute(
            "INSERT INTO events (fingerprint, provider, kind, email, subscriber_id, issue,"
            " occurred_at, received_at) VALUES ('f1', 'mailgun', 'delivered', 'ann@example.org',"
            " 1, 'old', %s, %s)",
            (LATER, LATER),
        )
        db.execute(
            "INSERT INTO signups (uid, email, name, requested_at, due)"
            " VALUES ('u-bob', 'bob@example.org', 'Bob', %s, 1)",
            (LATER,),
        )
        db.execute(
            "INSERT INTO inbox.unsubscribes (uid, received_at) VALUES ('u-ann', %s)", (LATER,)
        )


@pytest.mark.parametrize("version", [6, 7])
def test_a_postgres_database_of_an_older_schema_upgrades_in_place_to_native_types(
    postgres_server: Any, version: int
) -> None:
    from digest.errors import StoreError
    from digest.store.postgres import PostgresStore
    from digest.store.tables import metadata

    postgres_url = postgres_server.new_database()

    _legacy_postgres(postgres_url, version)
    with pytest.raises(StoreError, match="run `digest db migrate`"):
        PostgresStore(postgres_url)
    store = PostgresStore(postgres_url, migrate=True)
    assert store.schema_version() == SCHEMA_VERSION
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and ann.attributes == {"city": "Oslo"} and ann.created_at == STAMP
    issue = store.get_schedule("old")
    assert issue is not None and issue.send_at == dt.datetime.fromisoformat(STAMP)
    assert store.next_retry_at("old") == dt.datetime.fromisoformat(LATER)
    event = store.events_for("ann@example.org")[0]
    assert event.occurred_at == dt.datetime.fromisoformat(LATER)
    assert store.confirmations_due() and [s.email for s in store.signups()] == ["bob@example.org"]
    assert store.failed_events() == []
    assert store.apply_inbox() == 1  # the unsubscribe waiting in the inbox is applied
    assert store.get_subscriber("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    with store.transaction() as db:
        types = {
            (r["table_name"], r["column_name"]): r["data_type"]
            for r in db.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        }
    assert types[("subscribers", "created_at")] == "timestamp with time zone"
    assert types[("subscribers", "attributes")] == "jsonb"
    assert types[("signups", "due")] == "boolean"
    assert types[("deliveries", "next_attempt_at")] == "timestamp with time zone"
    store.close()
    with _postgres_engine(postgres_url).connect() as connection:
        assert _differences(connection, metadata) == []
    again = PostgresStore(postgres_url)  # and it opens as any current database does
    assert json.loads(again.get_schedule("old").rendered_json) == {"x": 1}  # type: ignore[union-attr]
    again.close()


def test_an_inbox_from_before_never_reused_ids_is_rebuilt_with_its_rows(tmp_path: Path) -> None:
    """An SQLite inbox made by an earlier digest (ids that could be used again, no
    newsletter column) is rebuilt when opened: what waited in it is applied, and a row
    cleared from it never gives its id to the next one."""
    import sqlite3

    from digest.store.sqlite import SQLiteStore

    database = tmp_path / "digest.sqlite3"
    store = SQLiteStore(database)
    store.upsert_subscribers([("ann@example.org", None, {})], resubscribe=False)
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None
    store.close()
    old = sqlite3.connect(tmp_path / "digest.sqlite3-inbox")
    old.executescript(
        "CREATE TABLE unsubscribes (id INTEGER PRIMARY KEY, uid TEXT NOT NULL,"
        " received_at TEXT NOT NULL, channel TEXT NOT NULL DEFAULT 'link');"
        "CREATE TABLE events (id INTEGER PRIMARY KEY, event TEXT NOT NULL);"
        f"INSERT INTO unsubscribes (id, uid, received_at) VALUES (7, '{ann.uid}',"
        " '2026-11-29T06:00:00.000+00:00');"
    )
    old.commit()
    old.close()
    store = SQLiteStore(database)
    try:
        assert store.inbox_waiting() == 1
        assert store.apply_inbox() == 1
        assert store.get_subscriber("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        store.request_unsubscribe("nobody", "link")  # after id 7 was cleared: not 7 again
        ids = [r[0] for r in sqlite3.connect(tmp_path / "digest.sqlite3-inbox").execute(
            "SELECT id FROM unsubscribes")]  # fmt: skip
        assert ids == [8]
    finally:
        store.close()
