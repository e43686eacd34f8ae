"""Double bookings kept up to date from the logged changes equal those of every pair.

Contract (``repository.refresh_overlaps``, migration 0006): whatever writes
``class_sessions`` (raw statements here, as the booking app or an operator would:
rooms and instructors changed or cleared, sessions moved, cancelled and restored,
deleted, inserted, moved to another branch, many rows in one statement), the
double bookings found after each round equal those of an independent check of
every pair of sessions. A change committed after a refresh's snapshot is found by
the next refresh; writes the triggers never saw are found by the periodic full
scan; a ``TRUNCATE`` leaves nothing stale.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.core.conflicts import Overlap
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    statements,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SINCE, UNTIL = NOW - timedelta(days=30), NOW + timedelta(days=30)
ROOMS = ("Hall", "Loft", None)
INSTRUCTORS = ("Ana", "Ben", None)
BRANCHES = ("ny", "la")
t = repo.sessions_t


def seed(engine: sa.Engine) -> list[int]:
    """Six daily series in two branches sharing rooms and instructors, generated."""
    seed_base(engine, horizon_days=14, open_time="00:00", close_time="00:00")
    for branch in BRANCHES:
        seed_branch(engine, branch, timezone="America/New_York")
    ids = [seed_series(engine, f"s{i}", branch=BRANCHES[i % 2], recurrence="FREQ=DAILY",
                       start_time=f"{9 + i % 3}:00".zfill(5), start_date=date(2026, 2, 20),
                       room=ROOMS[i % 2], instructor=INSTRUCTORS[i % 2],
                       duration_minutes=45 + 15 * (i % 4))
           for i in range(6)]
    snaps = eng.take_snapshots(engine, keys=None, now=NOW, run_id="seed")
    eng.generate(engine, snaps.values(), now=NOW, run_id="seed")
    return ids


def every_pair(engine: sa.Engine, ids: list[int]) -> Counter[Overlap]:
    """The double bookings of ``ids`` in [SINCE, UNTIL], by comparing every two sessions
    (one per pair of sessions: a session overlapping two of one series counts twice)."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t).where(t.c.status == "scheduled"))
                .mappings()]
    found: Counter[Overlap] = Counter()
    for resource in ("room", "instructor"):
        for a in rows:
            for b in rows:
                if (a[resource] is not None and a[resource] == b[resource]
                        and a["branch_id"] == b["branch_id"]
                        and a["origin_series_id"] != b["origin_series_id"]
                        and a["starts_at"] < b["ends_at"] and b["starts_at"] < a["ends_at"]
                        and a["origin_series_id"] in ids
                        and SINCE <= a["starts_at"] <= UNTIL):
                    found[Overlap(a["series_key"], b["series_key"], resource,
                                           a[resource], a["occurrence_key"], a["branch_id"])] += 1
    return found


def kept(engine: sa.Engine, ids: list[int]) -> list[Overlap]:
    with engine.connect() as conn:
        repo.refresh_overlaps(conn)
        return repo.read_overlaps(conn, series_ids=ids, since=SINCE, until=UNTIL)


