"""Generation on real databases (SQLite file and PostgreSQL): SPEC §5.

Contract: a second run at the same ``now`` writes nothing and leaves identical
rows; edits (time, room, rule; by raw SQL without a version bump) reach future
unprotected sessions; booked, detached and cancelled sessions and past sessions
are never touched and never duplicated; a broken series fails alone; an ended
series is retired with every session kept.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    session_rows,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday


def run(engine: sa.Engine, now: datetime = NOW, run_id: str = "run-1",
        chunk_rows: int = 2000) -> dict[str, eng.SeriesOutcome]:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id=run_id,
                            settings=eng.EngineSettings(chunk_rows=chunk_rows))
    generated = [o.series_key for o in outcomes if o.status == eng.SUCCESS]
    eng.retire(engine, snaps.values(), now=now, generated=generated)
    return {o.series_key: o for o in outcomes}


def seed_yoga(engine: sa.Engine) -> int:
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    return seed_series(engine, "east-yoga")


def test_first_run_creates_the_window_and_second_run_writes_nothing(engine):
    seed_yoga(engine)
    first = run(engine)["east-yoga"]
    # Window 2026-03-02T12:00Z .. 2026-03-16T12:00Z; Mondays and Wednesdays 18:00 New York.
    rows = session_rows(engine)
    assert [r["occurrence_key"] for r in rows] == [
        "2026-03-02", "2026-03-04", "2026-03-09", "2026-03-11"]
    # 18:00 EST is 23:00Z before 2026-03-08, 18:00 EDT is 22:00Z after.
    assert [r["starts_at"] for r in rows] == [
        datetime(2026, 3, 2, 23, 0, tzinfo=UTC), datetime(2026, 3, 4, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 22, 0, tzinfo=UTC), datetime(2026, 3, 11, 22, 0, tzinfo=UTC)]
    assert rows[0]["ends_at"] == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert first.counts() == {"created": 4, "updated": 0, "deleted": 0, "protected": 0}
    with engine.connect() as conn:
        full = conn.execute(sa.select(repo.sessions_t).order_by(repo.sessions_t.c.id)).all()
    second = run(engine, run_id="run-2")["east-yoga"]
    assert second.counts() == {"created": 0, "updated": 0, "deleted": 0, "protected": 0}
    with engine.connect() as conn:
        again = conn.execute(sa.select(repo.sessions_t).order_by(repo.sessions_t.c.id)).all()
    assert again == full  # every column, audit columns included: nothing was rewritten


def test_watermark_reaches_the_window_end(engine):
    seed_yoga(engine)
    run(engine, chunk_rows=1)
    with engine.connect() as conn:
        mark = conn.execute(sa.select(repo.series_t.c.last_generated_through)).scalar_one()
    assert mark == datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def test_small_chunks_give_the_same_rows_as_one_chunk(engine, tmp_path):
    seed_yoga(engine)
    run(engine, chunk_rows=1)
    chunked = session_rows(engine)
    execute(engine, "DELETE FROM class_sessions")
    run(engine, chunk_rows=5000)
    assert session_rows(engine) == chunked


def test_raw_sql_time_edit_reaches_future_unprotected_sessions_only(engine):
    series_id = seed_yoga(engine)
    run(engine)
    # A member books 2026-03-04, staff detach 2026-03-09, staff cancel 2026-03-11.
    execute(engine, "UPDATE class_sessions SET booked_count = 3 "
                    "WHERE occurrence_key = '2026-03-04'")
    execute(engine, "UPDATE class_sessions SET detached = :t, room = 'Hall' "
                    "WHERE occurrence_key = '2026-03-09'", t=True)
    execute(engine, "UPDATE class_sessions SET status = 'cancelled' "
                    "WHERE occurrence_key = '2026-03-11'")
    # Edit by raw SQL: neither version nor updated_at changes.
    execute(engine, "UPDATE class_series SET start_time = '19:30', room = 'Studio 9' WHERE id = :i",
            i=series_id)
    later = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 2026-03-02's session is now past
    outcome = run(engine, now=later, run_id="run-2")["east-yoga"]
    rows = {r["occurrence_key"]: r for r in session_rows(engine)}
    assert rows["2026-03-02"]["starts_at"] == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # past
    assert rows["2026-03-02"]["room"] == "Studio 2"
    assert rows["2026-03-04"]["starts_at"] == datetime(2026, 3, 4, 23, 0, tzinfo=UTC)  # booked
    assert rows["2026-03-09"]["room"] == "Hall"  # detached
    assert rows["2026-03-11"]["status"] == "cancelled"
    assert rows["2026-03-11"]["starts_at"] == datetime(2026, 3, 11, 22, 0, tzinfo=UTC)
    # New window 03-03 12:00Z .. 03-17 12:00Z: 03-16 is new, created at 19:30 EDT = 23:30Z.
    assert rows["2026-03-16"]["starts_at"] == datetime(2026, 3, 16, 23, 30, tzinfo=UTC)
    assert rows["2026-03-16"]["room"] == "Studio 9"
    assert len(rows) == 5
    assert outcome.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 3}


def test_time_edit_updates_in_place(engine):
    series_id = seed_yoga(engine)
    run(engine)
    before = {r["occurrence_key"]: r for r in session_rows(engine)}
    execute(engine, "UPDATE class_series SET start_time = '07:15' WHERE id = :i", i=series_id)
    outcome = run(engine, run_id="run-2")["east-yoga"]
    after = {r["occurrence_key"]: r for r in session_rows(engine)}
    assert set(before) == {"2026-03-02", "2026-03-04", "2026-03-09", "2026-03-11"}
    # 2026-03-16 07:15 EDT = 11:15Z now falls inside the window (ends 12:00Z): created.
    assert set(after) == set(before) | {"2026-03-16"}
    # 2026-03-02 07:15 EST = 12:15Z is after now (12:00Z): kept and moved.
    assert after["2026-03-02"]["starts_at"] == datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    assert after["2026-03-09"]["starts_at"] == datetime(2026, 3, 9, 11, 15, tzinfo=UTC)
    assert outcome.counts() == {"created": 1, "updated": 4, "deleted": 0, "protected": 0}


def test_rule_edit_deletes_and_creates(engine):
    series_id = seed_yoga(engine)
    run(engine)
    execute(engine, "UPDATE class_sessions SET booked_count = 1 "
                    "WHERE occurrence_key = '2026-03-04'")
    execute(engine, "UPDATE class_series SET recurrence = 'FREQ=WEEKLY;BYDAY=TU' WHERE id = :i",
            i=series_id)
    outcome = run(engine, run_id="run-2")["east-yoga"]
    keys = [r["occurrence_key"] for r in session_rows(engine)]
    assert keys == ["2026-03-03", "2026-03-04", "2026-03-10"]  # booked Wednesday survives
    assert outcome.counts() == {"created": 2, "updated": 0, "deleted": 3, "protected": 1}


def test_branch_config_edit_changes_timezone_of_future_sessions(engine):
    seed_yoga(engine)
    run(engine)
    execute(engine, "UPDATE scheduling_configs SET timezone = 'Europe/London' "
                    "WHERE scope = 'branch'")
    run(engine, run_id="run-2")
    rows = session_rows(engine)
    assert {r["timezone"] for r in rows} == {"Europe/London"}
    assert rows[0]["starts_at"] == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_broken_series_fails_alone(engine):
    seed_yoga(engine)
    seed_series(engine, "east-broken", recurrence="FREQ=YEARLY")
    seed_series(engine, "nowhere", branch="atlantis")
    outcomes = run(engine)
    assert outcomes["east-yoga"].status == "success"
    assert outcomes["east-broken"].status == "failed"
    assert "FREQ=YEARLY" in (outcomes["east-broken"].error or "")
    assert outcomes["nowhere"].status == "failed"
    assert "atlantis" in (outcomes["nowhere"].error or "")
    assert {r["series_key"] for r in session_rows(engine)} == {"east-yoga"}
    with engine.connect() as conn:
        logged = dict(conn.execute(sa.select(repo.log_t.c.series_key, repo.log_t.c.status)).all())
    assert logged == {"east-yoga": "success", "east-broken": "failed", "nowhere": "failed"}


def test_generation_disabled_is_skipped(engine):
    seed_base(engine)
    seed_branch(engine, "east")
    seed_series(engine, "off", config={"generation_enabled": False})
    assert run(engine)["off"].status == "skipped"
    assert session_rows(engine) == []


def test_incomplete_base_stops_every_series(engine):
    seed_base(engine, close_time=None)
    seed_branch(engine, "east")
    seed_series(engine, "a")
    outcome = run(engine)["a"]
    assert outcome.status == "failed"
    assert "close_time" in (outcome.error or "") and "base" in (outcome.error or "")


def test_retirement_keeps_sessions_and_drops_series_and_its_config(engine):
    seed_base(engine)
    seed_branch(engine, "east")
    series_id = seed_series(engine, "short", recurrence="FREQ=DAILY", start_date=date(2026, 3, 2),
                            end_date=date(2026, 3, 4), config={"horizon_days": 7})
    run(engine)  # 03-02 18:00Z, 03-03, 03-04 created
    assert len(session_rows(engine, "short")) == 3
    after_end = datetime(2026, 3, 5, 0, 30, tzinfo=UTC)
    run(engine, now=after_end, run_id="run-2")
    rows = session_rows(engine, "short")
    assert [r["occurrence_key"] for r in rows] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert {r["series_id"] for r in rows} == {None}
    assert {r["origin_series_id"] for r in rows} == {series_id}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(repo.series_t)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(repo.configs_t)
                            .where(repo.configs_t.c.scope == "series")).scalar() == 0


def test_grace_days_delay_retirement(engine):
    seed_base(engine, cleanup_grace_days=2)
    seed_branch(engine, "east")
    seed_series(engine, "short", recurrence="FREQ=DAILY", start_date=date(2026, 3, 2),
                end_date=date(2026, 3, 4))
    run(engine)
    run(engine, now=datetime(2026, 3, 6, 12, 0, tzinfo=UTC), run_id="run-2")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(repo.series_t)).scalar() == 1
    run(engine, now=datetime(2026, 3, 7, 0, 30, tzinfo=UTC), run_id="run-3")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(repo.series_t)).scalar() == 0
    assert len(session_rows(engine, "short")) == 3
