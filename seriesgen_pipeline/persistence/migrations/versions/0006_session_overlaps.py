"""session_changes, session_overlaps: double bookings kept up to date by what changed

A night's double-booking check used to scan every session of the window. Now
triggers log where ``class_sessions`` changed (per statement and per branch and
room, or instructor: the span of the starts written or removed), whoever writes,
raw SQL and the booking app included; the check re-examines only those spans and
keeps the overlaps it finds in ``session_overlaps``. ``session_overlaps_state``
says when every session was last scanned: never, until the first check, since
the sessions written before this revision were not logged.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_RESOURCES = ("room", "instructor")
_CHANGE_COLUMNS = "resource, branch_id, value, low, high"


def _logged_from(rows: str) -> str:
    """PostgreSQL: the change rows of a statement's transition table ``rows``."""
    return " UNION ALL ".join(
        f"SELECT '{r}', branch_id, {r}, min(starts_at), max(starts_at) FROM {rows} "
        f"WHERE {r} IS NOT NULL GROUP BY branch_id, {r}" for r in _RESOURCES)


def _logged_row(row: str) -> str:
    """SQLite: the change rows of one ``NEW`` or ``OLD`` row."""
    return " ".join(
        f"INSERT INTO session_changes ({_CHANGE_COLUMNS}) SELECT '{r}', {row}.branch_id, "
        f"{row}.{r}, {row}.starts_at, {row}.starts_at WHERE {row}.{r} IS NOT NULL;"
        for r in _RESOURCES)


# PostgreSQL: (event, transition tables, the function's name, the tables it reads)
_PG_TRIGGERS = (
    ("INSERT", "NEW TABLE AS new_rows", "seriesgen_log_sessions_inserted", ("new_rows",)),
    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "seriesgen_log_sessions_updated",
     ("old_rows", "new_rows")),
    ("DELETE", "OLD TABLE AS old_rows", "seriesgen_log_sessions_deleted", ("old_rows",)),
)


def upgrade() -> None:
    op.create_table(
        "session_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("low", sa.DateTime(timezone=True), nullable=True),
        sa.Column("high", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "session_overlaps",
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("a_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("b_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("a_series_id", sa.Integer(), nullable=False),
        sa.Column("b_series_id", sa.Integer(), nullable=False),
        sa.Column("a_series_key", sa.String(length=200), nullable=False),
        sa.Column("b_series_key", sa.String(length=200), nullable=False),
        sa.Column("a_occurrence", sa.String(length=10), nullable=False),
        sa.Column("b_occurrence", sa.String(length=10), nullable=False),
        sa.Column("a_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("b_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("resource", "a_id", "b_id"),
    )
    op.create_index("ix_session_overlaps_group", "session_overlaps",
                    ["resource", "branch_id", "value"])
    op.create_index("ix_session_overlaps_a_series", "session_overlaps", ["a_series_id"])
    op.create_index("ix_session_overlaps_b_series", "session_overlaps", ["b_series_id"])
    op.create_table(
        "session_overlaps_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("full_scan_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO session_overlaps_state (id, full_scan_at) VALUES (1, NULL)")
    if op.get_bind().dialect.name == "postgresql":
        # Statement triggers: one aggregate per statement (a COPY of thousands of rows
        # logs a row per group), appended, so concurrent writers never wait on each other.
        for event, referencing, function, tables in _PG_TRIGGERS:
            body = " ".join(f"INSERT INTO session_changes ({_CHANGE_COLUMNS}) "
                            f"{_logged_from(t)};" for t in tables)
            op.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
                       f"LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$")
            op.execute(f"CREATE TRIGGER class_sessions_log_{event.lower()} AFTER {event} "
                       f"ON class_sessions REFERENCING {referencing} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {function}()")
        # TRUNCATE has no rows to log: the next check scans everything.
        op.execute("CREATE OR REPLACE FUNCTION seriesgen_sessions_truncated() RETURNS trigger "
                   "LANGUAGE plpgsql AS $$ BEGIN "
                   "UPDATE session_overlaps_state SET full_scan_at = NULL WHERE id = 1; "
                   "RETURN NULL; END $$")
        op.execute("CREATE TRIGGER class_sessions_log_truncate AFTER TRUNCATE ON class_sessions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION seriesgen_sessions_truncated()")
        return
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        op.execute(f"CREATE TRIGGER class_sessions_log_{event.lower()} AFTER {event} "
                   f"ON class_sessions BEGIN {' '.join(_logged_row(r) for r in rows)} END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in ("insert", "update", "delete", "truncate"):
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS class_sessions_log_{event} ON class_sessions")
        elif event != "truncate":
            op.execute(f"DROP TRIGGER IF EXISTS class_sessions_log_{event}")
    if postgres:
        for _, _, function, _ in _PG_TRIGGERS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        op.execute("DROP FUNCTION IF EXISTS seriesgen_sessions_truncated()")
    op.drop_table("session_overlaps_state")
    op.drop_index("ix_session_overlaps_b_series", table_name="session_overlaps")
    op.drop_index("ix_session_overlaps_a_series", table_name="session_overlaps")
    op.drop_index("ix_session_overlaps_group", table_name="session_overlaps")
    op.drop_table("session_overlaps")
    op.drop_table("session_changes")
