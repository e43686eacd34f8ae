"""A rerun at the same instant decides for all its series at once that they are settled.

Contract (``planning.settle``): a series whose last complete generation was as of
this very ``now``, covers its window, and whose rows are as that generation left
them, takes no batch: no lock, no per-batch read, no write. So the statements a
rerun of a night sends do not grow with the number of its batches, and a series
that is not settled (a row deleted by hand, an edit) is still planned and written.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    statements,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# Two series a batch: twelve series are six batches.
SETTINGS = eng.EngineSettings(batch_series=2)


def run(engine: sa.Engine, now: datetime, run_id: str,
        keys: list[str] | None = None) -> dict[str, eng.SeriesOutcome]:
    snaps = eng.take_snapshots(engine, keys=keys, now=now, run_id=run_id)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id=run_id, settings=SETTINGS)
    return {o.series_key: o for o in outcomes}


def seed(engine: sa.Engine, count: int) -> list[str]:
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    keys = [f"east-{index:02d}" for index in range(count)]
    for index, key in enumerate(keys):
        seed_series(engine, key, recurrence="FREQ=DAILY", start_time="18:00",
                    room=f"Room {index}")
    return keys


def rerun(engine: sa.Engine, keys: list[str], run_id: str) -> list[str]:
    """The statements of a rerun of ``keys`` at ``NOW``, which writes nothing."""
    with statements(engine) as sent:
        again = run(engine, NOW, run_id, keys)
    assert sorted(again) == sorted(keys)
    for outcome in again.values():
        assert outcome.counts() == {"created": 0, "updated": 0, "deleted": 0, "protected": 0}
        assert str(outcome.status) == "success"
    return sent


def test_a_rerun_sends_as_many_statements_for_twelve_series_as_for_two(
        engine: sa.Engine) -> None:
    keys = seed(engine, 12)
    first = run(engine, NOW, "run-1")
    assert {o.counts()["created"] for o in first.values()} == {14}  # daily, 14-day horizon

    two = rerun(engine, keys[:2], "run-2")  # one batch
    twelve = rerun(engine, keys, "run-3")  # six batches

    assert len(twelve) == len(two), (two, twelve)
    # No series lock is taken (on PostgreSQL), and no session row is written.
    assert not [s for s in twelve if "count(pg_advisory_lock" in s]
    assert not [s for s in twelve if s.lstrip().upper().startswith(
        ("INSERT INTO CLASS_SESSIONS", "UPDATE CLASS_SESSIONS", "DELETE FROM CLASS_SESSIONS"))]


def test_a_series_not_settled_is_still_planned_and_written(engine: sa.Engine) -> None:
    seed(engine, 3)
    run(engine, NOW, "run-1")
    execute(engine, "DELETE FROM class_sessions WHERE series_key = 'east-01' "
                    "AND occurrence_key = '2026-03-06'")
    execute(engine, "UPDATE class_sessions SET booked_count = 1 WHERE series_key = 'east-02' "
                    "AND occurrence_key IN ('2026-03-04', '2026-03-10', '2026-03-12')")
    execute(engine, "UPDATE class_series SET start_time = '19:00' WHERE key = 'east-00'")

    again = run(engine, NOW, "run-2")

    # east-00 edited: its 14 future sessions move to 19:00.
    assert again["east-00"].counts() == {"created": 0, "updated": 14, "deleted": 0,
                                         "protected": 0}
    # east-01 lost a row by hand: it is put back.
    assert again["east-01"].counts() == {"created": 1, "updated": 0, "deleted": 0,
                                         "protected": 0}
    # east-02 is settled; its three booked sessions are counted as protected.
    assert again["east-02"].counts() == {"created": 0, "updated": 0, "deleted": 0,
                                         "protected": 3}
    with engine.connect() as conn:
        starts = conn.execute(sa.text(
            "SELECT starts_at FROM class_sessions WHERE series_key = 'east-00' "
            "AND occurrence_key = '2026-03-10'")).scalar_one()
    # 2026-03-10 19:00 in New York (EDT since 03-08) is 23:00 UTC.
    assert str(starts).startswith("2026-03-10 23:00:00")
