"""Contract of ``core.reconcile.plan_reconciliation`` (SPEC §5, FR-013).

Given the sessions a series wants and its existing rows, as of ``now``:

- every wanted occurrence without a row is created (ordered by occurrence key);
- a future row whose occurrence is still wanted is updated in place only when a
  generator-owned attribute differs (instants compared as instants);
- a future row whose occurrence is no longer wanted is deleted;
- a past row (``starts_at < now``) is never created, changed or deleted, and keeps
  its occurrence: no second row is planned for it;
- a future protected row (``detached``, ``booked_count > 0`` or not ``scheduled``,
  e.g. cancelled) is left alone, keeps its occurrence (no replacement) and is
  listed as ``protected``;
- identical desired and existing sessions give an empty plan;
- ``ordered_operations`` lists the plan's creates (the values themselves), updates
  and deletes (with the occurrence of the deleted row) in occurrence-key order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from seriesgen_pipeline.core.reconcile import (
    CANCELLED,
    SCHEDULED,
    Delete,
    ExistingSession,
    ReconciliationPlan,
    SessionValues,
    Update,
    ordered_operations,
    plan_reconciliation,
)

NOW = datetime.fromisoformat("2026-03-10T12:00:00+00:00")


def session(key: str, hour: int = 18, **overrides: Any) -> SessionValues:
    starts = datetime.fromisoformat(f"{key}T{hour:02d}:00:00+00:00")
    values: dict[str, Any] = {
        "occurrence_key": key, "branch_id": "east", "title": "Yoga Basics",
        "instructor": "Ana", "room": "Studio 2", "capacity": 20, "timezone": "UTC",
        "starts_at": starts, "ends_at": starts + timedelta(minutes=60),
    }
    values.update(overrides)
    return SessionValues(**values)


def row(row_id: int, values: SessionValues, *, status: str = SCHEDULED,
        detached: bool = False, booked_count: int = 0) -> ExistingSession:
    return ExistingSession(id=row_id, values=values, status=status, detached=detached,
                           booked_count=booked_count)


def plan(desired: list[SessionValues], existing: list[ExistingSession]) -> ReconciliationPlan:
    return plan_reconciliation(desired, existing, now=NOW)


def empty(result: ReconciliationPlan) -> bool:
    return result == ReconciliationPlan((), (), (), ())


def test_creates_every_missing_occurrence_in_key_order() -> None:
    wanted = [session("2026-03-12"), session("2026-03-10"), session("2026-03-11")]
    result = plan(wanted, [])
    assert result.creates == (session("2026-03-10"), session("2026-03-11"),
                              session("2026-03-12"))
    assert result.updates == ()
    assert result.deletes == ()
    assert result.protected == ()
    assert not result.is_empty


def test_creates_only_the_missing_ones() -> None:
    wanted = [session("2026-03-11"), session("2026-03-12"), session("2026-03-13")]
    existing = [row(1, session("2026-03-11")), row(2, session("2026-03-13"))]
    result = plan(wanted, existing)
    assert result.creates == (session("2026-03-12"),)
    assert result.updates == ()
    assert result.deletes == ()


def test_identical_desired_and_existing_is_an_empty_plan() -> None:
    wanted = [session("2026-03-11"), session("2026-03-12")]
    existing = [row(1, session("2026-03-11")), row(2, session("2026-03-12"))]
    result = plan(wanted, existing)
    assert empty(result)
    assert result.is_empty


def test_empty_desired_and_existing_is_an_empty_plan() -> None:
    assert empty(plan([], []))


def test_instants_are_compared_as_instants() -> None:
    plus_one = timezone(timedelta(hours=1))
    stored = session("2026-03-11")
    same_instant = replace(
        stored,
        starts_at=stored.starts_at.astimezone(plus_one),
        ends_at=stored.ends_at.astimezone(plus_one),
    )
    assert empty(plan([stored], [row(1, same_instant)]))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("title", "Yoga Advanced"),
        ("instructor", "Bea"),
        ("instructor", None),
        ("room", "Studio 3"),
        ("capacity", 25),
        ("capacity", 0),
        ("timezone", "America/New_York"),
        ("branch_id", "west"),
        ("starts_at", datetime.fromisoformat("2026-03-11T19:00:00+00:00")),
        ("ends_at", datetime.fromisoformat("2026-03-11T19:30:00+00:00")),
    ],
)
def test_updates_in_place_when_an_attribute_differs(name: str, value: Any) -> None:
    current = session("2026-03-11")
    wanted = replace(current, **{name: value})
    result = plan([session("2026-03-12"), wanted],
                  [row(7, current), row(8, session("2026-03-12"))])
    assert result.updates == (Update(7, wanted),)
    assert result.creates == ()
    assert result.deletes == ()
    assert result.protected == ()


def test_time_of_day_edit_keeps_the_occurrence_and_updates_it() -> None:
    current = [row(1, session("2026-03-11", 18)), row(2, session("2026-03-12", 18))]
    wanted = [session("2026-03-11", 19), session("2026-03-12", 19)]
    result = plan(wanted, current)
    assert result.updates == (Update(1, wanted[0]), Update(2, wanted[1]))
    assert result.creates == ()
    assert result.deletes == ()


def test_deletes_future_rows_no_longer_wanted() -> None:
    existing = [row(3, session("2026-03-13")), row(1, session("2026-03-11")),
                row(2, session("2026-03-12"))]
    result = plan([session("2026-03-12")], existing)
    assert result.deletes == (1, 3)
    assert result.creates == ()
    assert result.updates == ()


def test_deletes_are_ordered_by_occurrence_key() -> None:
    existing = [row(30, session("2026-03-11")), row(10, session("2026-03-13")),
                row(20, session("2026-03-12"))]
    assert plan([], existing).deletes == (30, 20, 10)


def test_past_rows_are_never_touched() -> None:
    past_unwanted = row(1, session("2026-03-09"))
    past_changed = row(2, session("2026-03-10", hour=9))  # 09:00Z, before now (12:00Z)
    wanted_for_past = session("2026-03-10", hour=9, title="Renamed")
    result = plan([wanted_for_past, session("2026-03-11")],
                  [past_unwanted, past_changed, row(3, session("2026-03-11"))])
    assert empty(result)


def test_no_second_row_for_an_occurrence_whose_row_is_past() -> None:
    # The row for 03-10 started at 09:00Z (past); the edited rule now wants it at 13:00Z
    # (future). The occurrence keeps its row: nothing is created for it.
    past = row(5, session("2026-03-10", hour=9))
    result = plan([session("2026-03-10", hour=13)], [past])
    assert result.creates == ()
    assert result.updates == ()
    assert result.deletes == ()


def test_row_starting_exactly_now_is_not_past() -> None:
    at_now = row(4, session("2026-03-10", hour=12))
    result = plan([], [at_now])
    assert result.deletes == (4,)
    wanted = session("2026-03-10", hour=12, room="Studio 9")
    assert plan([wanted], [at_now]).updates == (Update(4, wanted),)


PROTECTIONS = [
    pytest.param({"detached": True}, id="detached"),
    pytest.param({"booked_count": 1}, id="booked"),
    pytest.param({"booked_count": 12}, id="fully-booked"),
    pytest.param({"status": CANCELLED}, id="cancelled"),
    pytest.param({"status": CANCELLED, "detached": True, "booked_count": 3}, id="all-three"),
]


@pytest.mark.parametrize("protection", PROTECTIONS)
def test_protected_row_is_not_updated(protection: dict[str, Any]) -> None:
    current = session("2026-03-11")
    wanted = replace(current, title="Yoga Advanced", starts_at=current.starts_at
                     + timedelta(hours=1), ends_at=current.ends_at + timedelta(hours=1))
    result = plan([wanted], [row(9, current, **protection)])
    assert result.updates == ()
    assert result.creates == ()
    assert result.deletes == ()
    assert result.protected == (9,)
    assert result.is_empty


@pytest.mark.parametrize("protection", PROTECTIONS)
def test_protected_row_is_not_deleted(protection: dict[str, Any]) -> None:
    result = plan([], [row(9, session("2026-03-11"), **protection)])
    assert result.deletes == ()
    assert result.protected == (9,)
    assert result.is_empty


@pytest.mark.parametrize("protection", PROTECTIONS)
def test_protected_row_gets_no_replacement(protection: dict[str, Any]) -> None:
    wanted = [session("2026-03-11"), session("2026-03-12")]
    result = plan(wanted, [row(9, session("2026-03-11"), **protection)])
    assert result.creates == (session("2026-03-12"),)
    assert result.protected == (9,)


def test_booked_count_zero_and_scheduled_is_not_protected() -> None:
    existing = row(9, session("2026-03-11"), booked_count=0, detached=False)
    assert not existing.protected
    assert plan([], [existing]).deletes == (9,)


def test_past_protected_row_is_left_alone_and_not_counted() -> None:
    result = plan([session("2026-03-09", title="Renamed")],
                  [row(9, session("2026-03-09"), booked_count=4)])
    assert empty(result)


def test_mixed_plan() -> None:
    existing = [
        row(1, session("2026-03-09")),  # past, unwanted: kept
        row(2, session("2026-03-11")),  # unchanged
        row(3, session("2026-03-12")),  # title changed -> update
        row(4, session("2026-03-13")),  # no longer wanted -> delete
        row(5, session("2026-03-14"), booked_count=2),  # booked, changed -> protected
        row(6, session("2026-03-15"), status=CANCELLED),  # cancelled, unwanted -> protected
        row(7, session("2026-03-16"), detached=True),  # detached, wanted -> protected
    ]
    wanted = [
        session("2026-03-11"),
        session("2026-03-12", title="Pilates"),
        session("2026-03-14", title="Pilates"),
        session("2026-03-16", title="Pilates"),
        session("2026-03-17"),  # new -> create
        session("2026-03-18"),  # new -> create
    ]
    result = plan(wanted, existing)
    assert result.creates == (session("2026-03-17"), session("2026-03-18"))
    assert result.updates == (Update(3, session("2026-03-12", title="Pilates")),)
    assert result.deletes == (4,)
    assert result.protected == (5, 6, 7)
    assert not result.is_empty


def test_plan_is_idempotent_once_applied() -> None:
    existing = [row(1, session("2026-03-11")), row(2, session("2026-03-12", room="Old"))]
    wanted = [session("2026-03-11"), session("2026-03-12"), session("2026-03-13")]
    first = plan(wanted, existing)
    assert first.creates == (session("2026-03-13"),)
    assert first.updates == (Update(2, session("2026-03-12")),)
    # apply it
    applied = [row(1, session("2026-03-11")), row(2, session("2026-03-12")),
               row(3, session("2026-03-13"))]
    assert empty(plan(wanted, applied))


def test_operations_follow_occurrence_order_across_kinds() -> None:
    existing = [row(1, session("2026-03-11")), row(2, session("2026-03-12", room="Old")),
                row(3, session("2026-03-14")), row(4, session("2026-03-16"))]
    wanted = [session("2026-03-11"), session("2026-03-12"), session("2026-03-13"),
              session("2026-03-15"), session("2026-03-16", title="Pilates")]
    operations = ordered_operations(plan(wanted, existing), existing)
    assert operations == [Update(2, session("2026-03-12")), session("2026-03-13"),
                          Delete(3, "2026-03-14"), session("2026-03-15"),
                          Update(4, session("2026-03-16", title="Pilates"))]
    assert [op.occurrence_key for op in operations] == [
        "2026-03-12", "2026-03-13", "2026-03-14", "2026-03-15", "2026-03-16"]


def test_creates_alone_are_the_desired_sessions_as_they_are() -> None:
    wanted = [session("2026-03-11"), session("2026-03-12")]
    operations = ordered_operations(plan(wanted, []), [])
    assert operations == wanted
    assert all(op is value for op, value in zip(operations, wanted, strict=True))
