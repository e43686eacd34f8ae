"""Read-only listings for the command line: sessions, conflicts, recent runs.

The booking app writes these tables too, so a row may hold a value that cannot be
read. A listing never fails on one: it leaves that row out and says which row,
column and value, so the command can print every readable row and report the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.persistence.repository import (
    conflicts_t,
    log_t,
    series_t,
    sessions_t,
    uncoerced,
)

SESSION_FIELDS = ("series_key", "occurrence_key", "branch", "title", "instructor", "room",
                  "capacity", "timezone", "starts_at", "ends_at", "local_start", "status",
                  "detached", "booked_count")


@dataclass
class Listing:
    """The readable rows as documents, and one line per row left out."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


class _Bad(Exception):
    def __init__(self, column: str, value: Any, reason: str) -> None:
        self.column, self.value, self.reason = column, value, reason
        super().__init__(reason)


def _read_rows(conn: sa.Connection, query: sa.Select[Any], out: Listing, *, table: str,
               columns: Mapping[str, Any], required: tuple[str, ...] = ()
               ) -> Iterator[dict[str, Any]]:
    """Each row of ``query`` with its ``columns`` read; an unreadable row goes to ``out``."""
    for row in conn.execute(query).mappings():
        try:
            values = {}
            for column, reader in columns.items():
                try:
                    values[column] = reader(row[column])
                except readers.UnreadableValue as exc:
                    raise _Bad(column, row[column], exc.reason) from None
                if values[column] is None and column in required:
                    raise _Bad(column, None, "is missing")
        except _Bad as bad:
            name = f"id {row['id']}" + (f" (series '{row['series_key']}')"
                                        if "series_key" in row else "")
            out.unreadable.append(UnreadableValueError(
                table, name, bad.column, bad.value, bad.reason).reason)
            continue
        yield values


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _read_zone(value: Any) -> str | None:
    name = readers.read_text(value)
    if name is not None:
        try:
            _zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise readers.UnreadableValue("is not a known time zone") from None
    return name


_SESSION_READERS = {
    "series_key": readers.read_text, "occurrence_key": readers.read_text,
    "branch_id": readers.read_text, "title": readers.read_text,
    "instructor": readers.read_text, "room": readers.read_text, "capacity": readers.read_int,
    "timezone": _read_zone, "starts_at": readers.read_instant,
    "ends_at": readers.read_instant, "status": readers.read_text, "detached": readers.read_bool,
    "booked_count": readers.read_int,
}


def list_sessions(conn: sa.Connection, *, series: str | None = None,
                  branch: str | None = None, date_from: date | None = None,
                  date_to: date | None = None) -> Listing:
    """Sessions as SPEC §9 prints them, sorted by series then ``starts_at``."""
    t = sessions_t
    columns = [uncoerced(t.c[name]) if name in ("starts_at", "ends_at", "detached")
               else t.c[name] for name in ("id", *_SESSION_READERS)]
    query = sa.select(*columns).order_by(t.c.series_key, t.c.starts_at, t.c.id)
    if series:
        query = query.where(t.c.series_key == series)
    if branch:
        query = query.where(t.c.branch_id == branch)
    if date_from:
        query = query.where(t.c.starts_at >= datetime.combine(date_from, datetime.min.time(),
                                                              tzinfo=UTC))
    if date_to:
        query = query.where(t.c.starts_at < datetime.combine(
            date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    out = Listing()
    for r in _read_rows(conn, query, out, table="class_sessions", columns=_SESSION_READERS,
                        required=("series_key", "timezone", "starts_at", "ends_at")):
        out.documents.append({
            "series_key": r["series_key"], "occurrence_key": r["occurrence_key"],
            "branch": r["branch_id"], "title": r["title"], "instructor": r["instructor"],
            "room": r["room"], "capacity": r["capacity"], "timezone": r["timezone"],
            "starts_at": format_instant(r["starts_at"]), "ends_at": format_instant(r["ends_at"]),
            "local_start": r["starts_at"].astimezone(_zone(r["timezone"])).isoformat(),
            "status": r["status"], "detached": bool(r["detached"]),
            "booked_count": r["booked_count"],
        })
    return out


def _read_dates(value: Any) -> list[str]:
    dates = readers.read_date_list(value)
    return [d.isoformat() for d in dates or ()]


_CONFLICT_READERS = {
    "series_key": readers.read_text, "code": readers.read_text,
    "severity": readers.read_text, "message": readers.read_text, "dates": _read_dates,
    "config_hash": readers.read_text, "detected_at": readers.read_instant,
}


def list_conflicts(conn: sa.Connection) -> Listing:
    """The current conflicts, sorted by series, severity and code."""
    t = conflicts_t
    columns = [uncoerced(t.c[name]) if name in ("dates", "detected_at") else t.c[name]
               for name in ("id", *_CONFLICT_READERS)]
    query = sa.select(*columns).order_by(t.c.series_key, t.c.severity, t.c.code)
    out = Listing()
    for r in _read_rows(conn, query, out, table="series_conflicts", columns=_CONFLICT_READERS):
        out.documents.append({
            "series_key": r["series_key"], "code": r["code"], "severity": r["severity"],
            "message": r["message"], "dates": r["dates"], "config_hash": r["config_hash"],
            "detected_at": format_instant(r["detected_at"]) if r["detected_at"] else None,
        })
    return out


_LOG_READERS = {
    "run_id": readers.read_text, "series_key": readers.read_text, "status": readers.read_text,
    "started_at": readers.read_instant, "finished_at": readers.read_instant,
    "created": readers.read_int, "updated": readers.read_int, "deleted": readers.read_int,
}


def recent_log_rows(conn: sa.Connection, *, since: datetime) -> tuple[Listing, dict[str, str]]:
    """``generation_log`` rows started since ``since``, and each series key's branch."""
    t = log_t
    columns = [uncoerced(t.c[name]) if name in ("started_at", "finished_at") else t.c[name]
               for name in ("id", *_LOG_READERS)]
    out = Listing()
    out.documents.extend(_read_rows(
        conn, sa.select(*columns).where(t.c.started_at >= since), out, table="generation_log",
        columns=_LOG_READERS, required=("started_at", "finished_at")))
    branches: dict[str, str] = dict(conn.execute(sa.select(series_t.c.key,
                                                           series_t.c.branch_id)).all())
    for key, branch_id in conn.execute(sa.select(sessions_t.c.series_key,
                                                 sessions_t.c.branch_id).distinct()):
        branches.setdefault(key, branch_id)
    return out, branches
