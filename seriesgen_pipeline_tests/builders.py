"""Test data written with plain SQL inserts, independent of the loader under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo

STAMP = datetime(2026, 1, 1, tzinfo=UTC)

BASE = {
    "horizon_days": 28, "timezone": "UTC", "default_duration_minutes": 60,
    "default_capacity": 20, "open_time": "06:00", "close_time": "22:00",
    "closed_dates": [], "generation_enabled": True, "cleanup_grace_days": 0,
}
_CONFIG_NONE = {name: None for name in BASE}


def seed_base(engine: sa.Engine, **overrides: Any) -> None:
    """The base configuration (complete unless overridden with None)."""
    with engine.begin() as conn:
        conn.execute(sa.insert(repo.configs_t),
                     {**BASE, **overrides, "scope": "base", "updated_at": STAMP})


def seed_branch(engine: sa.Engine, branch_id: str, **config: Any) -> None:
    """A branch and, when ``config`` is given, its branch-scope configuration."""
    with engine.begin() as conn:
        conn.execute(sa.insert(repo.branches_t), {"id": branch_id, "name": branch_id.title()})
        if config:
            conn.execute(sa.insert(repo.configs_t), {**_CONFIG_NONE, **config, "scope": "branch",
                                                     "branch_id": branch_id, "updated_at": STAMP})


def seed_series(engine: sa.Engine, key: str, *, branch: str = "east",
                recurrence: str = "FREQ=WEEKLY;BYDAY=MO,WE", start_time: str = "18:00",
                start_date: date = date(2026, 1, 5), end_date: date | None = None,
                config: dict[str, Any] | None = None, **fields: Any) -> int:
    """A series (and its series-scope configuration); returns its id."""
    row = {
        "key": key, "branch_id": branch, "title": fields.pop("title", key.title()),
        "instructor": fields.pop("instructor", "Ana"), "room": fields.pop("room", "Studio 2"),
        "capacity": fields.pop("capacity", None), "recurrence": recurrence,
        "start_time": start_time, "duration_minutes": fields.pop("duration_minutes", 60),
        "start_date": start_date, "end_date": end_date, "exdates": fields.pop("exdates", []),
        "version": 1, "created_at": STAMP, "updated_at": STAMP,
    }
    assert not fields, f"unknown fields {fields}"
    with engine.begin() as conn:
        series_id = conn.execute(sa.insert(repo.series_t).returning(repo.series_t.c.id),
                                 row).scalar_one()
        if config:
            conn.execute(sa.insert(repo.configs_t), {**_CONFIG_NONE, **config, "scope": "series",
                                                     "series_id": series_id,
                                                     "updated_at": STAMP})
    return series_id


def session_rows(engine: sa.Engine, key: str | None = None) -> list[dict[str, Any]]:
    """Every session column (but the audit ones), by series then start."""
    t = repo.sessions_t
    cols = [c for c in t.c if c.name not in ("id", "created_at", "updated_at", "run_id")]
    query = sa.select(*cols).order_by(t.c.series_key, t.c.starts_at)
    if key:
        query = query.where(t.c.series_key == key)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def execute(engine: sa.Engine, sql: str, **params: Any) -> None:
    """Raw SQL, as another writer (the booking app, an operator) would run it."""
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def latest_snapshots(engine: sa.Engine) -> dict[str, sa.Row[Any]]:
    """Each series' latest stored snapshot (what its last run generated from), by key."""
    with engine.connect() as conn:
        return {row.series_key: row for row in conn.execute(sa.text(
            "SELECT s.series_key, s.run_id, s.fingerprint, s.config_hash "
            "FROM series_snapshots s WHERE NOT EXISTS (SELECT 1 FROM series_snapshots n "
            "WHERE n.series_key = s.series_key AND n.taken_at > s.taken_at)"))}


def wrong_row_counts(engine: sa.Engine) -> list[tuple[int, int | None, int]]:
    """``(series id, stored, actual)`` of every generation state whose ``row_count`` is
    not the number of its series' rows starting at or after its ``as_of``."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT series_id, row_count, n FROM (SELECT g.series_id, g.row_count, "
            "(SELECT count(*) FROM class_sessions c WHERE c.origin_series_id = g.series_id "
            "AND c.starts_at >= g.as_of) AS n FROM generation_state g) AS counted "
            "WHERE row_count IS NULL OR row_count <> n ORDER BY series_id"))]


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements sent through ``engine`` meanwhile."""
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
