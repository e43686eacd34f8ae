"""Two writers: the booking app and a running reconciliation (SPEC §3, §5 FR-013).

Contract: while a ``seriesgen generate`` process reconciles a series (its plan
already made from rows read before), the booking app books seats, cancels
sessions and staff edit a session (``detached``) of that series, in one
transaction the run has to wait for. Every such write survives: the run's
guarded UPDATE/DELETE skip those rows (whether the plan wanted to update or to
delete them), creates nothing in their place, and counts them as
``protected``; every other row ends exactly as one uninterrupted run leaves it, and
each series' saved row count is its rows' (counted again where a write was refused).
A follow-up run writes nothing.

The run is slowed with ``SERIESGEN_FAULT=pause_chunk_commit:<seconds>`` (a
sleep after each chunk commit) so that the booking lands between the run's
plan and its writes to the booked rows: it starts once the run's first chunk
(another series of the same batch) has committed, and holds its transaction
open while the run moves on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline_tests.builders import wrong_row_counts
from seriesgen_pipeline_tests.failure import harness as h
from seriesgen_pipeline_tests.failure.conftest import Reference

# In the ``edited`` scenario with chunks of 146 writes and batches of 8 series,
# the first batch holds s00..s07, planned together, then written one series per
# chunk: s00's chunk commits first; s03's and s04's come three and four pauses
# later.
CHUNK = 146
PAUSE = 0.3

BOOKINGS = [  # (series, occurrence, what the plan wants, SQL of the other writer)
    ("s03", "2026-07-01", "update", "SET detached = true, title = 'Private lesson'"),
    ("s03", "2026-07-02", "update", "SET status = 'cancelled'"),
    ("s03", "2026-07-03", "update", "SET booked_count = booked_count + 1"),
    ("s04", "2026-07-13", "update", "SET booked_count = booked_count + 2"),
    ("s04", "2026-07-14", "delete", "SET booked_count = booked_count + 1"),
    ("s04", "2026-07-16", "delete", "SET status = 'cancelled'"),
]


def _wait_first_chunk(proc: h.Proc, url: str, timeout: float = 60.0) -> None:
    engine = h.plain_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(sa.text("SELECT count(*) FROM class_sessions WHERE "
                                        "series_key = 's00' AND title LIKE '%(new)'")
                                ).scalar_one():
                    return
            assert proc.returncode is None, f"the run ended early:\n{proc.stderr()[-2000:]}"
            time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError("the run committed no chunk in time")


def _book(url: str, old: h.State) -> dict[tuple[str, str], dict[str, Any]]:
    """The booking app's transaction; returns the rows as it committed them."""
    engine = h.plain_engine(url)
    written = {}
    try:
        with engine.begin() as conn:
            for series, occ, _, assignment in BOOKINGS:
                key = (series, occ)
                before = h.row_of(conn, key)
                assert before == old.sessions[key], (
                    f"test timing: the run reached {key} before the booking app did")
                count = conn.execute(sa.text(
                    f"UPDATE class_sessions {assignment} "
                    "WHERE series_key = :s AND occurrence_key = :o"), {"s": series, "o": occ}
                ).rowcount
                assert count == 1, key
                written[key] = h.row_of(conn, key)
            if engine.dialect.name == "postgresql":
                # Hold the transaction until the run's guarded writes queue behind it:
                # proof that the run planned those rows before the booking existed.
                assert _run_waits_on_a_row_lock(url), (
                    "the run never waited for the booking app's row locks")
            else:
                time.sleep(0.6)  # the run's next chunk waits for the write lock
    finally:
        engine.dispose()
    return written


def _run_waits_on_a_row_lock(url: str, timeout: float = 15.0) -> bool:
    watcher = h.plain_engine(url)
    deadline = time.monotonic() + timeout
    try:
        with watcher.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE class_sessions%'")
                ).scalar_one()
                conn.rollback()
                if waiting:
                    return True
                time.sleep(0.01)
    finally:
        watcher.dispose()
    return False


def test_bookings_and_cancellations_during_a_reconciliation_survive(
        backend: str, make_db: Any, references: dict[str, Reference], tmp_path: Path) -> None:
    ref = references["edited"]
    url = make_db("edited")
    env = h.child_env(None, SERIESGEN_CHUNK_ROWS=str(CHUNK), SERIESGEN_BATCH_SERIES="8",
                      SERIESGEN_FAULT=f"pause_chunk_commit:{PAUSE}")
    proc = h.start(h.generate_args(url), env=env, workdir=tmp_path)
    _wait_first_chunk(proc, url)
    written = _book(url, ref.before)
    assert proc.wait() == 0, proc.stderr()[-3000:]
    report = proc.json()

    expected = dict(ref.state.sessions)
    expected.update(written)
    state = h.read_state(url)
    assert not state.duplicates
    for key, row in written.items():
        assert state.sessions.get(key) == row, (
            f"the booking app's write to {key} did not survive the run:\n"
            f"  wrote {row}\n  now   {state.sessions.get(key)}")
    assert state.sessions == expected, h.diff_sessions(state.sessions, expected)

    by_key = {s["key"]: s for s in report["series"]}
    for series in ("s03", "s04"):
        s = by_key[series]
        assert s["status"] == "success", s
        assert s["protected"] == 3, f"{series}: booked rows not counted as protected: {s}"
        assert s["created"] == 0, f"{series}: created a session for a booked occurrence: {s}"
        assert s["updated"] + s["deleted"] + s["protected"] == h.HORIZON, s

    # The deletes the guard refused left rows the plans did not foresee: the count
    # saved with each series' state is taken again, and holds.
    engine = h.plain_engine(url)
    try:
        assert wrong_row_counts(engine) == []
    finally:
        engine.dispose()

    follow_up = h.run(h.generate_args(url), env=h.child_env(None), workdir=tmp_path).json()
    totals = follow_up["totals"]
    assert (totals["created"], totals["updated"], totals["deleted"]) == (0, 0, 0), follow_up
    assert h.read_state(url).sessions == expected
