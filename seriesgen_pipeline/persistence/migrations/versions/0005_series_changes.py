"""series_changes: a counter the database bumps on every change of a scheduling input

The change sensor compares this one number with the one it saw last instead of
reading every series on every tick. Triggers keep it, so every writer counts,
raw SQL included: inserts, deletes and updates of ``branches``,
``scheduling_configs`` and ``class_series`` (of ``class_series`` every column but
``last_generated_through``, which the generator itself advances).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# ``class_series`` columns whose change is a change of input.
SERIES_INPUT_COLUMNS = (
    "id", "key", "branch_id", "title", "instructor", "room", "capacity", "recurrence",
    "start_time", "duration_minutes", "start_date", "end_date", "exdates", "version",
    "created_at", "updated_at",
)
_BUMP = "UPDATE series_changes SET value = value + 1 WHERE id = 1"


def _watched() -> list[tuple[str, str]]:
    """``(table, the UPDATE event clause)`` of each watched table."""
    return [("branches", "UPDATE"), ("scheduling_configs", "UPDATE"),
            ("class_series", "UPDATE OF " + ", ".join(SERIES_INPUT_COLUMNS))]


def upgrade() -> None:
    op.create_table(
        "series_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO series_changes (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        # Deferred to commit, so the counter row is locked only while committing (no
        # writer waits on it for the length of another's transaction, and no lock
        # cycle can form around it), and bumped once per transaction.
        op.execute(
            "CREATE OR REPLACE FUNCTION seriesgen_bump_series_changes() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF current_setting('seriesgen.changes_bumped', true) IS DISTINCT FROM "
            "txid_current()::text THEN "
            f"{_BUMP}; "
            "PERFORM set_config('seriesgen.changes_bumped', txid_current()::text, true); "
            "END IF; RETURN NULL; END $$")
        for table, update in _watched():
            op.execute(f"CREATE CONSTRAINT TRIGGER {table}_changes AFTER INSERT OR DELETE "
                       f"OR {update} ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                       "EXECUTE FUNCTION seriesgen_bump_series_changes()")
            op.execute(f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION seriesgen_bump_series_changes()")
        return
    for table, update in _watched():  # SQLite: row triggers, one per event
        for event in ("INSERT", "DELETE", update):
            name = f"{table}_changes_{event.split()[0].lower()}"
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                       f"BEGIN {_BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in _watched():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changes ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_truncated ON {table}")
        op.execute("DROP FUNCTION IF EXISTS seriesgen_bump_series_changes()")
    else:
        for table, _ in _watched():
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_changes_{event}")
    op.drop_table("series_changes")