def mutate(engine: sa.Engine, rng: random.Random, serial: int) -> str:
    """One raw write of a random kind; says what it did."""
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]
        row = rng.choice(rows)
        kind = rng.choice(("room", "instructor", "move", "status", "delete", "insert",
                           "branch", "many"))
        where = t.c.id == row["id"]
        if kind == "room":
            conn.execute(sa.update(t).where(where).values(room=rng.choice(ROOMS)))
        elif kind == "instructor":
            conn.execute(sa.update(t).where(where).values(instructor=rng.choice(INSTRUCTORS)))
        elif kind == "move":
            starts = row["starts_at"] + timedelta(minutes=15 * rng.randint(-100, 100))
            conn.execute(sa.update(t).where(where).values(
                starts_at=starts, ends_at=starts + timedelta(minutes=rng.choice((15, 60, 180)))))
        elif kind == "status":
            conn.execute(sa.update(t).where(where).values(
                status="scheduled" if row["status"] != "scheduled" else "cancelled"))
        elif kind == "delete":
            conn.execute(sa.delete(t).where(where))
        elif kind == "insert":
            starts = row["starts_at"] + timedelta(minutes=15 * rng.randint(-8, 8))
            copy = {k: v for k, v in row.items() if k != "id"}
            conn.execute(sa.insert(t).values(
                {**copy, "occurrence_key": f"x{serial:09d}", "starts_at": starts,
                 "ends_at": starts + timedelta(minutes=60), "room": rng.choice(ROOMS)}))
        elif kind == "branch":
            conn.execute(sa.update(t).where(where).values(branch_id=rng.choice(BRANCHES)))
        else:  # one statement over many rows: every session of a room on a few days
            low = row["starts_at"] - timedelta(days=rng.randint(0, 3))
            conn.execute(sa.update(t).where(
                t.c.room == rng.choice(ROOMS[:2]), t.c.starts_at >= low,
                t.c.starts_at < low + timedelta(days=rng.randint(1, 4))
            ).values(instructor=rng.choice(INSTRUCTORS)))
    return kind


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_kept_overlaps_equal_every_pair_after_random_writes(engine: sa.Engine,
                                                            seed_value: int) -> None:
    ids = seed(engine)
    rng = random.Random(seed_value)
    expected = every_pair(engine, ids)
    assert expected, "the seed has double bookings to begin with"
    assert Counter(kept(engine, ids)) == expected
    kinds: set[str] = set()
    for round_ in range(25):
        for i in range(rng.randint(1, 4)):
            kinds.add(mutate(engine, rng, round_ * 10 + i))
        assert Counter(kept(engine, ids)) == every_pair(engine, ids), f"round {round_}"
    assert len(kinds) == 8, f"every kind of write was tried: {sorted(kinds)}"
    # A full scan of the table as the writes left it finds the same pairs.
    with engine.connect() as conn:
        repo.refresh_overlaps(conn, full=True)
        rescanned = repo.read_overlaps(conn, series_ids=ids, since=SINCE, until=UNTIL)
    assert Counter(rescanned) == every_pair(engine, ids)


def logged_groups(engine: sa.Engine) -> set[tuple[str, str, str]]:
    c = repo.session_changes_t
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(
            sa.select(c.c.resource, c.c.branch_id, c.c.value).distinct())}


def logged_removals(engine: sa.Engine) -> list[int]:
    r = repo.session_removals_t
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(r.c.session_id)).scalars())


def session_id(engine: sa.Engine, series_key: str, occurrence: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(t.c.id).where(
            t.c.series_key == series_key, t.c.occurrence_key == occurrence)).scalar_one())


def test_the_log_holds_what_changed_until_a_refresh_reads_it(engine: sa.Engine) -> None:
    """After a refresh the log is empty; a booking or a new title logs nothing (no
    double booking depends on them); a room change logs the row as removed (its pairs
    as they were) and the groups of its new version (its pairs as they are); a refresh
    empties the log."""
    ids = seed(engine)
    kept(engine, ids)
    assert logged_groups(engine) == set() and logged_removals(engine) == []
    execute(engine, "UPDATE class_sessions SET title = 'Renamed', booked_count = 3, "
                    "detached = :yes WHERE series_key = 's0'", yes=True)
    assert logged_groups(engine) == set() and logged_removals(engine) == []
    execute(engine, "UPDATE class_sessions SET room = 'Loft' WHERE series_key = 's0' "
                    "AND occurrence_key = '2026-03-03'")
    # s0: branch ny, room Hall, instructor Ana.
    assert logged_groups(engine) == {("room", "ny", "Loft"), ("instructor", "ny", "Ana")}
    assert logged_removals(engine) == [session_id(engine, "s0", "2026-03-03")]
    assert Counter(kept(engine, ids)) == every_pair(engine, ids)
    assert logged_groups(engine) == set() and logged_removals(engine) == []


