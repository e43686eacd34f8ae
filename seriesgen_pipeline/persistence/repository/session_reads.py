"""The existing sessions the planner compares against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.core.reconcile import ExistingSession, SessionValues
from seriesgen_pipeline.persistence.repository.tables import (
    UnreadableRowError,
    sessions_t,
    slices,
    uncoerced,
)


def _values_from_row(row: Mapping[str, Any]) -> SessionValues:
    return SessionValues(
        occurrence_key=row["occurrence_key"], branch_id=row["branch_id"], title=row["title"],
        instructor=row["instructor"], room=row["room"], capacity=row["capacity"],
        timezone=row["timezone"], starts_at=row["starts_at"], ends_at=row["ends_at"],
    )


_EXISTING_COLUMNS = ("id", "origin_series_id", "occurrence_key", "branch_id", "title",
                     "instructor", "room", "capacity", "timezone", "starts_at", "ends_at",
                     "status", "detached", "booked_count")


def load_existing_sessions(
    conn: sa.Connection, *, since: Mapping[int, tuple[datetime, str]]
) -> dict[int, list[ExistingSession]]:
    """Rows the planner needs, per origin series.

    Args:
        since: per series id, ``(now, first wanted occurrence key)``: rows that start
            at or after ``now`` or whose occurrence key is at or after the key.

    Raises:
        UnreadableRowError: a row holds a value that cannot be read (the first found);
            its series fails, the caller goes on with the others.
    """
    out: dict[int, list[ExistingSession]] = defaultdict(list)
    if not since:
        return out
    low_now = min(now for now, _ in since.values())
    low_key = min(key for _, key in since.values())
    cols = [sessions_t.c[name] for name in _EXISTING_COLUMNS]
    for part in slices(sorted(since), 2000):
        where = (sessions_t.c.origin_series_id.in_(part),
                 sa.or_(sessions_t.c.starts_at >= low_now, sessions_t.c.occurrence_key >= low_key))
        try:
            rows = [_existing_session(row) for row in conn.execute(
                sa.select(*cols).where(*where)).mappings()]
        except (ValueError, TypeError) as exc:
            # A value another writer corrupted: find it, reading this slice raw.
            raw = [uncoerced(c) for c in cols]
            for row in conn.execute(sa.select(*raw).where(*where)).mappings():
                _read_session_row(row)
            raise exc  # not a stored value after all
        for session, series_id in rows:
            now, key = since[series_id]
            if session.values.starts_at < now and session.values.occurrence_key < key:
                continue
            out[series_id].append(session)
    return out


def _existing_session(row: Mapping[str, Any]) -> tuple[ExistingSession, int]:
    booked = row["booked_count"] or 0
    if booked.__class__ is not int:
        raise TypeError("booked_count")
    return ExistingSession(
        id=row["id"], values=_values_from_row(row), status=row["status"],
        detached=bool(row["detached"]), booked_count=booked,
    ), row["origin_series_id"]


_SESSION_READERS: dict[str, Any] = {
    "occurrence_key": readers.read_text, "starts_at": readers.read_instant,
    "ends_at": readers.read_instant, "booked_count": readers.read_int,
    "capacity": readers.read_int, "detached": readers.read_bool, "status": readers.read_text,
    "timezone": readers.read_text,
}


def _read_session_row(row: Mapping[str, Any]) -> None:
    """Check a raw ``class_sessions`` row; raise ``UnreadableRowError`` at its first bad value."""
    for column, reader in _SESSION_READERS.items():
        try:
            value = reader(row[column])
        except readers.UnreadableValue as exc:
            raise UnreadableRowError(row["origin_series_id"], UnreadableValueError(
                "class_sessions", f"id {row['id']} (occurrence {row['occurrence_key']})",
                column, row[column], exc.reason)) from None
        if value is None and column in ("starts_at", "ends_at", "occurrence_key"):
            raise UnreadableRowError(row["origin_series_id"], UnreadableValueError(
                "class_sessions", f"id {row['id']}", column, None, "is missing"))

