"""session_changes, session_overlaps: double bookings kept up to date by what changed

A night's double-booking check used to scan every session of the window. Now
triggers log where ``class_sessions`` changed (per statement and per branch and
room, or instructor: spans of the starts written or removed),
whoever writes, raw SQL and the booking app included, but not an update that
changes nothing a double booking depends on (a booking count); the check
re-examines only those spans and keeps the overlaps it finds in
``session_overlaps``. ``session_overlaps_state``
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
# Days of one group more than this apart are logged as separate spans.
_GAP_DAYS = 7
# The columns a double booking depends on: an update that changes none of them (a
# booking count, ``detached``, a title) is not logged.
_WATCHED = ("id", "branch_id", "room", "instructor", "starts_at", "ends_at", "status",
            "origin_series_id", "series_key", "occurrence_key")


def _log_span(rows: str) -> str:
    """PostgreSQL: log the rows of transition table ``rows`` as one span per group,
    from its first start to its last (the generator inserts and deletes a series'
    sessions in start order, the booking app a few at a time)."""
    return (f"INSERT INTO session_changes ({_CHANGE_COLUMNS}) " + " UNION ALL ".join(
        f"SELECT '{r}', branch_id, {r}, min(starts_at), max(starts_at) FROM {rows} "
        f"WHERE {r} IS NOT NULL GROUP BY branch_id, {r}" for r in _RESOURCES) + ";")


def _log_days(source: str) -> str:
    """PostgreSQL: log the rows of ``source`` (a query with ``branch_id``, ``room``,
    ``instructor`` and ``starts_at``) as day spans per group: the UTC days they start
    on, days at most ``_GAP_DAYS`` apart joined into one span, from the first day's
    midnight to the last one's end (an update may touch sessions all over the year:
    the booking app cancelling some)."""
    days = " UNION ".join(
        f"SELECT '{r}' AS resource, branch_id, {r} AS value, "
        f"(starts_at AT TIME ZONE 'UTC')::date AS day FROM s WHERE {r} IS NOT NULL"
        for r in _RESOURCES)
    group = "PARTITION BY resource, branch_id, value ORDER BY day"
    return (
        f"WITH s AS ({source}), d AS ({days}), "
        f"g AS (SELECT *, CASE WHEN day - lag(day) OVER ({group}) > {_GAP_DAYS} THEN 1 "
        "ELSE 0 END AS gap FROM d), "
        f"i AS (SELECT *, sum(gap) OVER ({group}) AS island FROM g) "
        f"INSERT INTO session_changes ({_CHANGE_COLUMNS}) "
        "SELECT resource, branch_id, value, min(day)::timestamp AT TIME ZONE 'UTC', "
        "(max(day) + 1)::timestamp AT TIME ZONE 'UTC' FROM i "
        "GROUP BY resource, branch_id, value, island;")


def _updated_rows() -> str:
    """PostgreSQL: the old and the new version of each updated row whose watched
    columns changed."""
    old = ", ".join("o." + c for c in _WATCHED)
    new = ", ".join("n." + c for c in _WATCHED)
    return ("SELECT v.branch_id, v.room, v.instructor, v.starts_at "
            "FROM old_rows o FULL JOIN new_rows n ON n.id = o.id CROSS JOIN LATERAL (VALUES "
            "(o.id, o.branch_id, o.room, o.instructor, o.starts_at), "
            "(n.id, n.branch_id, n.room, n.instructor, n.starts_at)"
            ") AS v(id, branch_id, room, instructor, starts_at) "
            f"WHERE v.id IS NOT NULL AND (o.id IS NULL OR n.id IS NULL "
            f"OR ({old}) IS DISTINCT FROM ({new}))")


def _logged_row(row: str) -> str:
    """SQLite: the change rows of one ``NEW`` or ``OLD`` row."""
    return " ".join(
        f"INSERT INTO session_changes ({_CHANGE_COLUMNS}) SELECT '{r}', {row}.branch_id, "
        f"{row}.{r}, {row}.starts_at, {row}.starts_at WHERE {row}.{r} IS NOT NULL;"
        for r in _RESOURCES)


# PostgreSQL: (event, transition tables, the function's name, its statement)
_PG_TRIGGERS = (
    ("INSERT", "NEW TABLE AS new_rows", "seriesgen_log_sessions_inserted",
     _log_span("new_rows")),
    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "seriesgen_log_sessions_updated",
     _log_days(_updated_rows())),
    ("DELETE", "OLD TABLE AS old_rows", "seriesgen_log_sessions_deleted",
     _log_span("old_rows")),
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
        for event, referencing, function, body in _PG_TRIGGERS:
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
    watched_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
    for event, rows, when in (("INSERT", ("NEW",), ""),
                              ("UPDATE", ("OLD", "NEW"), f" WHEN {watched_changed}"),
                              ("DELETE", ("OLD",), "")):
        op.execute(f"CREATE TRIGGER class_sessions_log_{event.lower()} AFTER {event} "
                   f"ON class_sessions FOR EACH ROW{when} "
                   f"BEGIN {' '.join(_logged_row(r) for r in rows)} END")


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
