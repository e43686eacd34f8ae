"""Conflicts (SPEC §6): every code is produced, recorded per series, and notified once.

Contract: errors fail only their series; warnings are generated around; room and
instructor double bookings are found across series of one branch, also when the
overlap exists only after a DST change; with a recipient set, each conflict is
written once to ``notifications`` however many nights it recurs, and again when
the configuration changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def run(engine: sa.Engine, now: datetime = NOW, run_id: str = "r1",
        recipient: str | None = None) -> dict[str, eng.SeriesOutcome]:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    return {o.series_key: o for o in eng.generate(engine, snaps.values(), now=now,
                                                  run_id=run_id, notify_recipient=recipient)}


def codes(outcome: eng.SeriesOutcome) -> set[str]:
    return {k.code for k in outcome.conflicts}


def test_every_conflict_code(engine):
    seed_base(engine, closed_dates=["2026-03-04"])
    seed_branch(engine, "east", timezone="America/New_York", open_time="07:00")
    seed_branch(engine, "apia", timezone="Pacific/Apia")
    seed_branch(engine, "london", timezone="Europe/London")
    seed_series(engine, "early", start_time="06:30", room="A")  # before 07:00
    seed_series(engine, "closed", start_time="10:00", room="B")  # Wednesday 03-04 closed
    seed_series(engine, "gap", recurrence="FREQ=WEEKLY;BYDAY=SU", start_time="02:30",
                room="C", instructor="Gus")
    seed_series(engine, "fold", branch="london", recurrence="FREQ=DAILY", start_time="01:30",
                room="D", start_date=date(2026, 10, 20), end_date=date(2026, 10, 30),
                instructor="Flo")
    seed_series(engine, "skipday", branch="apia", recurrence="FREQ=DAILY", start_time="10:00",
                start_date=date(2011, 12, 28), end_date=date(2012, 1, 2), instructor="Ivy")
    seed_series(engine, "never", recurrence="FREQ=MONTHLY;BYMONTHDAY=31",
                start_date=date(2026, 2, 1), end_date=date(2026, 2, 28), room="E")
    seed_series(engine, "room-a", start_time="12:00", room="Hall", instructor="Ana")
    seed_series(engine, "room-b", start_time="12:30", room="Hall", instructor="Bo")
    seed_series(engine, "teach-b", start_time="12:45", room="Gym", instructor="Ana")
    seed_series(engine, "e-rule", recurrence="FREQ=YEARLY")
    seed_series(engine, "e-branch", branch="mars")
    seed_series(engine, "e-dates", start_date=date(2026, 5, 1), end_date=date(2026, 4, 1))
    seed_series(engine, "e-duration", duration_minutes=0)
    seed_series(engine, "e-zone", config={"timezone": "Mars/Olympus"})
    out = run(engine)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(repo.conflicts_t.c.series_key,
                                            repo.conflicts_t.c.code)).all())
    october = run(engine, now=datetime(2026, 10, 19, 12, 0, tzinfo=UTC), run_id="r2")
    out["fold"] = october["fold"]
    apia = run(engine, now=datetime(2011, 12, 27, 12, 0, tzinfo=UTC), run_id="r3")
    out["skipday"] = apia["skipday"]
    assert "OUTSIDE_BUSINESS_HOURS" in codes(out["early"])
    assert "CLOSED_DATE" in codes(out["closed"])
    closed = next(k for k in out["closed"].conflicts if k.code == "CLOSED_DATE")
    assert closed.dates == (date(2026, 3, 4),)
    assert "NONEXISTENT_LOCAL_TIME" in codes(out["gap"])
    assert "AMBIGUOUS_LOCAL_TIME" in codes(out["fold"])
    assert "SKIPPED_LOCAL_DATE" in codes(out["skipday"])
    assert "NO_OCCURRENCES" in codes(out["never"])
    assert "ROOM_DOUBLE_BOOKED" in codes(out["room-a"])
    assert "ROOM_DOUBLE_BOOKED" in codes(out["room-b"])
    assert "INSTRUCTOR_DOUBLE_BOOKED" in codes(out["room-a"])
    assert "INSTRUCTOR_DOUBLE_BOOKED" in codes(out["teach-b"])
    assert "ROOM_DOUBLE_BOOKED" not in codes(out["teach-b"])
    errors = {key: out[key].conflicts[0].code for key in
              ("e-rule", "e-branch", "e-dates", "e-duration", "e-zone")}
    assert errors == {"e-rule": "INVALID_RRULE", "e-branch": "UNKNOWN_BRANCH",
                      "e-dates": "END_BEFORE_START", "e-duration": "NON_POSITIVE_DURATION",
                      "e-zone": "INVALID_TIMEZONE"}
    assert {out[k].status for k in errors} == {"failed"}
    assert out["early"].status == "success"
    assert ("e-zone", "INVALID_TIMEZONE") in stored
    assert ("room-b", "ROOM_DOUBLE_BOOKED") in stored


def test_overlap_that_exists_only_after_the_dst_change(engine):
    # Two London series in one room: 08:00 UTC-pinned would not overlap, but both follow
    # local time. 'late' starts 09:00 local; 'early' runs 08:00 local for 90 minutes, so
    # they overlap every day; both are checked in instants, before and after 2026-03-29.
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "west", timezone="Europe/London")
    seed_branch(engine, "east", timezone="America/New_York")
    seed_series(engine, "early", branch="west", recurrence="FREQ=DAILY", start_time="08:00",
                duration_minutes=90, room="Hall", start_date=date(2026, 3, 20))
    # A New York series, in UTC-anchored terms 08:00 NY = 12:00/13:00Z: other branch, never.
    seed_series(engine, "ny", branch="east", recurrence="FREQ=DAILY", start_time="04:00",
                room="Hall", start_date=date(2026, 3, 20))
    # 'after' is London too but only from the DST change: 08:30 local.
    seed_series(engine, "after", branch="west", recurrence="FREQ=DAILY", start_time="08:30",
                room="Hall", start_date=date(2026, 3, 29))
    out = run(engine, now=datetime(2026, 3, 22, 12, 0, tzinfo=UTC))
    room = next(k for k in out["after"].conflicts if k.code == "ROOM_DOUBLE_BOOKED")
    assert room.details["other_series"] == "early"
    assert room.dates[0] == date(2026, 3, 29)
    assert "ROOM_DOUBLE_BOOKED" not in codes(out["ny"])


def test_notification_written_once_and_again_after_config_change(engine):
    seed_base(engine)
    seed_branch(engine, "east", open_time="07:00")
    seed_series(engine, "early", start_time="06:30")
    for night in range(3):
        run(engine, run_id=f"night-{night}", recipient="ops@example.org")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(repo.notifications_t)).mappings().all()
    assert [(r["recipient_type"], r["recipient"], r["code"]) for r in rows] == [
        ("SYSTEM", "ops@example.org", "OUTSIDE_BUSINESS_HOURS")]
    execute(engine, "UPDATE scheduling_configs SET open_time = '06:45' WHERE scope = 'branch'")
    run(engine, run_id="after-edit", recipient="ops@example.org")
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(repo.notifications_t)).scalar()
    assert count == 2


def test_no_recipient_no_notification(engine):
    seed_base(engine)
    seed_branch(engine, "east", open_time="07:00")
    seed_series(engine, "early", start_time="06:30")
    run(engine)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(repo.notifications_t)).scalar()
    assert count == 0


def _stored_conflicts(engine: sa.Engine) -> dict[tuple[str, str], tuple[int, str]]:
    """``(series, code) -> (row id, run id)`` of every stored conflict."""
    t = repo.conflicts_t
    with engine.connect() as conn:
        return {(key, code): (row_id, run_id) for row_id, key, code, run_id in conn.execute(
            sa.select(t.c.id, t.c.series_key, t.c.code, t.c.run_id))}


def test_conflicts_unchanged_are_kept_and_changed_ones_replaced(engine):
    """A night that finds a series' conflicts as they are stored leaves its rows (and
    the run that first found them); a series whose conflicts changed, or whose stored
    row cannot be read, has them replaced; a conflict gone is deleted."""
    seed_base(engine)
    seed_branch(engine, "east", open_time="07:00")
    seed_series(engine, "early", start_time="06:30", room="A")
    seed_series(engine, "yoga", start_time="18:00", room="B")
    seed_series(engine, "spin", start_time="18:30", room="B", instructor="Ben")
    run(engine, run_id="night-0")
    first = _stored_conflicts(engine)
    assert set(first) == {("early", "OUTSIDE_BUSINESS_HOURS"), ("yoga", "ROOM_DOUBLE_BOOKED"),
                          ("spin", "ROOM_DOUBLE_BOOKED")}
    assert {run_id for _, run_id in first.values()} == {"night-0"}

    run(engine, run_id="night-1")
    assert _stored_conflicts(engine) == first

    # spin leaves room B: the double booking is gone from both series; early's stays.
    execute(engine, "UPDATE class_series SET room = 'C' WHERE key = 'spin'")
    run(engine, run_id="night-2")
    assert _stored_conflicts(engine) == {
        ("early", "OUTSIDE_BUSINESS_HOURS"): first[("early", "OUTSIDE_BUSINESS_HOURS")]}

    # Its hours change: early's warning is a new one (another message), found tonight.
    execute(engine, "UPDATE scheduling_configs SET open_time = '06:45' WHERE scope = 'branch'")
    run(engine, run_id="night-3")
    assert [run_id for _, run_id in _stored_conflicts(engine).values()] == ["night-3"]

    if engine.dialect.name == "sqlite":  # the JSON columns hold anything on SQLite
        execute(engine, "UPDATE series_conflicts SET details = '{not json' "
                        "WHERE series_key = 'early'")
        run(engine, run_id="night-4")
        assert [run_id for _, run_id in _stored_conflicts(engine).values()] == ["night-4"]
        with engine.connect() as conn:
            details = conn.execute(sa.select(repo.conflicts_t.c.details)).scalar_one()
        assert details["open_time"] == "06:45"
