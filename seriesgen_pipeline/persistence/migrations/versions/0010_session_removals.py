"""session_removals: a session leaving the double bookings is logged by its id

A session in no double booking any more (deleted, or no longer scheduled: the
booking app cancelling it) can only take its own pairs with it: no other pair
depends on it. The triggers of migration 0006 logged it as a span of its day in
its groups, and the refresh scanned every session around that day again; the
booking app's cancellations, spread over the year, cost a night more of that
scan than its own writes did. Now:

- a deleted row logs its id in ``session_removals``;
- an updated row that changed what a double booking depends on logs its id there
  (its pairs as they were go), and, only when it is scheduled now, the span of
  its new version as before (its pairs as they are now are looked for);
- an inserted row logs its span as before.

The refresh deletes the stored pairs of the logged ids (through two new indexes,
one per side) before it re-examines the logged spans.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _migration_0006() -> ModuleType:
    """The triggers' definitions of migration 0006 (their update logs the day spans)."""
    path = Path(__file__).with_name("0006_session_overlaps.py")
    spec = importlib.util.spec_from_file_location("seriesgen_migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0006 = _migration_0006()
_WATCHED = _0006._WATCHED
# SQLite: the watched columns of the updated row changed.
_SQLITE_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
_UPDATED = "seriesgen_log_sessions_updated"
_DELETED = "seriesgen_log_sessions_deleted"


def _changed(old: str, new: str) -> str:
    """SQL: the watched columns of ``old`` and ``new`` differ."""
    return (f"({', '.join(f'{old}.{c}' for c in _WATCHED)}) IS DISTINCT FROM "
            f"({', '.join(f'{new}.{c}' for c in _WATCHED)})")


# PostgreSQL: (function, statement) of the update and delete triggers.
_PG_BODIES = (
    (_UPDATED,
     "INSERT INTO session_removals (session_id) SELECT o.id FROM old_rows o "
     f"LEFT JOIN new_rows n ON n.id = o.id WHERE n.id IS NULL OR {_changed('o', 'n')}; "
     + _0006._log_days(
         "SELECT n.branch_id, n.room, n.instructor, n.starts_at FROM new_rows n "
         "LEFT JOIN old_rows o ON o.id = n.id "
         f"WHERE n.status = 'scheduled' AND (o.id IS NULL OR {_changed('o', 'n')})")),
    (_DELETED, "INSERT INTO session_removals (session_id) SELECT id FROM old_rows;"),
)


def _replace_function(function: str, body: str) -> None:
    # JIT off as migration 0009 set it (a replaced function keeps no setting of its own).
    op.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
               f"SET jit = off AS $$ BEGIN {body} RETURN NULL; END $$")


def _sqlite_triggers() -> tuple[str, str]:
    """SQLite: the update and delete triggers, a row at a time."""
    spans = " ".join(
        "INSERT INTO session_changes (resource, branch_id, value, low, high) "
        f"SELECT '{r}', NEW.branch_id, NEW.{r}, NEW.starts_at, NEW.starts_at "
        f"WHERE NEW.{r} IS NOT NULL AND NEW.status = 'scheduled';" for r in _0006._RESOURCES)
    removal = "INSERT INTO session_removals (session_id) VALUES (OLD.id);"
    return (
        "CREATE TRIGGER class_sessions_log_update AFTER UPDATE ON class_sessions "
        f"FOR EACH ROW WHEN {_SQLITE_CHANGED} BEGIN {removal} {spans} END",
        "CREATE TRIGGER class_sessions_log_delete AFTER DELETE ON class_sessions "
        f"FOR EACH ROW BEGIN {removal} END",
    )


def upgrade() -> None:
    op.create_table(
        "session_removals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_session_overlaps_a_id", "session_overlaps", ["a_id"])
    op.create_index("ix_session_overlaps_b_id", "session_overlaps", ["b_id"])
    if op.get_bind().dialect.name == "postgresql":
        for function, body in _PG_BODIES:
            _replace_function(function, body)
        return
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS class_sessions_log_{event}")
    for trigger in _sqlite_triggers():
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for _, _, function, body in _0006._PG_TRIGGERS:
            if function in (_UPDATED, _DELETED):
                _replace_function(function, body)
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS class_sessions_log_{event}")
        for event, rows, when in (("UPDATE", ("OLD", "NEW"), f" WHEN {_SQLITE_CHANGED}"),
                                  ("DELETE", ("OLD",), "")):
            op.execute(f"CREATE TRIGGER class_sessions_log_{event.lower()} AFTER {event} "
                       f"ON class_sessions FOR EACH ROW{when} "
                       f"BEGIN {' '.join(_0006._logged_row(r) for r in rows)} END")
    op.drop_index("ix_session_overlaps_b_id", table_name="session_overlaps")
    op.drop_index("ix_session_overlaps_a_id", table_name="session_overlaps")
    op.drop_table("session_removals")
