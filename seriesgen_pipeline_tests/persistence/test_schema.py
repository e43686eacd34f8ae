"""The application schema (SPEC §3) as migrated by Alembic on SQLite and PostgreSQL.

Contract: the tables and columns the SPEC names exist with exactly those names;
the unique key (origin_series_id, occurrence_key) is enforced; a series id is
never reused after its series is deleted; instants come back timezone-aware UTC;
migrating twice is harmless.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import schema_is_current, upgrade_database
from seriesgen_pipeline_tests.builders import execute, seed_branch, seed_series

SPEC_COLUMNS = {
    "branches": {"id", "name"},
    "scheduling_configs": {
        "scope", "branch_id", "series_id", "horizon_days", "timezone",
        "default_duration_minutes", "default_capacity", "open_time", "close_time",
        "closed_dates", "generation_enabled", "cleanup_grace_days", "updated_at"},
    "class_series": {
        "id", "key", "branch_id", "title", "instructor", "room", "capacity", "recurrence",
        "start_time", "duration_minutes", "start_date", "end_date", "exdates", "version",
        "last_generated_through", "created_at", "updated_at"},
    "class_sessions": {
        "id", "series_id", "origin_series_id", "series_key", "occurrence_key", "branch_id",
        "title", "instructor", "room", "capacity", "timezone", "starts_at", "ends_at", "status",
        "detached", "booked_count", "config_hash", "run_id", "created_at", "updated_at"},
    "notifications": {
        "recipient_type", "recipient", "kind", "severity", "series_key", "code", "message",
        "details", "dedupe_key", "created_at"},
    "generation_log": {
        "run_id", "series_key", "status", "started_at", "finished_at", "window_start",
        "window_end", "created", "updated", "deleted", "protected", "error", "config_hash"},
}


def test_tables_and_columns_match_the_spec(engine):
    inspector = sa.inspect(engine)
    for table, columns in SPEC_COLUMNS.items():
        found = {c["name"] for c in inspector.get_columns(table)}
        assert columns <= found, (table, columns - found)
    assert schema_is_current(engine)
    upgrade_database(engine)  # a second upgrade is a no-op
    assert schema_is_current(engine)


def test_occurrence_is_unique(engine):
    seed_branch(engine, "east")
    series_id = seed_series(engine, "a")
    row = ("INSERT INTO class_sessions (series_id, origin_series_id, series_key, occurrence_key,"
           " branch_id, title, capacity, timezone, starts_at, ends_at, created_at, updated_at)"
           " VALUES (:i, :i, 'a', '2026-03-02', 'east', 'A', 5, 'UTC', :s, :e, :s, :s)")
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    params = {"i": series_id, "s": start, "e": datetime(2026, 3, 2, 10, tzinfo=UTC)}
    if engine.dialect.name == "sqlite":
        params = {k: (v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v)
                  for k, v in params.items()}
    execute(engine, row, **params)
    with pytest.raises(sa.exc.IntegrityError):
        execute(engine, row, **params)
    with engine.connect() as conn:
        status, detached, booked = conn.execute(sa.text(
            "SELECT status, detached, booked_count FROM class_sessions")).one()
        starts = conn.execute(sa.select(sa.column("starts_at")).select_from(
            sa.table("class_sessions"))).scalar_one()
    # Defaults for rows written by other applications.
    assert (status, bool(detached), booked) == ("scheduled", False, 0)
    assert starts is not None


def test_series_ids_are_never_reused(engine):
    seed_branch(engine, "east")
    first = seed_series(engine, "first", start_date=date(2026, 1, 5))
    second = seed_series(engine, "second")
    execute(engine, "DELETE FROM class_series WHERE id = :i", i=second)
    third = seed_series(engine, "third")
    assert first < second < third
