"""Double bookings kept up to date by what changed agree with a scan of every session.

Contract (``repository.find_double_bookings``): ``session_overlaps`` is brought up
to date by re-examining only the spans the triggers logged; the result equals
the one after a full scan, and the double bookings found are its overlaps grouped
per series, other series and resource. Here on data with a DST change, ties, back-to-back
sessions, a cancelled session, another branch, and sessions outside the asked
window; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from seriesgen_pipeline.core.conflicts import DoubleBooking
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seed(engine: sa.Engine) -> dict[str, int]:
    seed_base(engine, horizon_days=14, open_time="00:00", close_time="00:00")
    seed_branch(engine, "ny", timezone="America/New_York")
    seed_branch(engine, "far", timezone="America/New_York")
    start = date(2026, 2, 1)
    ids = {
        # 09:00 New York: 14:00Z until 03-07, 13:00Z from 03-08 (EDT).
        "ny-nine": seed_series(engine, "ny-nine", branch="ny", recurrence="FREQ=DAILY",
                               start_time="09:00", start_date=start, room="Hall",
                               instructor="Ana"),
        # 14:30 UTC, 30 min: overlaps ny-nine (14:00-15:00Z) only while New York is on EST.
        "utc-half": seed_series(engine, "utc-half", branch="ny", recurrence="FREQ=DAILY",
                                start_time="14:30", start_date=start, room="Hall",
                                instructor="Ben", duration_minutes=30,
                                config={"timezone": "UTC"}),
        # Same start as ny-nine on Mondays, other room, same instructor: a tie.
        "tie": seed_series(engine, "tie", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=MO",
                           start_time="09:00", start_date=start, room="Annex",
                           instructor="Ana"),
        # 10:00-10:30 New York: starts when ny-nine ends; touches utc-half (14:30-15:00Z)
        # on both sides of the change (15:00Z EST, 14:00-14:30Z EDT): no overlap.
        "next": seed_series(engine, "next", branch="ny", recurrence="FREQ=DAILY",
                            start_time="10:00", start_date=start, room="Hall",
                            instructor="Cy", duration_minutes=30),
        # Same room name and times in another branch: not a double booking.
        "far-nine": seed_series(engine, "far-nine", branch="far", recurrence="FREQ=DAILY",
                                start_time="09:00", start_date=start, room="Hall",
                                instructor="Ana"),
        # Three in one slot on Wednesdays: every pair counts.
        "wed-1": seed_series(engine, "wed-1", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=WE",
                             start_time="19:00", start_date=start, room="Loft",
                             instructor="Dee"),
        "wed-2": seed_series(engine, "wed-2", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=WE",
                             start_time="19:15", start_date=start, room="Loft",
                             instructor="Eve"),
        "wed-3": seed_series(engine, "wed-3", branch="ny", recurrence="FREQ=WEEKLY;BYDAY=WE",
                             start_time="19:30", start_date=start, room="Loft",
                             instructor="Fay"),
    }
    snaps = eng.take_snapshots(engine, keys=None, now=NOW, run_id="seed")
    eng.generate(engine, snaps.values(), now=NOW, run_id="seed")
    # A cancelled wed-3 session no longer books the loft on 03-11.
    execute(engine, "UPDATE class_sessions SET status = 'cancelled' "
                    "WHERE series_key = 'wed-3' AND occurrence_key = '2026-03-11'")
    return ids


def both(conn: sa.Connection, ids: list[int], since: datetime, until: datetime
         ) -> list[repo.Overlap]:
    """The overlaps kept up to date by the logged changes, checked against a full scan;
    the double bookings found then are those overlaps, grouped."""
    found = repo.find_double_bookings(conn, series_ids=ids, since=since, until=until)
    kept = sorted(repo.read_overlaps(conn, series_ids=ids, since=since, until=until), key=repr)
    repo.refresh_overlaps(conn, full=True)
    scanned = sorted(repo.read_overlaps(conn, series_ids=ids, since=since, until=until),
                     key=repr)
    assert kept == scanned
    assert sorted(found, key=repr) == grouped(scanned)
    return scanned


def grouped(overlaps: list[repo.Overlap]) -> list[DoubleBooking]:
    """One double booking per series, other series, resource, value and branch, with the
    dates of its overlaps."""
    days: dict[tuple[str, str, str, str, str], set[str]] = {}
    for o in overlaps:
        days.setdefault((o.series_key, o.other_series_key, o.resource, o.value, o.branch_id),
                        set()).add(o.occurrence_key)
    return sorted((DoubleBooking(*group, tuple(sorted(found)))
                   for group, found in days.items()), key=repr)


def test_probe_and_scan_agree(engine: sa.Engine) -> None:
    ids = seed(engine)
    until = NOW + timedelta(days=14)
    with engine.connect() as conn:
        overlaps = both(conn, list(ids.values()), NOW, until)
        # Only some series asked, and a narrower window.
        narrow = both(conn, [ids["utc-half"], ids["wed-2"]], NOW + timedelta(days=3),
                      NOW + timedelta(days=10))
        bookings = {(b.series_key, b.other_series_key, b.resource): b
                    for b in repo.find_double_bookings(conn, series_ids=[ids["wed-1"]],
                                                       since=NOW, until=until)}

    def dates(key: str, other: str, resource: str, found: list[repo.Overlap]) -> list[str]:
        return sorted(o.occurrence_key for o in found if (o.series_key, o.other_series_key,
                                                          o.resource) == (key, other, resource))

    # Window 03-01 12:00Z .. 03-15 12:00Z: ny-nine from 03-02 (03-01 14:00Z is in, too).
    est = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05",
           "2026-03-06", "2026-03-07"]
    assert dates("ny-nine", "utc-half", "room", overlaps) == est
    assert dates("utc-half", "ny-nine", "room", overlaps) == est
    assert dates("ny-nine", "tie", "instructor", overlaps) == ["2026-03-02", "2026-03-09"]
    assert dates("tie", "ny-nine", "instructor", overlaps) == ["2026-03-02", "2026-03-09"]
    assert not [o for o in overlaps if "next" in (o.series_key, o.other_series_key)]
    assert not [o for o in overlaps if "far-nine" in (o.series_key, o.other_series_key)]
    assert dates("wed-1", "wed-2", "room", overlaps) == ["2026-03-04", "2026-03-11"]
    assert dates("wed-1", "wed-3", "room", overlaps) == ["2026-03-04"]  # 03-11 cancelled
    assert dates("wed-3", "wed-2", "room", overlaps) == ["2026-03-04"]
    # Grouped, wed-1's: one per other series and resource, the dates in order.
    assert bookings == {
        ("wed-1", "wed-2", "room"): DoubleBooking("wed-1", "wed-2", "room", "Loft", "ny",
                                                  ("2026-03-04", "2026-03-11")),
        ("wed-1", "wed-3", "room"): DoubleBooking("wed-1", "wed-3", "room", "Loft", "ny",
                                                  ("2026-03-04",)),
    }
    # The narrow ask: 03-04 12:00Z .. 03-11 12:00Z, utc-half and wed-2 only.
    assert {o.series_key for o in narrow} == {"utc-half", "wed-2"}
    assert dates("utc-half", "ny-nine", "room", narrow) == [
        "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"]
    assert dates("wed-2", "wed-1", "room", narrow) == ["2026-03-04"]


def test_a_run_over_a_few_series_scans_the_rooms_their_sessions_are_in(
        engine: sa.Engine) -> None:
    """The scan of a run over a minority of the series covers the groups of its rows,
    which include a session staff moved to another room (not the series' own room)."""
    ids = seed(engine)
    # Staff move utc-half's 03-04 session to the loft, 00:00-00:30Z on 03-05: that is
    # 19:00-19:30 EST on Wednesday 03-04, when wed-1 (19:00-20:00) and wed-2 (19:15-20:15)
    # hold the loft; wed-3 (19:30) starts as it ends.
    execute(engine, "UPDATE class_sessions SET room = 'Loft', detached = :yes, starts_at = :s, "
                    "ends_at = :e WHERE series_key = 'utc-half' AND occurrence_key = '2026-03-04'",
            yes=True, s=datetime(2026, 3, 5, 0, 0, tzinfo=UTC),
            e=datetime(2026, 3, 5, 0, 30, tzinfo=UTC))
    with engine.connect() as conn:
        found = both(conn, [ids["utc-half"]], NOW, NOW + timedelta(days=14))
    assert sorted((o.other_series_key, o.occurrence_key) for o in found
                  if o.resource == "room" and o.value == "Loft") == [
        ("wed-1", "2026-03-04"), ("wed-2", "2026-03-04")]
