"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "branches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "class_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructor", sa.String(length=200), nullable=True),
        sa.Column("room", sa.String(length=200), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("recurrence", sa.String(length=500), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("exdates", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_generated_through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "class_sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("origin_series_id", sa.Integer(), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("occurrence_key", sa.String(length=10), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructor", sa.String(length=200), nullable=True),
        sa.Column("room", sa.String(length=200), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="scheduled", nullable=False),
        sa.Column("detached", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("booked_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "origin_series_id", "occurrence_key", name="uq_class_sessions_occurrence"
        ),
    )
    with op.batch_alter_table("class_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_class_sessions_branch_start", ["branch_id", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_class_sessions_room", ["branch_id", "room", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_class_sessions_instructor", ["branch_id", "instructor", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_class_sessions_series_key_start", ["series_key", "starts_at"], unique=False
        )

    op.create_table(
        "generation_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("protected", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("generation_log", schema=None) as batch_op:
        batch_op.create_index("ix_generation_log_run", ["run_id"], unique=False)
        batch_op.create_index(
            "ix_generation_log_series", ["series_key", "started_at"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recipient_type", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_table(
        "scheduling_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=True),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("horizon_days", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("default_duration_minutes", sa.Integer(), nullable=True),
        sa.Column("default_capacity", sa.Integer(), nullable=True),
        sa.Column("open_time", sa.String(length=5), nullable=True),
        sa.Column("close_time", sa.String(length=5), nullable=True),
        sa.Column("closed_dates", sa.JSON(), nullable=True),
        sa.Column("generation_enabled", sa.Boolean(), nullable=True),
        sa.Column("cleanup_grace_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('base', 'branch', 'series')", name="ck_config_scope"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduling_configs", schema=None) as batch_op:
        # One row per scope owner: a single base, one per branch, one per series.
        for scope, owner in (("base", "scope"), ("branch", "branch_id"), ("series", "series_id")):
            batch_op.create_index(
                f"uq_config_{scope}",
                [owner],
                unique=True,
                sqlite_where=sa.text(f"scope = '{scope}'"),
                postgresql_where=sa.text(f"scope = '{scope}'"),
            )

    op.create_table(
        "series_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dates", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("series_conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_series_conflicts_series", ["series_key"], unique=False)

    op.create_table(
        "series_snapshots",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("now", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "series_key"),
    )
    op.create_index(
        "ix_series_snapshots_key_taken", "series_snapshots", ["series_key", "taken_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_series_snapshots_key_taken", table_name="series_snapshots")
    op.drop_table("series_snapshots")
    with op.batch_alter_table("series_conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_series_conflicts_series")

    op.drop_table("series_conflicts")
    with op.batch_alter_table("scheduling_configs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_config_series",
            sqlite_where=sa.text("scope = 'series'"),
            postgresql_where=sa.text("scope = 'series'"),
        )
        batch_op.drop_index(
            "uq_config_branch",
            sqlite_where=sa.text("scope = 'branch'"),
            postgresql_where=sa.text("scope = 'branch'"),
        )
        batch_op.drop_index(
            "uq_config_base",
            sqlite_where=sa.text("scope = 'base'"),
            postgresql_where=sa.text("scope = 'base'"),
        )

    op.drop_table("scheduling_configs")
    op.drop_table("notifications")
    with op.batch_alter_table("generation_log", schema=None) as batch_op:
        batch_op.drop_index("ix_generation_log_series")
        batch_op.drop_index("ix_generation_log_run")

    op.drop_table("generation_log")
    with op.batch_alter_table("class_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_class_sessions_series_key_start")
        batch_op.drop_index("ix_class_sessions_room")
        batch_op.drop_index("ix_class_sessions_instructor")
        batch_op.drop_index("ix_class_sessions_branch_start")

    op.drop_table("class_sessions")
    op.drop_table("class_series")
    op.drop_table("branches")
