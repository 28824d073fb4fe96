"""The desk's two-person rule (``desk.require_approval``): a schedule an editor asked for
waits here until a different editor or an admin approves it; delivery never sees it
before, as it is not scheduled until then.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Stamp, Text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "approvals" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "approvals",
        sa.Column("slug", Text, primary_key=True),
        sa.Column("version", Text, nullable=False),
        sa.Column("send_at", Stamp, nullable=False),
        sa.Column("zone", Text, nullable=False),
        sa.Column("requested_by", Text, nullable=False),
        sa.Column("requested_at", Stamp, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("approvals")
