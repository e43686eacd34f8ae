"""Run records stay bounded: ``SERIESGEN_RETENTION_DAYS`` of them per series.

Nights run through Dagster (``run_generation``, as ``seriesgen generate``); between
two nights every stored stamp is moved one day back, as if the nights were a day
apart. With a retention of 3 days, after every night each series holds exactly
3 ``generation_log`` rows (ages 0, 1 and 2 days) and ``generation_runs`` 3 runs,
however many nights ran. A snapshot is stored only when the series changed:
east-barre, retitled every night, holds 3 (ages 0, 1 and 2 days), the others only
their latest, however old; the notification of a double booking is kept while the
booking is current, however old, and pruned once it is gone and older than the
retention.
Real SQLite and PostgreSQL databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.defs.launch import run_generation
from seriesgen_pipeline.service.settings import Settings
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

FIRST_NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NIGHTS = 7
ROOM_CHANGED_BEFORE_NIGHT = 3
STAMPS = {"series_snapshots": "taken_at", "generation_log": "started_at",
          "notifications": "created_at", "generation_runs": "started_at"}


def age_by_one_day(engine: sa.Engine) -> None:
    for table, column in STAMPS.items():
        if engine.dialect.name == "postgresql":
            execute(engine, f"UPDATE {table} SET {column} = {column} - interval '1 day'")
        else:
            execute(engine, f"UPDATE {table} SET {column} = "
                            f"strftime('%Y-%m-%d %H:%M:%f', {column}, '-1 day')")


def per_series(engine: sa.Engine, table: str) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            f"SELECT series_key, count(*) FROM {table} GROUP BY series_key")).all())


def test_records_are_kept_for_the_retention_only(engine: sa.Engine, db_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York")
    # east-yoga and east-spin share Studio 2 at the same hour: a double booking.
    seed_series(engine, "east-yoga")
    seed_series(engine, "east-spin", instructor="Ben")
    seed_series(engine, "east-barre", room="Studio 3", instructor="Cleo")
    settings = Settings(database_url=db_url, notify_recipient="admin@example.com",
                        retention_days=3)

    for night in range(NIGHTS):
        if night == ROOM_CHANGED_BEFORE_NIGHT:
            execute(engine, "UPDATE class_series SET room = 'Studio 4' WHERE key = 'east-spin'")
        execute(engine, "UPDATE class_series SET title = :title WHERE key = 'east-barre'",
                title=f"Barre, week night {night}")
        report = run_generation(engine, settings, keys=None,
                                now=FIRST_NIGHT + timedelta(days=night))
        assert not report.failed, report.series

        nights_kept = min(night + 1, 3)
        # east-spin's snapshot of night 0, 3 days old on night 3, is pruned once the
        # new one is stored; east-yoga's is its latest and stays, however old.
        assert per_series(engine, "series_snapshots") == {
            "east-yoga": 1, "east-spin": 1, "east-barre": nights_kept}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM generation_runs")
                                ).scalar_one() == nights_kept
        assert per_series(engine, "generation_log") == {
            "east-yoga": nights_kept, "east-spin": nights_kept, "east-barre": nights_kept}
        notified = per_series(engine, "notifications")
        if night < ROOM_CHANGED_BEFORE_NIGHT:
            # The booking is current: its notifications stay, the oldest 3 days old too.
            assert notified.get("east-yoga", 0) >= 1 and notified.get("east-spin", 0) >= 1
        age_by_one_day(engine)

    # Gone since night 3 and every notification of it now older than 3 days.
    assert per_series(engine, "notifications") == {}


@pytest.mark.postgres
def test_the_prune_compiles_nothing_and_leaves_the_session_as_it_was(pg_engine: sa.Engine
                                                                     ) -> None:
    """On PostgreSQL the prune's deletes run without JIT compilation (their estimates
    pass ``jit_above_cost`` while they touch few rows), for its own transaction only."""
    from seriesgen_pipeline.persistence import repository as repo

    with pg_engine.connect() as conn:
        before = conn.execute(sa.text("SHOW jit")).scalar_one()
        conn.rollback()
        with conn.begin():
            repo.prune_run_records(conn, series_keys=["a", "b"], before=FIRST_NIGHT)
            assert conn.execute(sa.text("SHOW jit")).scalar_one() == "off"
        assert conn.execute(sa.text("SHOW jit")).scalar_one() == before
