"""A rerun at the same instant reports what the first run did, and repairs what was
changed by hand.

Contract: when a series' last complete generation was as of this very ``now`` (a
rerun of the night, a crash-recovery rerun, a rerun from the UI) and its row
count holds, the rerun writes nothing, and its outcome (counts, protected rows and
warnings over the whole window, carried from that generation) is the first run's.
A run one day later creates the new day and reports the same warnings. When a row
was deleted by hand, the count no longer holds: the rerun reads the whole window
and puts the row back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

# 2026-03-08 is New York's spring-forward day: 02:30 does not exist there.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NEXT_DAY = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def run(engine: sa.Engine, now: datetime, run_id: str) -> eng.SeriesOutcome:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    (outcome,) = eng.generate(engine, snaps.values(), now=now, run_id=run_id)
    return outcome


def test_a_rerun_at_the_same_instant_reports_what_the_first_run_did(engine):
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14,
                closed_dates=[date(2026, 3, 11)])
    seed_series(engine, "east-night", recurrence="FREQ=DAILY", start_time="02:30")
    first = run(engine, NOW, "run-1")
    # Window 2026-03-02T12:00Z .. 2026-03-16T12:00Z: daily from 03-03 to 03-16 (14
    # local dates), less 03-11 (closed); 03-08 02:30 is shifted to 03:30 EDT.
    assert first.counts() == {"created": 13, "updated": 0, "deleted": 0, "protected": 0}
    codes = {k.code: k.dates for k in first.conflicts}
    assert codes == {"CLOSED_DATE": (date(2026, 3, 11),),
                     "NONEXISTENT_LOCAL_TIME": (date(2026, 3, 8),),
                     "OUTSIDE_BUSINESS_HOURS": ()}
    execute(engine, "UPDATE class_sessions SET booked_count = 2 "
                    "WHERE occurrence_key IN ('2026-03-05', '2026-03-15')")

    again = run(engine, NOW, "run-2")
    assert again.counts() == {"created": 0, "updated": 0, "deleted": 0, "protected": 2}
    assert again.conflicts == first.conflicts

    later = run(engine, NEXT_DAY, "run-3")
    assert later.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 2}
    assert {k.code: k.dates for k in later.conflicts} == codes


def test_a_rerun_after_a_row_was_deleted_by_hand_restores_it(engine):
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "east-night", recurrence="FREQ=DAILY", start_time="18:00")
    assert run(engine, NOW, "run-1").counts()["created"] == 14
    execute(engine, "DELETE FROM class_sessions WHERE occurrence_key = '2026-03-06'")

    again = run(engine, NOW, "run-2")
    assert again.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 0}
