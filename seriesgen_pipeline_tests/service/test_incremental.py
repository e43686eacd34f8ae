"""Incremental nights: only the new slice is planned, and nothing drifts.

Contract: when a series and its configuration are unchanged, a run the next day
writes only the sessions that entered the window, and the future rows equal those
of a full generation on a fresh database; a row deleted by hand, a new
time-zone database, or a week without a full reconcile each make the next run
reconcile the whole window; protected counts stay the same either way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    session_rows,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def run(engine: sa.Engine, now: datetime, run_id: str) -> eng.SeriesOutcome:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    return eng.generate(engine, snaps.values(), now=now, run_id=run_id)[0]


def seed(engine: sa.Engine) -> None:
    seed_base(engine, horizon_days=10)
    seed_branch(engine, "east", timezone="America/New_York")
    seed_series(engine, "daily", recurrence="FREQ=DAILY", start_time="07:00",
                start_date=date(2026, 2, 1))


def future(rows: list[dict], since: datetime) -> list[tuple]:
    return [(r["occurrence_key"], r["starts_at"], r["room"], r["status"]) for r in rows
            if r["starts_at"] >= since]


def test_next_day_writes_only_the_new_day_and_matches_a_fresh_database(engine, tmp_path):
    seed(engine)
    run(engine, NOW, "night-1")
    execute(engine, "UPDATE class_sessions SET booked_count = 2 "
                    "WHERE occurrence_key = '2026-03-05'")
    tomorrow = NOW + timedelta(days=1)
    outcome = run(engine, tomorrow, "night-2")
    # 03-12 07:00 EDT = 11:00Z enters the window (ends 03-13 12:00Z); nothing else changes.
    assert outcome.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 1}
    fresh = create_db_engine(f"sqlite:///{tmp_path}/fresh.db")
    upgrade_database(fresh)
    seed(fresh)
    run(fresh, tomorrow, "fresh")
    execute(fresh, "UPDATE class_sessions SET booked_count = 2 "
                   "WHERE occurrence_key = '2026-03-05'")
    assert future(session_rows(engine), tomorrow) == future(session_rows(fresh), tomorrow)
    assert run(engine, tomorrow, "night-2-again").counts() == {
        "created": 0, "updated": 0, "deleted": 0, "protected": 1}


def test_row_deleted_by_hand_is_recreated(engine):
    seed(engine)
    run(engine, NOW, "night-1")
    execute(engine, "DELETE FROM class_sessions WHERE occurrence_key = '2026-03-06'")
    outcome = run(engine, NOW + timedelta(days=1), "night-2")
    assert outcome.created == 2  # the deleted day and the new day
    keys = [r["occurrence_key"] for r in session_rows(engine)]
    assert "2026-03-06" in keys


def test_new_timezone_database_reconciles_everything(engine):
    seed(engine)
    run(engine, NOW, "night-1")
    # A stray edit the incremental path does not look at...
    execute(engine, "UPDATE class_sessions SET room = 'Wrong' "
                    "WHERE occurrence_key = '2026-03-06'")
    run(engine, NOW + timedelta(days=1), "night-2")
    assert {r["room"] for r in session_rows(engine) if r["occurrence_key"] == "2026-03-06"} == {
        "Wrong"}
    # ...is repaired once the time-zone database differs from the one last used.
    execute(engine, "UPDATE generation_state SET tz_version = 'older'")
    outcome = run(engine, NOW + timedelta(days=1), "night-2b")
    assert outcome.updated == 1
    assert {r["room"] for r in session_rows(engine)} == {"Studio 2"}


def test_weekly_full_reconcile(engine):
    seed(engine)
    run(engine, NOW, "night-1")
    execute(engine, "UPDATE class_sessions SET room = 'Wrong' "
                    "WHERE occurrence_key = '2026-03-10'")
    outcome = run(engine, NOW + timedelta(days=7), "week-later")
    assert outcome.updated == 1
    assert {r["room"] for r in session_rows(engine)} == {"Studio 2"}
