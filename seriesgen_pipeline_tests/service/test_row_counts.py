"""A series' generation state counts its rows without counting them again.

Contract: after every run, each series' ``generation_state.row_count`` is the number
of its rows starting at or after the state's ``as_of`` (the check that lets the next
run continue or settle the series), whether the run generated it for the first time,
continued it by a day, or reconciled its whole window (an edit, a row deleted by
hand), with rows booked, moved before ``now`` or deleted by other writers. The count
comes from the plan: the run does not count the rows again (no ``UPDATE
generation_state SET row_count`` statement), unless a write did not happen (see
``failure/test_two_writers.py``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    statements,
    wrong_row_counts,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RECOUNT = re.compile(r"UPDATE generation_state SET row_count\s*=\s*\(SELECT count", re.I)


def recounted(sent: list[str]) -> list[str]:
    """Of ``sent``, the statements that count a series' rows again to save its state."""
    return [statement for statement in sent if RECOUNT.search(statement)]


def night(engine: sa.Engine, now: datetime, run_id: str) -> dict[str, dict[str, int]]:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id=run_id)
    assert all(o.status == eng.SUCCESS for o in outcomes), outcomes
    return {o.series_key: o.counts() for o in outcomes}


def as_of(engine: sa.Engine) -> set[datetime]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(repo.state_t.c.as_of)).scalars())


def seed(engine: sa.Engine) -> None:
    seed_base(engine, horizon_days=10)
    # New York leaves EST for EDT on 2026-03-08: 07:00 is 12:00Z before, 11:00Z after.
    seed_branch(engine, "east", timezone="America/New_York")
    seed_series(engine, "daily", recurrence="FREQ=DAILY", start_time="07:00",
                start_date=date(2026, 2, 1))
    seed_series(engine, "weekly", recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR", start_time="18:00",
                start_date=date(2026, 2, 2), room="Loft")


def test_the_count_holds_night_after_night_without_counting_again(engine: sa.Engine) -> None:
    seed(engine)
    with statements(engine) as sent:
        night(engine, NOW, "cold")
    assert (wrong_row_counts(engine), recounted(sent)) == ([], [])

    # The booking app books one session and moves another to before tomorrow's now
    # (03-03 12:00Z); staff delete one by hand. A day later, "weekly" continues its
    # last generation, "daily" (whose rows were changed) is reconciled in full.
    execute(engine, "UPDATE class_sessions SET booked_count = 3 "
                    "WHERE series_key = 'weekly' AND occurrence_key = '2026-03-04'")
    execute(engine, "UPDATE class_sessions SET starts_at = :at "
                    "WHERE series_key = 'daily' AND occurrence_key = '2026-03-05'",
            at=datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    execute(engine, "DELETE FROM class_sessions "
                    "WHERE series_key = 'daily' AND occurrence_key = '2026-03-06'")
    tomorrow = NOW + timedelta(days=1)
    with statements(engine) as sent:
        counts = night(engine, tomorrow, "next-day")
    # daily: the deleted day made again, and 03-13 07:00 EDT (11:00Z) entered the
    # window (it ends 03-13 12:00Z); the row moved before now is past: left alone.
    assert counts["daily"] == {"created": 2, "updated": 0, "deleted": 0, "protected": 0}
    # weekly: nothing entered (Fri 03-13 18:00 EDT is 22:00Z); its booking is protected.
    assert counts["weekly"] == {"created": 0, "updated": 0, "deleted": 0, "protected": 1}
    assert as_of(engine) == {tomorrow}
    assert (wrong_row_counts(engine), recounted(sent)) == ([], [])

    # An edit: "weekly" moves to 19:00, a whole-window reconcile of a series with a
    # booked session; the same night again then settles both.
    execute(engine, "UPDATE class_series SET start_time = '19:00', version = 2 "
                    "WHERE key = 'weekly'")
    with statements(engine) as sent:
        counts = night(engine, tomorrow, "edited")
    assert counts["weekly"]["updated"] > 0
    assert (wrong_row_counts(engine), recounted(sent)) == ([], [])
    with statements(engine) as sent:
        counts = night(engine, tomorrow, "again")
    assert all(c["created"] + c["updated"] + c["deleted"] == 0 for c in counts.values())
    assert (wrong_row_counts(engine), recounted(sent)) == ([], [])
