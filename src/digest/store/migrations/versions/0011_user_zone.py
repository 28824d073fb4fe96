"""A desk user's time zone: the desk shows send times in it and offers it when scheduling
(remembered from the last schedule they made).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.tables import Text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "zone" not in columns:
        with op.batch_alter_table("users") as table:
            table.add_column(sa.Column("zone", Text))


def downgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.drop_column("zone")