def test_a_cancelled_or_deleted_session_costs_no_scan(engine: sa.Engine) -> None:
    """A session cancelled (the booking app) or deleted is logged by its id alone: the
    refresh deletes its pairs and scans no session, and the pairs left equal those of
    every pair. Restored, it is looked for again."""
    ids = seed(engine)
    kept(engine, ids)
    cancelled = session_id(engine, "s0", "2026-03-03")
    deleted = session_id(engine, "s1", "2026-03-05")
    with engine.connect() as conn:
        paired = conn.execute(sa.text(
            "SELECT count(*) FROM session_overlaps WHERE a_id IN (:c, :d) OR b_id IN (:c, :d)"),
            {"c": cancelled, "d": deleted}).scalar_one()
    assert paired > 0, "the seed pairs both sessions"
    execute(engine, "UPDATE class_sessions SET status = 'cancelled' WHERE id = :id", id=cancelled)
    execute(engine, "DELETE FROM class_sessions WHERE id = :id", id=deleted)
    assert logged_groups(engine) == set()
    assert logged_removals(engine) == sorted([cancelled, deleted])
    with engine.connect() as conn, statements(engine) as sent:
        repo.refresh_overlaps(conn)
    assert not [s for s in sent if "class_sessions" in s], "no session was read"
    assert Counter(kept(engine, ids)) == every_pair(engine, ids)
    execute(engine, "UPDATE class_sessions SET status = 'scheduled' WHERE id = :id", id=cancelled)
    assert logged_groups(engine) == {("room", "ny", "Hall"), ("instructor", "ny", "Ana")}
    assert Counter(kept(engine, ids)) == every_pair(engine, ids)


def test_a_change_logs_the_days_it_touched(engine: sa.Engine) -> None:
    """Two sessions of one room changed weeks apart in one statement log two spans, each
    around its own day, not the weeks between them."""
    ids = seed(engine)
    kept(engine, ids)
    execute(engine, "UPDATE class_sessions SET instructor = 'Ben' WHERE series_key = 's0' "
                    "AND occurrence_key IN ('2026-03-02', '2026-03-14')")
    c = repo.session_changes_t
    with engine.connect() as conn:
        spans = sorted((r.low, r.high) for r in conn.execute(
            sa.select(c.c.low, c.c.high).where(c.c.resource == "room")))
    # s0 starts at 09:00 New York: 14:00Z on 03-02 (EST), 13:00Z on 03-14 (EDT).
    low_02, low_14 = datetime(2026, 3, 2, 14, tzinfo=UTC), datetime(2026, 3, 14, 13, tzinfo=UTC)
    assert spans[0][0] <= low_02 <= spans[0][1] < datetime(2026, 3, 4, tzinfo=UTC)
    assert datetime(2026, 3, 13, tzinfo=UTC) < spans[-1][0] <= low_14 <= spans[-1][1]
    assert Counter(kept(engine, ids)) == every_pair(engine, ids)


def _overlapping_insert(conn: sa.Connection) -> datetime:
    """A session of s1 put into s0's room at s0's time on 03-03; its start."""
    row = dict(conn.execute(sa.select(t).where(t.c.series_key == "s0",
                                               t.c.occurrence_key == "2026-03-03"))
               .mappings().one())
    s1 = dict(conn.execute(sa.select(t).where(t.c.series_key == "s1").limit(1))
              .mappings().one())
    conn.execute(sa.insert(t).values({**{k: v for k, v in s1.items() if k != "id"},
                                      "occurrence_key": "late", "branch_id": row["branch_id"],
                                      "room": row["room"], "starts_at": row["starts_at"],
                                      "ends_at": row["ends_at"]}))
    return row["starts_at"]


