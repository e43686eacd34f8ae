"""The session column list and COPY types come from the table, in the order rows are sent."""

from __future__ import annotations

from datetime import UTC, datetime

from seriesgen_pipeline.core.reconcile import SessionValues
from seriesgen_pipeline.persistence.repository import session_writes


def test_insert_tuple_puts_each_value_under_its_column() -> None:
    ident = session_writes.SeriesIdentity(series_id=7, series_key="east-yoga",
                                          config_hash="hash-1")
    values = SessionValues(
        occurrence_key="2026-03-09", branch_id="east", title="Yoga", instructor="Ana",
        room="Studio 1", capacity=12, timezone="America/New_York",
        starts_at=datetime(2026, 3, 9, 22, 0, tzinfo=UTC),
        ends_at=datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
    stamp = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    row = dict(zip(session_writes.INSERT_COLUMNS,
                   session_writes._insert_tuple(ident, values, "run-1", stamp), strict=True))
    assert row == {
        "series_id": 7, "origin_series_id": 7, "series_key": "east-yoga",
        "occurrence_key": "2026-03-09", "branch_id": "east", "title": "Yoga",
        "instructor": "Ana", "room": "Studio 1", "capacity": 12,
        "timezone": "America/New_York",
        "starts_at": datetime(2026, 3, 9, 22, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 3, 9, 23, 0, tzinfo=UTC),
        "status": "scheduled", "detached": False, "booked_count": 0,
        "config_hash": "hash-1", "run_id": "run-1", "created_at": stamp, "updated_at": stamp,
    }


def test_copy_types_follow_the_column_types() -> None:
    types = dict(zip(session_writes.INSERT_COLUMNS, session_writes.COPY_TYPES, strict=True))
    assert "id" not in types
    assert types["origin_series_id"] == "int4"
    assert types["series_key"] == "varchar"
    assert types["starts_at"] == "timestamptz"
    assert types["detached"] == "bool"
    assert types["booked_count"] == "int4"
