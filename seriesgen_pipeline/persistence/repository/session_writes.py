"""Bulk writes of ``class_sessions``: inserts (binary ``COPY`` on PostgreSQL), updates, deletes.

``INSERT_COLUMNS``, ``COPY_TYPES``, ``copy_rows`` and ``sqlite_value`` are also what
the benchmark's raw baseline writes with, so both write rows the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.reconcile import SessionValues, Update
from seriesgen_pipeline.persistence.repository.tables import (
    INSERT_BATCH,
    UNPROTECTED,
    copy_into,
    insert_through_staging,
    pg_type,
    sessions_t,
    slices,
    unnest_arrays,
    utcnow,
)


@dataclass(frozen=True)
class SeriesIdentity:
    """What every session row copies from its series."""

    series_id: int
    series_key: str
    config_hash: str | None


def _session_row(values: SessionValues) -> dict[str, Any]:
    return {
        "occurrence_key": values.occurrence_key, "branch_id": values.branch_id,
        "title": values.title, "instructor": values.instructor, "room": values.room,
        "capacity": values.capacity, "timezone": values.timezone,
        "starts_at": values.starts_at, "ends_at": values.ends_at,
    }


# Every column but the key, in table order: the order of ``_insert_tuple`` and of COPY.
INSERT_COLUMNS = tuple(column.name for column in sessions_t.c if column.name != "id")
COPY_TYPES = tuple(pg_type(sessions_t.c[name]) for name in INSERT_COLUMNS)
_STAGING = "seriesgen_new_sessions"


def _insert_tuple(ident: SeriesIdentity, v: SessionValues, run_id: str,
                  stamp: datetime) -> tuple[Any, ...]:
    return (ident.series_id, ident.series_id, ident.series_key, v.occurrence_key, v.branch_id,
            v.title, v.instructor, v.room, v.capacity, v.timezone, v.starts_at, v.ends_at,
            "scheduled", False, 0, ident.config_hash, run_id, stamp, stamp)


class NewSessionsWriter:
    """Rows of series that have none yet, written as they come (``new_sessions_writer``)."""

    def __init__(self, write_row: Any, run_id: str, stamp: datetime) -> None:
        self._write_row = write_row
        self._run_id = run_id
        self._stamp = stamp
        self.written = 0
        self.inserted = 0

    def write(self, ident: SeriesIdentity, rows: Iterable[SessionValues]) -> None:
        """Send the rows of one series."""
        for values in rows:
            self._write_row(_insert_tuple(ident, values, self._run_id, self._stamp))
            self.written += 1


@contextmanager
def new_sessions_writer(conn: sa.Connection, *, run_id: str) -> Iterator[NewSessionsWriter]:
    """Insert sessions of series whose locks the caller holds and that have no rows.

    PostgreSQL streams them (binary COPY straight into ``class_sessions``) while the
    caller goes on producing them, so the server indexes one series' rows while the
    next one is expanded; a row already there fails the unique key, and the
    transaction with it, rather than let a duplicate in. Elsewhere the rows are
    inserted on exit with ``ON CONFLICT DO NOTHING``. After the block, ``inserted``
    counts the rows inserted: fewer than ``written`` means some were in the way.
    """
    stamp = utcnow()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                f"COPY class_sessions ({', '.join(INSERT_COLUMNS)}) FROM STDIN "
                "(FORMAT BINARY)") as copy:
            copy.set_types(list(COPY_TYPES))
            writer = NewSessionsWriter(copy.write_row, run_id, stamp)
            yield writer
        writer.inserted = writer.written
        return
    buffered: list[tuple[Any, ...]] = []
    writer = NewSessionsWriter(buffered.append, run_id, stamp)
    yield writer
    writer.inserted = _insert_tuples_on_conflict(conn, buffered)


def insert_sessions(conn: sa.Connection, *,
                    rows: Sequence[tuple[SeriesIdentity, SessionValues]], run_id: str,
                    series_had_no_rows: bool = False) -> int:
    """Insert sessions; an occurrence that already has a row is left alone. Returns inserts.

    Bulk paths: PostgreSQL copies the rows (binary COPY) into a temporary table and
    inserts them with ``ON CONFLICT DO NOTHING`` in one statement; SQLite runs one
    prepared ``INSERT ... ON CONFLICT DO NOTHING`` over all rows in the driver.
    With ``series_had_no_rows`` (the caller holds the locks of the rows' series
    and read none of their rows with an occurrence key at or after the first one
    it creates), they go through ``new_sessions_writer``.
    """
    if not rows:
        return 0
    if series_had_no_rows:
        with new_sessions_writer(conn, run_id=run_id) as writer:
            for ident, values in rows:
                writer.write(ident, (values,))
        return writer.inserted
    stamp = utcnow()
    tuples = [_insert_tuple(ident, v, run_id, stamp) for ident, v in rows]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            return insert_through_staging(
                cur, table="class_sessions", staging=_STAGING, columns=INSERT_COLUMNS,
                rows=tuples, copy_types=COPY_TYPES,
                on_conflict="ON CONFLICT (origin_series_id, occurrence_key) DO NOTHING")
    return _insert_tuples_on_conflict(conn, tuples)


def _insert_tuples_on_conflict(conn: sa.Connection, tuples: list[tuple[Any, ...]]) -> int:
    if not tuples:
        return 0
    columns = ", ".join(INSERT_COLUMNS)
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        marks = ", ".join("?" for _ in INSERT_COLUMNS)
        # The statements' own rows: not those the triggers log (``total_changes``
        # would count them too, and hide a row left out by a conflict).
        return int(raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO class_sessions ({columns}) VALUES ({marks}) "
            "ON CONFLICT (origin_series_id, occurrence_key) DO NOTHING",
            [tuple(sqlite_value(v) for v in row) for row in tuples]).rowcount)
    payload = [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in tuples]
    created = 0
    for part in slices(payload, INSERT_BATCH):
        created += conn.execute(sa.insert(sessions_t).values(part)).rowcount
    return created


def copy_rows(cur: Any, table: str, columns: str, tuples: Iterable[tuple[Any, ...]]) -> None:
    """Binary ``COPY`` of session ``tuples`` into ``table`` (PostgreSQL, psycopg 3)."""
    copy_into(cur, table, columns, tuples, COPY_TYPES)


def sqlite_value(value: Any) -> Any:
    """What SQLAlchemy would store on SQLite: naive UTC text for instants, 0/1 for booleans."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


