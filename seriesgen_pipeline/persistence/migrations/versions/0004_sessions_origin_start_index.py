"""class_sessions index on (origin_series_id, starts_at)

The planner reads and counts a series' rows from an instant on (the new slice
of an incremental night, the future rows); without this index each such read
walks every row of the series.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_class_sessions_origin_start", "class_sessions",
                    ["origin_series_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_class_sessions_origin_start", table_name="class_sessions")