@pytest.mark.postgres
def test_a_write_committed_after_a_refresh_snapshot_is_found_next(pg_engine: sa.Engine) -> None:
    """A transaction still open while a refresh runs is found by the next refresh."""
    ids = seed(pg_engine)
    kept(pg_engine, ids)
    with pg_engine.connect() as writer:
        writer.begin()
        starts = _overlapping_insert(writer)
        before = kept(pg_engine, ids)  # the insert is not committed yet
        writer.commit()
    after = kept(pg_engine, ids)
    assert starts == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert not [o for o in before if o.occurrence_key == "late"]
    assert [o.other_series_key for o in after
            if o.occurrence_key == "late" and o.resource == "room"] == ["s0"]
    assert Counter(after) == every_pair(pg_engine, ids)


@pytest.mark.postgres
def test_writes_the_triggers_missed_are_found_by_the_periodic_full_scan(
        pg_engine: sa.Engine) -> None:
    ids = seed(pg_engine)
    kept(pg_engine, ids)
    with pg_engine.begin() as conn:  # as a restore would: triggers off
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        _overlapping_insert(conn)
    assert not [o for o in kept(pg_engine, ids) if o.occurrence_key == "late"]
    execute(pg_engine, "UPDATE session_overlaps_state SET full_scan_at = :at",
            at=datetime.now(UTC) - repo.FULL_SCAN_EVERY - timedelta(minutes=1))
    assert [o for o in kept(pg_engine, ids) if o.occurrence_key == "late"]
    assert Counter(kept(pg_engine, ids)) == every_pair(pg_engine, ids)


@pytest.mark.postgres
def test_nothing_stale_after_a_truncate(pg_engine: sa.Engine) -> None:
    ids = seed(pg_engine)
    assert kept(pg_engine, ids)
    execute(pg_engine, "TRUNCATE class_sessions")
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(repo.overlaps_state_t.c.full_scan_at)).scalar() is None
    assert kept(pg_engine, ids) == []
    with pg_engine.begin() as conn:
        conn.execute(sa.delete(repo.state_t))
        conn.execute(sa.update(repo.series_t).values(last_generated_through=None))
    snaps = eng.take_snapshots(pg_engine, keys=None, now=NOW, run_id="again")
    eng.generate(pg_engine, snaps.values(), now=NOW, run_id="again")
    assert Counter(kept(pg_engine, ids)) == every_pair(pg_engine, ids) != Counter()


def test_a_refresh_on_postgresql_looks_for_no_unreadable_start(pg_engine: sa.Engine) -> None:
    """Starts are timestamps there, never null: the search for pairs with a side whose
    start could not be read (a scan of every pair, on SQLite) is not made; what a
    deleted session leaves is still forgotten."""
    ids = seed(pg_engine)
    kept(pg_engine, ids)
    execute(pg_engine, "DELETE FROM class_sessions WHERE id IN (SELECT a_id FROM "
                       "session_overlaps ORDER BY a_id LIMIT 3)")
    with statements(pg_engine) as sent:
        found = Counter(kept(pg_engine, ids))
    assert found == every_pair(pg_engine, ids)
    assert any(s.startswith("DELETE FROM session_overlaps") for s in sent)
    assert not [s for s in sent if "starts_at IS NULL" in s]


def test_many_marked_sessions_are_probed_5000_at_a_time(pg_engine: sa.Engine) -> None:
    """A refresh probes its marked sessions for their pairs in parts of 5,000, the ids
    of each part one bound array (not an ``IN`` list of thousands of bound values);
    every pair is found, those of the second part included.

    Two series share a new room for 6,000 hours: each hour one session from :00 to
    :45 and one from :30 to :50, so each hour holds exactly one pair and its later
    session is the one marked.
    """
    ids = seed(pg_engine)
    hours = 6000
    execute(pg_engine, f"""
        INSERT INTO class_sessions (series_id, origin_series_id, series_key,
            occurrence_key, branch_id, title, room, capacity, timezone, starts_at,
            ends_at, status, detached, booked_count, created_at, updated_at)
        SELECT s.id, s.id, s.key, 'annex-' || h, 'ny', 'Annex hour', 'Annex', 10, 'UTC',
               TIMESTAMPTZ '2026-03-02 00:00Z' + h * INTERVAL '1 hour' + s.start_at,
               TIMESTAMPTZ '2026-03-02 00:00Z' + h * INTERVAL '1 hour' + s.end_at,
               'scheduled', false, 0, now(), now()
        FROM generate_series(0, {hours - 1}) AS h,
             (VALUES ({ids[0]}, 's0', INTERVAL '0 minutes', INTERVAL '45 minutes'),
                     ({ids[2]}, 's2', INTERVAL '30 minutes', INTERVAL '50 minutes'))
             AS s(id, key, start_at, end_at)""")
    with pg_engine.connect() as conn, statements(pg_engine) as sent:
        repo.refresh_overlaps(conn, full=True)
    probes = [s for s in sent if "class_sessions AS b ON" in s]
    # The room: 6,000 marked and the seeded series' few, two parts; the instructor: one.
    assert len(probes) == 3
    assert all("= ANY (" in s and "IN (" not in s for s in probes)
    with pg_engine.connect() as conn:
        annex = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT a_starts_at) FROM session_overlaps "
            "WHERE resource = 'room' AND value = 'Annex'")).one()
    assert tuple(annex) == (hours, hours)


