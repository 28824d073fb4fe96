"""The editors' desk: users (argon2id password hashes, a role, a disabled flag), their
sign-in sessions (only a hash of each session's token) and the audit log.

The tables are written out here, not taken from store/tables.py, so that this revision
creates the same thing however the tables change later.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Flag, Id, Stamp, Text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("id", Id, sa.Identity(), primary_key=True),
            sa.Column("email", Text, nullable=False, unique=True),
            sa.Column("name", Text),
            sa.Column("role", Text, nullable=False),
            sa.Column("password_hash", Text, nullable=False),
            sa.Column("disabled", Flag, nullable=False, server_default=sa.false()),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("updated_at", Stamp, nullable=False),
        )
    if "desk_sessions" not in existing:
        op.create_table(
            "desk_sessions",
            sa.Column("token_hash", Text, primary_key=True),
            sa.Column("user_id", Id, nullable=False),
            sa.Column("csrf", Text, nullable=False),
            sa.Column("created_at", Stamp, nullable=False),
            sa.Column("expires_at", Stamp, nullable=False),
        )
        op.create_index("desk_sessions_user", "desk_sessions", ["user_id"])
    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("id", Id, sa.Identity(), primary_key=True),
            sa.Column("at", Stamp, nullable=False),
            sa.Column("actor", Text, nullable=False),
            sa.Column("action", Text, nullable=False),
            sa.Column("subject", Text, nullable=False, server_default=""),
            sa.Column("detail", Text, nullable=False, server_default=""),
        )
        op.create_index("audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    for name in ("audit_log", "desk_sessions", "users"):
        op.drop_table(name)
