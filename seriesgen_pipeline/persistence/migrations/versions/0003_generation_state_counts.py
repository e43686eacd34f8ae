"""generation state: as_of, row_count, warn_dates (what an incremental night checks and carries)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation_state") as batch_op:
        batch_op.add_column(sa.Column("as_of", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("row_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warn_dates", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation_state") as batch_op:
        batch_op.drop_column("warn_dates")
        batch_op.drop_column("row_count")
        batch_op.drop_column("as_of")