def test_the_triggers_run_without_jit(pg_engine: sa.Engine) -> None:
    """JIT compilation cost an update of thousands of rows more than the trigger's
    own work (migration 0009): the trigger functions turn it off."""
    names = ["seriesgen_log_sessions_inserted", "seriesgen_log_sessions_updated",
             "seriesgen_log_sessions_deleted"]
    with pg_engine.connect() as conn:
        found = dict(conn.execute(sa.text(
            "SELECT proname, proconfig FROM pg_proc WHERE proname = ANY(:names)"),
            {"names": names}).all())
    assert found == {name: ["jit=off"] for name in names}


def test_a_garbled_start_counts_as_no_session(sqlite_url: str) -> None:
    """SQLite stores what it is given, a start the booking app garbled included: that
    session is in no double booking, and the rest of its group is re-examined."""
    engine = create_db_engine(sqlite_url)
    try:
        upgrade_database(engine)
        ids = seed(engine)
        kept(engine, ids)
        where = "WHERE series_key = 's0' AND occurrence_key = '2026-03-03'"
        execute(engine, f"UPDATE class_sessions SET status = 'cancelled' {where}")
        without = every_pair(engine, ids)  # as if the session were not there
        execute(engine, f"UPDATE class_sessions SET status = 'scheduled', "
                        f"starts_at = 'garbage' {where}")
        assert Counter(kept(engine, ids)) == without != Counter()
    finally:
        engine.dispose()


def test_a_pair_with_an_unreadable_start_goes_with_its_session(sqlite_url: str) -> None:
    """A stored pair one of whose starts cannot be read (SQLite, garbled by another
    writer) is forgotten once that session is deleted; a refresh with nothing logged
    since leaves the other pairs as they are."""
    engine = create_db_engine(sqlite_url)
    try:
        upgrade_database(engine)
        ids = seed(engine)
        before = Counter(kept(engine, ids))
        # s3 (14:00-15:30 UTC) overlaps s1 (15:00-16:00) in the "la" Loft; garbled so that
        # it still sorts before s1, the pair is found from s1's side with s3's start unread.
        where = "WHERE series_key = 's3' AND occurrence_key = '2026-03-03'"
        execute(engine, "UPDATE class_sessions SET starts_at = '2026-03-03 14:00:00 garbled' "
                        + where)
        kept(engine, ids)
        unreadable = ("SELECT count(*) FROM session_overlaps "
                      "WHERE a_starts_at IS NULL OR b_starts_at IS NULL")
        with engine.connect() as conn:
            assert conn.execute(sa.text(unreadable)).scalar_one() > 0
        execute(engine, f"DELETE FROM class_sessions {where}")
        after = Counter(kept(engine, ids))
        with engine.connect() as conn:
            assert conn.execute(sa.text(unreadable)).scalar_one() == 0
        assert after == every_pair(engine, ids) != before
        assert Counter(kept(engine, ids)) == after  # nothing logged since
    finally:
        engine.dispose()
