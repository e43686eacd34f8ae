"""A rerun at the same instant reads no session row of a series it finds as its last
generation left it: it only counts them.

Contract: when a series' last complete generation was as of this very ``now`` (a
rerun of the night, a crash-recovery rerun, a rerun from the UI) and its row
count holds, its plan reads none of its rows; its outcome (counts, protected rows
and warnings over the whole window) is the one a run that reads them reports. A
run one day later reads its rows beyond the last window again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def session_row_reads(engine: sa.Engine) -> Iterator[list[str]]:
    """The statements that read whole ``class_sessions`` rows: those whose columns
    hold the rows' occurrence key and booking count (the planner's read)."""
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        text = " ".join(statement.split())
        columns = text.partition(" FROM ")[0]
        if (columns.startswith("SELECT") and "class_sessions.occurrence_key" in columns
                and "class_sessions.booked_count" in columns):
            seen.append(text)

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


def test_a_rerun_at_the_same_instant_counts_the_rows_and_reads_none(engine):
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

    with session_row_reads(engine) as reads:
        again = run(engine, NOW, "run-2")
    assert reads == []
    assert again.counts() == {"created": 0, "updated": 0, "deleted": 0, "protected": 2}
    assert again.conflicts == first.conflicts

    with session_row_reads(engine) as reads:
        later = run(engine, NEXT_DAY, "run-3")
    assert len(reads) == 1  # the rows beyond the last window (none) and of 03-17
    assert later.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 2}
    assert {k.code: k.dates for k in later.conflicts} == codes


def test_a_rerun_after_rows_were_deleted_by_hand_reads_them_and_restores_them(engine):
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "east-night", recurrence="FREQ=DAILY", start_time="18:00")
    assert run(engine, NOW, "run-1").counts()["created"] == 14
    execute(engine, "DELETE FROM class_sessions WHERE occurrence_key = '2026-03-06'")

    with session_row_reads(engine) as reads:
        again = run(engine, NOW, "run-2")
    assert len(reads) == 1  # the count changed: the whole window is read
    assert again.counts() == {"created": 1, "updated": 0, "deleted": 0, "protected": 0}
