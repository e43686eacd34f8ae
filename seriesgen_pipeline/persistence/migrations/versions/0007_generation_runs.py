"""generation_runs: one row per run; snapshots stored once per fingerprint

A run used to store every series' snapshot, changed or not: about 0.9 KB per
series per night. It now stores a series' snapshot only when its fingerprint
differs from the series' latest stored one, and records itself, whatever it
stored, in ``generation_runs``. The snapshots stored before this revision stay
until retention prunes them (each series keeps its latest).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generation_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("now", sa.DateTime(timezone=True), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("snapshots_stored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_generation_runs_started", "generation_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_generation_runs_started", table_name="generation_runs")
    op.drop_table("generation_runs")