_UPDATED = ("branch_id", "title", "instructor", "room", "capacity", "timezone", "starts_at",
            "ends_at", "config_hash", "run_id", "updated_at")
# Rows per set-based UPDATE on PostgreSQL.
_UPDATE_BATCH = 5000


def update_sessions(conn: sa.Connection, *,
                    rows: Sequence[tuple[SeriesIdentity, Update]], run_id: str) -> int:
    """Rewrite generator-owned attributes of unprotected rows. Returns rows updated.

    Protection is checked in the statement itself: a row booked, detached or
    cancelled since it was read is not touched. On PostgreSQL one statement
    updates thousands of rows from arrays (``unnest``), so statement triggers
    fire once per batch, not once per row.
    """
    if not rows:
        return 0
    stamp = utcnow()
    params = []
    for ident, update in rows:
        values = _session_row(update.values)
        values.pop("occurrence_key")
        values.update(config_hash=ident.config_hash, run_id=run_id, updated_at=stamp)
        params.append({"row_id": update.id, **{f"v_{k}": v for k, v in values.items()}})
    if conn.dialect.name == "postgresql":
        return sum(_update_from_arrays(conn, part) for part in slices(params, _UPDATE_BATCH))
    stmt = (
        sa.update(sessions_t)
        .where(sessions_t.c.id == sa.bindparam("row_id"), UNPROTECTED)
        .values({name: sa.bindparam(f"v_{name}") for name in _UPDATED})
    )
    return conn.execute(stmt, params).rowcount


def _update_from_arrays(conn: sa.Connection, params: list[dict[str, Any]]) -> int:
    """One ``UPDATE … FROM unnest(…)`` of ``params`` (PostgreSQL)."""
    types = {"row_id": "int8", **{f"v_{name}": pg_type(sessions_t.c[name])
                                   for name in _UPDATED}}
    unprotected = UNPROTECTED.compile(dialect=conn.dialect,
                                      compile_kwargs={"literal_binds": True})
    stmt = sa.text(
        "UPDATE class_sessions SET "
        + ", ".join(f"{name} = v.v_{name}" for name in _UPDATED)
        + f" FROM {unnest_arrays(types)} AS v(" + ", ".join(types)
        + f") WHERE class_sessions.id = v.row_id AND {unprotected}")
    return conn.execute(stmt, {p: [row[p] for row in params] for p in types}).rowcount


def delete_sessions(conn: sa.Connection, *, ids: Sequence[int]) -> int:
    """Delete unprotected rows by id. Returns rows deleted."""
    deleted = 0
    for part in slices(list(ids), 5000):
        deleted += conn.execute(
            sa.delete(sessions_t).where(sessions_t.c.id.in_(part), UNPROTECTED)).rowcount
    return deleted

