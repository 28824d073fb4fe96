"""The store's tables, defined once for both databases (SQLAlchemy Core).

This is what the migrations (store/migrations/versions) must arrive at, on SQLite and on
PostgreSQL alike: a test compares every migrated database with these definitions. Types
differ by database only where PostgreSQL has a native one:

- times are ``timestamptz`` on PostgreSQL and ISO 8601 text on SQLite;
- a subscriber's attributes are ``jsonb`` on PostgreSQL and JSON text on SQLite;
- flags are ``boolean`` on PostgreSQL and 0/1 on SQLite;
- ids are ``bigint`` on PostgreSQL and SQLite's ``INTEGER`` (its rowid).

A delivery row's settle time (``deliveries.updated_at``) is whole Unix seconds in both:
it is written for every recipient of every issue, so it stays the smallest time there is.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
Json = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
Flag = sa.Integer().with_variant(sa.Boolean(), "postgresql")
Text = sa.Text()

metadata = sa.MetaData()


def _id() -> sa.Column[int]:
    """An id the database gives (an identity column on PostgreSQL, the rowid on SQLite)."""
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


sa.Table("meta", metadata, sa.Column("key", Text, primary_key=True),
         sa.Column("value", Text, nullable=False))  # fmt: skip

sa.Table(
    "subscribers", metadata,
    _id(),
    sa.Column("uid", Text, nullable=False, unique=True),
    sa.Column("email", Text, nullable=False, unique=True),
    sa.Column("name", Text),
    sa.Column("status", Text, nullable=False, server_default="active"),
    sa.Column("attributes", Json, nullable=False, server_default="{}"),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.Index("subscribers_status", "status", "id"),
)  # fmt: skip

# (0012) a subscriber's status on each newsletter: subscribed or unsubscribed. A global
# status other than active (unsubscribed from all, bounced, complained) overrides it.
sa.Table(
    "subscriptions", metadata,
    sa.Column("subscriber_id", Id, primary_key=True),
    sa.Column("newsletter", Text, primary_key=True),
    sa.Column("status", Text, nullable=False),
    sa.Column("changed_at", Stamp, nullable=False),
    sa.Index("subscriptions_newsletter", "newsletter", "status", "subscriber_id"),
)  # fmt: skip

sa.Table("suppressions", metadata, sa.Column("hash", Text, primary_key=True),
         sa.Column("created_at", Stamp, nullable=False))  # fmt: skip

sa.Table(
    "issues", metadata,
    sa.Column("slug", Text, primary_key=True),
    sa.Column("path", Text, nullable=False),
    sa.Column("source_hash", Text, nullable=False),
    sa.Column("send_at", Stamp, nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("rendered", Text, nullable=False),
    sa.Column("error", Text),
    sa.Column("cursor", Id, nullable=False, server_default="0"),
    sa.Column("lease_owner", Text),
    sa.Column("lease_until", Stamp),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("started_at", Stamp),
    sa.Column("finished_at", Stamp),
    sa.Column("key", Id),
    sa.Column("newsletter", Text, nullable=False, server_default="main"),  # (0012)
    sa.Column("segment", Text),  # (0012) {"text": as written, "tree": parsed} or NULL
    sa.Index("issues_key", "key", unique=True),
)  # fmt: skip

sa.Table(
    "renders", metadata,
    sa.Column("slug", Text, sa.ForeignKey("issues.slug"), primary_key=True),
    sa.Column("rendered", Text, nullable=False),
    sa.Column("web", Text, nullable=False, server_default=""),
)  # fmt: skip

sa.Table(
    "batches", metadata,
    _id(),
    sa.Column("issue", Text, sa.ForeignKey("issues.slug"), nullable=False),
    sa.Column("status", Text, nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("owner", Text),
    sa.Index("batches_inflight", "issue", "status"),
)  # fmt: skip

sa.Table("workers", metadata, sa.Column("owner", Text, primary_key=True),
         sa.Column("until", Stamp, nullable=False))  # fmt: skip

sa.Table(
    "deliveries", metadata,
    sa.Column("issue", Id, primary_key=True),
    sa.Column("subscriber_id", Id, primary_key=True),
    sa.Column("status", Text, nullable=False),
    sa.Column("batch_id", Id),
    sa.Column("message_id", Text),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", Text),
    sa.Column("next_attempt_at", Stamp),
    sa.Column("updated_at", Id, nullable=False),
    sa.Index("deliveries_status", "issue", "status", "updated_at"),
)  # fmt: skip

sa.Table(
    "events", metadata,
    _id(),
    sa.Column("fingerprint", Text, nullable=False, unique=True),
    sa.Column("provider", Text, nullable=False),
    sa.Column("kind", Text, nullable=False),
    sa.Column("email", Text, nullable=False),
    sa.Column("subscriber_id", Id),
    sa.Column("issue", Text),
    sa.Column("message_id", Text),
    sa.Column("detail", Text, nullable=False, server_default=""),
    sa.Column("occurred_at", Stamp, nullable=False),
    sa.Column("received_at", Stamp, nullable=False),
    sa.Index("events_issue", "issue", "kind"),
    sa.Index("events_email", "email", "occurred_at"),
)  # fmt: skip

sa.Table(
    "signups", metadata,
    _id(),
    sa.Column("uid", Text, nullable=False, unique=True),
    sa.Column("email", Text, nullable=False, unique=True),
    sa.Column("name", Text),
    sa.Column("requested_at", Stamp, nullable=False),
    sa.Column("due", Flag, nullable=False, server_default=sa.false()),
    sa.Column("sent_at", Stamp),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", Text),
    sa.Column("newsletters", Text),  # (0012) the keys asked for, comma-separated; NULL: default
    sa.Index("signups_due", "due", "id"),
)  # fmt: skip

sa.Table(
    "events_failed", metadata,
    _id(),
    sa.Column("event", Text, nullable=False),
    sa.Column("reason", Text, nullable=False),
    sa.Column("failed_at", Stamp, nullable=False),
)  # fmt: skip


# The editors' desk (0009): who may sign in, their sessions, and what everyone did.
sa.Table(
    "users", metadata,
    _id(),
    sa.Column("email", Text, nullable=False, unique=True),
    sa.Column("name", Text),
    sa.Column("role", Text, nullable=False),
    sa.Column("password_hash", Text, nullable=False),
    sa.Column("disabled", Flag, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.Column("zone", Text),  # (0011) the time zone the desk shows them times in
)  # fmt: skip

sa.Table(
    "desk_sessions", metadata,
    sa.Column("token_hash", Text, primary_key=True),  # the cookie's token is never stored
    sa.Column("user_id", Id, nullable=False),
    sa.Column("csrf", Text, nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("expires_at", Stamp, nullable=False),
    sa.Index("desk_sessions_user", "user_id"),
)  # fmt: skip

sa.Table(
    "audit_log", metadata,
    _id(),
    sa.Column("at", Stamp, nullable=False),
    sa.Column("actor", Text, nullable=False),  # an email, or "cli:<user>" for commands
    sa.Column("action", Text, nullable=False),
    sa.Column("subject", Text, nullable=False, server_default=""),
    sa.Column("detail", Text, nullable=False, server_default=""),
    sa.Index("audit_log_at", "at"),
)  # fmt: skip

sa.Table(
    "approvals", metadata,  # (0010) a schedule asked for, waiting for a second person
    sa.Column("slug", Text, primary_key=True),
    sa.Column("version", Text, nullable=False),  # the issue file's hash when asked
    sa.Column("send_at", Stamp, nullable=False),
    sa.Column("zone", Text, nullable=False),
    sa.Column("requested_by", Text, nullable=False),
    sa.Column("requested_at", Stamp, nullable=False),
)  # fmt: skip


# (0012) the HTTP API's tokens: only their hashes
sa.Table(
    "api_tokens", metadata,
    _id(),
    sa.Column("name", Text, nullable=False),
    sa.Column("scope", Text, nullable=False),  # read or write
    sa.Column("token_hash", Text, nullable=False, unique=True),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("revoked_at", Stamp),
)  # fmt: skip


# The inbox: what the public app records at once, applied to the list later. On SQLite it
# is a database of its own beside the main one; on PostgreSQL, the schema ``inbox``.
inbox = sa.MetaData()
sa.Table("unsubscribes", inbox, _id(), sa.Column("uid", Text, nullable=False),
         sa.Column("received_at", Stamp, nullable=False),
         sa.Column("channel", Text, nullable=False, server_default="link"),
         sa.Column("newsletter", Text))  # (0012) the one left; NULL: all  # fmt: skip
sa.Table("events", inbox, _id(), sa.Column("event", Text, nullable=False))
sa.Table("seen", inbox, sa.Column("key", Text, primary_key=True),
         sa.Column("seen_at", Stamp, nullable=False))  # fmt: skip
sa.Table("signups", inbox, _id(), sa.Column("email", Text, nullable=False),
         sa.Column("name", Text), sa.Column("received_at", Stamp, nullable=False),
         sa.Column("newsletters", Text))  # fmt: skip
# (0012) a choice made on the subscription page: name, newsletters, leave all (JSON)
sa.Table("choices", inbox, _id(), sa.Column("uid", Text, nullable=False),
         sa.Column("choice", Text, nullable=False),
         sa.Column("received_at", Stamp, nullable=False))  # fmt: skip
sa.Table("confirms", inbox, _id(), sa.Column("uid", Text, nullable=False),
         sa.Column("received_at", Stamp, nullable=False))  # fmt: skip
