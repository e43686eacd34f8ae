"""Incremental nights report exactly what a full reconcile reports.

Contract: on a night when a series continues its last complete generation, the
engine expands only the occurrences beyond that generation; its sessions, its
counters and its warnings (with their affected dates, over the whole window)
are exactly those of a run that expands and reconciles the whole window.

Two databases get the same data and the same nights (every day for six weeks
across three DST changes, with reruns, skipped days, a booking and closed dates
entering and leaving the window, an edit that leaves a booked session no longer
wanted behind): database A runs as production does; database
B has its ``generation_state`` wiped before every night, so each of its runs is a
full reconcile. After every night the outcomes, ``series_conflicts`` and
``class_sessions`` of A and B are compared, and A is shown to have taken the
incremental path on most nights.

The DST changes met (local dates): New York springs forward 2026-03-08 (02:30
does not exist), London 2026-03-29 (01:30 does not exist), Sydney falls back
2026-04-05 (02:30 happens twice).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    session_rows,
)

FIRST = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Days after FIRST: mostly one a day, two reruns of a night, and a few skipped days.
NIGHTS = [0, 1, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23,
          24, 25, 26, 27, 28, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 40, 41, 42]


def seed(engine: sa.Engine) -> None:
    seed_base(engine, horizon_days=14, closed_dates=[date(2026, 4, 3)])
    seed_branch(engine, "ny", timezone="America/New_York",
                closed_dates=[date(2026, 3, 10), date(2026, 3, 20)])
    seed_branch(engine, "ldn", timezone="Europe/London", open_time="07:00")
    seed_branch(engine, "syd", timezone="Australia/Sydney", open_time="00:00")
    start = date(2026, 2, 1)
    seed_series(engine, "ny-gap", branch="ny", recurrence="FREQ=DAILY", start_time="02:30",
                start_date=start, room="R1", instructor="A")
    seed_series(engine, "ny-closed", branch="ny", recurrence="FREQ=DAILY", start_time="10:00",
                start_date=start, room="R2", instructor="B",
                exdates=[date(2026, 3, 15), date(2026, 3, 25)])
    seed_series(engine, "ny-early", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR",
                start_time="05:00", start_date=start, room="R3", instructor="C")
    seed_series(engine, "ny-monthly", branch="ny", recurrence="FREQ=MONTHLY;BYDAY=-1FR",
                start_time="18:00", start_date=start, room="R4", instructor="D")
    seed_series(engine, "ny-count", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=TU;COUNT=6",
                start_time="09:00", start_date=date(2026, 3, 1), room="R5", instructor="E")
    seed_series(engine, "ldn-gap", branch="ldn", recurrence="FREQ=DAILY", start_time="01:30",
                start_date=start, room="L1", instructor="F")
    seed_series(engine, "ldn-ends", branch="ldn", recurrence="FREQ=DAILY;INTERVAL=2",
                start_time="08:00", start_date=start, end_date=date(2026, 3, 31),
                room="L2", instructor="G")
    seed_series(engine, "syd-fold", branch="syd", recurrence="FREQ=DAILY", start_time="02:30",
                start_date=start, room="S1", instructor="H")
    # Every date an exdate: NO_OCCURRENCES on every night.
    seed_series(engine, "ny-none", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=2",
                start_time="11:00", start_date=date(2026, 3, 2), room="R6", instructor="I",
                exdates=[date(2026, 3, 2), date(2026, 3, 9)])


def night(engine: sa.Engine, now: datetime, run_id: str) -> dict[str, tuple[Any, ...]]:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id=run_id)
    return {o.series_key: (o.status, o.error, o.counts()) for o in outcomes}


def conflicts(engine: sa.Engine) -> list[tuple[Any, ...]]:
    t = repo.conflicts_t
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.series_key, t.c.code, t.c.severity, t.c.message,
                                      t.c.dates, t.c.details)).all()
    return sorted((r[0], r[1], r[2], r[3], tuple(r[4]), repr(sorted((r[5] or {}).items())))
                  for r in rows)


def reconciled_at(engine: sa.Engine) -> set[datetime]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(repo.state_t.c.reconciled_at)).scalars())


def series_reconciled_at(engine: sa.Engine, key: str) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.select(repo.state_t.c.reconciled_at)
                            .join(repo.series_t, repo.series_t.c.id == repo.state_t.c.series_id)
                            .where(repo.series_t.c.key == key)).scalar_one()


def test_incremental_nights_match_full_reconciles(tmp_path: Path) -> None:
    engines = []
    for name in ("incremental", "full"):
        engine = create_db_engine(f"sqlite:///{tmp_path}/{name}.db")
        upgrade_database(engine)
        seed(engine)
        engines.append(engine)
    a, b = engines
    incremental_nights = 0
    try:
        for number, days in enumerate(NIGHTS):
            now = FIRST + timedelta(days=days)
            if days == 9:  # a member books ny-closed on Saturday 03-14, in both
                for engine in engines:
                    execute(engine, "UPDATE class_sessions SET booked_count = 3 WHERE "
                                    "series_key = 'ny-closed' AND occurrence_key = '2026-03-14'")
            if days == 12:  # ny-closed becomes weekdays only; the booked Saturday stays
                for engine in engines:
                    execute(engine, "UPDATE class_series SET recurrence = "
                                    "'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR' WHERE key = 'ny-closed'")
            execute(b, "DELETE FROM generation_state")
            got = night(a, now, f"a-{number}")
            want = night(b, now, f"b-{number}")
            assert got == want, f"night {number} ({now:%Y-%m-%d}): outcomes differ"
            assert conflicts(a) == conflicts(b), f"night {number} ({now:%Y-%m-%d})"
            assert session_rows(a) == session_rows(b), f"night {number} ({now:%Y-%m-%d})"
            assert reconciled_at(b) <= {now}
            if reconciled_at(a) - {now}:
                incremental_nights += 1
            if days == 13:
                # The edit was reconciled on day 12; the booked Saturday row it kept (no
                # longer a wanted occurrence) does not stop the next night continuing.
                assert series_reconciled_at(a, "ny-closed") == FIRST + timedelta(days=12)
    finally:
        for engine in engines:
            engine.dispose()
    assert incremental_nights >= 30, incremental_nights
    assert [c[1] for c in conflicts(a) if c[0] == "ny-none"] == ["NO_OCCURRENCES"]


def test_warnings_on_an_incremental_night_cover_the_whole_window(tmp_path: Path) -> None:
    """Stated by hand: the New York gap of 2026-03-08 and the closed 03-10 found on
    night 1 are still reported on night 2, when only 03-16 was expanded; the gap is
    gone once it is past."""
    engine = create_db_engine(f"sqlite:///{tmp_path}/app.db")
    upgrade_database(engine)
    seed(engine)
    try:
        night(engine, FIRST, "n1")  # window 03-01 12:00Z .. 03-15 12:00Z
        night(engine, FIRST + timedelta(days=1), "n2")
        with engine.connect() as conn:
            state = conn.execute(sa.select(repo.state_t.c.reconciled_at,
                                           repo.state_t.c.warn_dates)
                                 .join(repo.series_t, repo.series_t.c.id ==
                                       repo.state_t.c.series_id)
                                 .where(repo.series_t.c.key == "ny-gap")).one()
        assert state.reconciled_at == FIRST  # night 2 continued night 1
        # Window of night 2: 03-02 12:00Z .. 03-16 12:00Z. 02:30 EST = 07:30Z, so the
        # occurrences are 03-03 .. 03-16 (03-16 02:30 EDT = 06:30Z); 03-10 is closed;
        # 03-08 is shifted to 03:30 EDT; every one starts before the 06:00 opening.
        outside = ["2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07",
                   "2026-03-08", "2026-03-09", "2026-03-11", "2026-03-12", "2026-03-13",
                   "2026-03-14", "2026-03-15", "2026-03-16"]
        assert state.warn_dates == {"closed": ["2026-03-10"], "shifted": ["2026-03-08"],
                                    "outside": outside}
        gap = {c[1]: c for c in conflicts(engine) if c[0] == "ny-gap"}
        assert gap["NONEXISTENT_LOCAL_TIME"][4] == ("2026-03-08",)
        assert gap["CLOSED_DATE"][4] == ("2026-03-10",)
        assert "'dates', " + repr(outside) in gap["OUTSIDE_BUSINESS_HOURS"][5]
        # 2026-03-08 03:30 EDT = 07:30Z; on 03-09 12:00Z it is past.
        night(engine, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), "n3")
        gap = {c[1]: c for c in conflicts(engine) if c[0] == "ny-gap"}
        assert "NONEXISTENT_LOCAL_TIME" not in gap
        # 03-10 02:30 EDT = 06:30Z on 03-10: still ahead; 03-20 entered the window.
        assert gap["CLOSED_DATE"][4] == ("2026-03-10", "2026-03-20")
    finally:
        engine.dispose()
