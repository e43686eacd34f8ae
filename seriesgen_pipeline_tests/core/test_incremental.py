"""Contract of ``core.incremental``: when a series continues, which rows a continued
plan reads, and how far a series' committed writes reach.

- ``continues`` holds only when the last generation's fingerprint and time-zone
  database are this run's, the watermark is that generation's end, the window does
  not shrink, the state is complete (``as_of`` not after ``now``, row count and
  warning dates known), and the last full reconcile is less than
  ``FULL_RECONCILE_EVERY`` old; any one of these failing means a full plan.
- ``settled`` holds only when the series continues, its last generation was as of
  this very ``now``, and it reached the window's end: nothing is left to expand.
- ``rows_beyond`` keeps the rows starting strictly after ``since`` and any row
  holding a wanted occurrence.
- ``watermark``: every write committed -> the window's end; otherwise the start of
  the last desired session whose key is not after the last committed write's key,
  or, with none, the continued slice's start (else the window's start).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from seriesgen_pipeline.core.incremental import (
    FULL_RECONCILE_EVERY,
    continues,
    rows_beyond,
    rows_from_after,
    settled,
    watermark,
)
from seriesgen_pipeline.core.occurrences import Window
from seriesgen_pipeline.core.reconcile import (
    SCHEDULED,
    Delete,
    ExistingSession,
    Operation,
    SessionValues,
    Update,
)

NOW = datetime.fromisoformat("2026-03-10T12:00:00+00:00")
WINDOW = Window(NOW, NOW + timedelta(days=28))


@dataclass(frozen=True)
class State:
    """A generation state as the store returns it."""

    fingerprint: str = "f1"
    tz_version: str = "2025b"
    generated_through: datetime = NOW + timedelta(days=27)
    reconciled_at: datetime = NOW - timedelta(days=1)
    as_of: datetime | None = NOW - timedelta(days=1)
    row_count: int | None = 40
    warn_dates: dict[str, Any] | None = None


COMPLETE = State(warn_dates={})


def holds(state: State | None, **overrides: Any) -> bool:
    args: dict[str, Any] = {"fingerprint": "f1", "tz_version": "2025b",
                            "watermark": NOW + timedelta(days=27), "window": WINDOW, "now": NOW}
    args.update(overrides)
    return continues(state, **args)


def session(key: str, hour: int = 18) -> SessionValues:
    starts = datetime.fromisoformat(f"{key}T{hour:02d}:00:00+00:00")
    return SessionValues(key, "east", "Yoga", "Ana", "Studio 2", 20, "UTC", starts,
                         starts + timedelta(hours=1))


def row(row_id: int, values: SessionValues) -> ExistingSession:
    return ExistingSession(row_id, values, SCHEDULED, False, 0)


def test_an_unchanged_finished_generation_continues() -> None:
    assert holds(COMPLETE)


@pytest.mark.parametrize(("state", "overrides"), [
    (None, {}),
    (COMPLETE, {"fingerprint": "f2"}),
    (COMPLETE, {"tz_version": "2026a"}),
    (COMPLETE, {"watermark": None}),
    (COMPLETE, {"watermark": NOW + timedelta(days=20)}),
    (COMPLETE, {"window": Window(NOW, NOW + timedelta(days=14))}),
    (replace(COMPLETE, reconciled_at=NOW - FULL_RECONCILE_EVERY), {}),
    (replace(COMPLETE, as_of=None), {}),
    (replace(COMPLETE, as_of=NOW + timedelta(seconds=1)), {}),
    (replace(COMPLETE, row_count=None), {}),
    (replace(COMPLETE, warn_dates=None), {}),
], ids=["no state", "content or configuration changed", "tz database changed",
        "no watermark", "unfinished", "window shrinks", "full reconcile due",
        "no as_of", "as_of after now", "row count unknown", "warning dates unknown"])
def test_any_doubt_means_a_full_plan(state: State | None, overrides: dict[str, Any]) -> None:
    assert not holds(state, **overrides)


def test_a_full_reconcile_just_inside_the_period_still_continues() -> None:
    recent = replace(COMPLETE, reconciled_at=NOW - FULL_RECONCILE_EVERY + timedelta(seconds=1))
    assert holds(recent)


# A generation as of NOW that reached the window's end, 2026-04-07T12:00Z.
AS_OF_NOW = replace(COMPLETE, as_of=NOW, generated_through=NOW + timedelta(days=28))


def test_a_generation_as_of_this_now_that_reached_the_end_is_settled() -> None:
    assert settled(AS_OF_NOW, fingerprint="f1", tz_version="2025b",
                   watermark=NOW + timedelta(days=28), window=WINDOW, now=NOW)


@pytest.mark.parametrize(("state", "overrides"), [
    (COMPLETE, {}),
    (replace(AS_OF_NOW, as_of=NOW - timedelta(days=1)), {}),
    (replace(AS_OF_NOW, generated_through=NOW + timedelta(days=27)),
     {"watermark": NOW + timedelta(days=27)}),
    (AS_OF_NOW, {"fingerprint": "f2"}),
    (AS_OF_NOW, {"watermark": NOW + timedelta(days=20)}),
    (AS_OF_NOW, {"window": Window(NOW, NOW + timedelta(days=29)),
                 "now": NOW}),
], ids=["a night later", "as of an earlier now", "short of the window's end",
        "content or configuration changed", "watermark moved", "window grew"])
def test_a_series_with_something_left_is_not_settled(state: State,
                                                     overrides: dict[str, Any]) -> None:
    args: dict[str, Any] = {"fingerprint": "f1", "tz_version": "2025b",
                            "watermark": NOW + timedelta(days=28), "window": WINDOW, "now": NOW}
    args.update(overrides)
    assert not settled(state, **args)


def test_a_continued_plan_reads_the_rows_beyond_and_those_of_wanted_occurrences() -> None:
    since = datetime.fromisoformat("2026-03-20T18:00:00+00:00")
    at_since = row(1, session("2026-03-20"))
    before = row(2, session("2026-03-19"))
    # Holds a wanted occurrence but starts before ``since`` (its time was moved).
    moved_back = row(3, replace(session("2026-03-22"), starts_at=since - timedelta(days=1)))
    after = row(4, session("2026-03-21"))
    kept = rows_beyond([at_since, before, moved_back, after], [session("2026-03-22")],
                       since=since)
    assert [r.id for r in kept] == [3, 4]


def test_every_write_committed_reaches_the_window_end() -> None:
    desired = [session("2026-03-11"), session("2026-03-12")]
    ops: list[Operation] = list(desired)
    assert watermark(ops, 2, desired, window=WINDOW, continue_from=None) == WINDOW.end
    assert watermark([], 0, [], window=WINDOW, continue_from=None) == WINDOW.end


def test_part_of_the_writes_reach_the_last_desired_session_they_cover() -> None:
    desired = [session("2026-03-11"), session("2026-03-13"), session("2026-03-15")]
    ops: list[Operation] = [desired[0], Delete(9, "2026-03-12"),
                            Update(7, desired[1]), desired[2]]
    reach = [watermark(ops, n, desired, window=WINDOW, continue_from=None) for n in range(4)]
    assert reach == [WINDOW.start, desired[0].starts_at, desired[0].starts_at,
                     desired[1].starts_at]


def test_before_any_desired_session_a_continued_slice_reaches_its_start() -> None:
    desired = [session("2026-03-30")]
    ops: list[Operation] = [Delete(3, "2026-03-29"), desired[0]]
    since = datetime.fromisoformat("2026-03-28T12:00:00+00:00")
    assert watermark(ops, 1, desired, window=WINDOW, continue_from=since) == since
    assert watermark(ops, 1, desired, window=WINDOW, continue_from=None) == WINDOW.start


# --- rows_from_after: the row count a plan leaves -------------------------------------
# NOW is 2026-03-10T12:00Z; ``session(key, hour)`` starts at that UTC hour of that day.


def test_creates_and_deletes_from_now_on_move_the_count() -> None:
    gone = row(7, session("2026-03-12"))
    operations: list[Operation] = [session("2026-03-11"), session("2026-03-13"),
                                   Delete(7, "2026-03-12")]
    assert rows_from_after(40, operations, [gone], now=NOW) == 41


def test_a_delete_or_update_before_now_does_not_count_but_one_across_now_does() -> None:
    earlier = row(1, session("2026-03-10", hour=11))  # 11:00Z, an hour before NOW
    later = row(2, session("2026-03-10", hour=12))  # 12:00Z, NOW itself
    moved_on = row(3, session("2026-03-10", hour=9))
    moved_back = row(4, session("2026-03-11", hour=9))
    stays = row(5, session("2026-03-12", hour=9))
    operations: list[Operation] = [
        Delete(1, "2026-03-10"),  # before NOW: was not counted
        Delete(2, "2026-03-10"),  # at NOW: was counted
        Update(3, session("2026-03-10", hour=13)),  # 09:00Z -> 13:00Z: now counted
        Update(4, session("2026-03-10", hour=10)),  # 03-11 -> 03-10 10:00Z: no longer
        Update(5, session("2026-03-12", hour=18)),  # later both times
    ]
    rows = [earlier, later, moved_on, moved_back, stays]
    # Counted before: later, moved_back, stays (3); after: moved_on, stays (2).
    assert rows_from_after(3, operations, rows, now=NOW) == 2


def test_no_operation_leaves_the_count() -> None:
    assert rows_from_after(17, [], [row(1, session("2026-03-11"))], now=NOW) == 17
