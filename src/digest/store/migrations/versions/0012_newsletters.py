"""Several newsletters (issue 27): a subscriber's status per newsletter, the newsletter
an issue goes to and the segment of its subscribers it is for, the newsletters a signup asked for, and, in the inbox, which newsletter
an unsubscribe leaves and the choices made on the subscription page; and the HTTP
API's tokens.

Everyone already on the list is subscribed to the default newsletter, ``main``, if they
are active, and recorded as unsubscribed from it otherwise; nothing else changes.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Id, Stamp, Text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DEFAULT_KEY = "main"  # frozen here: digest.newsletters.DEFAULT_KEY may change, this may not


def _columns(table: str, schema: str | None = None) -> set[str]:
    inspector = sa.inspect(op.get_bind())
    return {c["name"] for c in inspector.get_columns(table, schema=schema)}


def upgrade() -> None:
    bind = op.get_bind()
    if "subscriptions" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "subscriptions",
            sa.Column("subscriber_id", Id, primary_key=True),
            sa.Column("newsletter", Text, primary_key=True),
            sa.Column("status", Text, nullable=False),
            sa.Column("changed_at", Stamp, nullable=False),
        )
        op.create_index(
            "subscriptions_newsletter", "subscriptions", ["newsletter", "status", "subscriber_id"]
        )
        op.execute(
            sa.text(
                "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
                " SELECT id, :key, CASE WHEN status = 'active' THEN 'subscribed'"
                " ELSE 'unsubscribed' END, updated_at FROM subscribers"
            ).bindparams(key=DEFAULT_KEY)
        )
    issue_columns = _columns("issues")
    if "newsletter" not in issue_columns:
        with op.batch_alter_table("issues") as table:
            table.add_column(
                sa.Column("newsletter", Text, nullable=False, server_default=DEFAULT_KEY)
            )
    if "segment" not in issue_columns:  # who of the newsletter's subscribers get it (JSON)
        with op.batch_alter_table("issues") as table:
            table.add_column(sa.Column("segment", Text))
    if "newsletters" not in _columns("signups"):
        with op.batch_alter_table("signups") as table:
            table.add_column(sa.Column("newsletters", Text))
    if "api_tokens" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "api_tokens",
            sa.Column("id", Id, sa.Identity(), primary_key=True),
            sa.Column("name", Text, nullable=False),
            sa.Column("scope", Text, nullable=False),
            sa.Column("token_hash", Text, nullable=False, unique=True),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("revoked_at", Stamp),
        )
    if bind.dialect.name == "postgresql":  # on SQLite the inbox is a file of its own
        if "newsletter" not in _columns("unsubscribes", "inbox"):
            op.add_column("unsubscribes", sa.Column("newsletter", Text), schema="inbox")
        if "newsletters" not in _columns("signups", "inbox"):
            op.add_column("signups", sa.Column("newsletters", Text), schema="inbox")
        if "choices" not in set(sa.inspect(bind).get_table_names(schema="inbox")):
            op.create_table(
                "choices",
                sa.Column("id", Id, sa.Identity(), primary_key=True),
                sa.Column("uid", Text, nullable=False),
                sa.Column("choice", Text, nullable=False),
                sa.Column("received_at", Stamp, nullable=False),
                schema="inbox",
            )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("subscriptions_newsletter", "subscriptions")
    op.drop_table("subscriptions")
    with op.batch_alter_table("issues") as table:
        table.drop_column("segment")
        table.drop_column("newsletter")
    with op.batch_alter_table("signups") as table:
        table.drop_column("newsletters")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("choices", schema="inbox")
        op.drop_column("signups", "newsletters", schema="inbox")
        op.drop_column("unsubscribes", "newsletter", schema="inbox")
