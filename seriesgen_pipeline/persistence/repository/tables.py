"""The tables the repository reads and writes, and what every query of it shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.persistence.models import (
    Branch,
    ClassSeries,
    ClassSession,
    GenerationLog,
    GenerationRun,
    GenerationState,
    Notification,
    SchedulingConfig,
    SeriesChanges,
    SeriesConflict,
    SeriesSnapshot,
    SessionChange,
    SessionOverlap,
    SessionOverlapsState,
    SessionRemoval,
)

series_t = ClassSeries.__table__


sessions_t = ClassSession.__table__


configs_t = SchedulingConfig.__table__


branches_t = Branch.__table__


log_t = GenerationLog.__table__
runs_t = GenerationRun.__table__


snapshots_t = SeriesSnapshot.__table__


conflicts_t = SeriesConflict.__table__


notifications_t = Notification.__table__


state_t = GenerationState.__table__
changes_t = SeriesChanges.__table__
session_changes_t = SessionChange.__table__
session_removals_t = SessionRemoval.__table__
overlaps_t = SessionOverlap.__table__
overlaps_state_t = SessionOverlapsState.__table__


# Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
INSERT_BATCH = 1000


UNPROTECTED = sa.and_(
    sessions_t.c.detached == sa.false(),
    sessions_t.c.booked_count == 0,
    sessions_t.c.status == "scheduled",
)
"""A session the generator may still change: not detached, not booked, scheduled."""


def utcnow() -> datetime:
    """The wall clock, for audit columns (``created_at``, ``updated_at``)."""
    return datetime.now(UTC)


def uncoerced(column: Any) -> Any:
    """``column`` as the driver returns it, without SQLAlchemy's result conversion."""
    return sa.type_coerce(column, sa.types.NullType()).label(column.name)


def raw_columns(conn: sa.Connection, columns: Iterable[Any]) -> list[Any]:
    """``columns`` as the driver returns them, without SQLAlchemy's result conversions.

    A conversion that fails (a date that does not exist, JSON that does not parse)
    would fail the whole result; read raw, each value is checked on its own by its
    ``core.readers`` reader. Dates are read as text on PostgreSQL too, where the
    driver rejects some stored values (``infinity``) that the server accepts.
    """
    out: list[Any] = []
    for column in columns:
        if isinstance(column.type, sa.Date) and conn.dialect.name == "postgresql":
            out.append(sa.cast(column, sa.Text).label(column.name))
        elif isinstance(column.type, sa.Date | sa.DateTime | sa.JSON | sa.types.TypeDecorator
                        | sa.Boolean):
            out.append(uncoerced(column))
        else:
            out.append(column)
    return out


class UnreadableRowError(Exception):
    """A row that one series depends on holds a value that cannot be read.

    Attributes:
        series_id: the series that fails.
        error: the value, its row, table and column, for the series' error.
    """

    def __init__(self, series_id: int, error: UnreadableValueError) -> None:
        self.series_id = series_id
        self.error = error
        super().__init__(str(error))


def slices(items: list[Any], size: int) -> Iterable[list[Any]]:
    """``items`` in consecutive lists of at most ``size`` (for bounded ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def among(conn: sa.Connection, column: Any, values: Sequence[Any], size: int = 2000, *,
          postgres_size: int | None = None) -> Iterable[Any]:
    """Conditions that together select the rows whose ``column`` is in ``values``, one
    statement each (``among_parts``, ``is_among``)."""
    for part in among_parts(conn, values, size, postgres_size=postgres_size):
        yield is_among(conn, column, part)


def among_parts(conn: sa.Connection, values: Sequence[Any], size: int = 2000, *,
                postgres_size: int | None = None) -> Iterable[list[Any]]:
    """``values`` in the parts one statement each takes: on PostgreSQL, where each part
    goes as one bound array, all at once, or arrays of at most ``postgres_size`` (for a
    statement whose plan must stay the same however many values it is given); lists of
    at most ``size`` elsewhere."""
    if conn.dialect.name != "postgresql":
        yield from slices(list(values), size)
    elif postgres_size is not None:
        yield from slices(list(values), postgres_size)
    elif values:
        yield list(values)


def is_among(conn: sa.Connection, column: Any, part: list[Any]) -> Any:
    """``column`` is one of ``part``: on PostgreSQL ``= ANY(array)``, a single bound
    parameter however many values (retention's deletes and the double-booking reads
    of 5,000 series took half the time or less than with ``IN`` lists of 2,000
    bound values), elsewhere ``IN``."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, part, type_=postgresql.ARRAY(column.type)))
    return column.in_(part)


# PostgreSQL's name for each kind of column, as binary ``COPY`` sends its values and as
# arrays of them are cast.
_PG_TYPE_NAMES = ((sa.Boolean, "bool"), (sa.Integer, "int4"), (sa.DateTime, "timestamptz"),
                  (sa.String, "varchar"), (sa.JSON, "json"))


def pg_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type name of ``column``'s values."""
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    return next(name for base, name in _PG_TYPE_NAMES if isinstance(kind, base))


def unnest_arrays(types: Mapping[str, str]) -> str:
    """``unnest(CAST(:name AS type[]), …)``: one bound array per ``name -> type``, as
    columns in that order (PostgreSQL). A statement so built writes thousands of rows
    from one set of parameters."""
    return "unnest(" + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in types.items()) + ")"


def insert_through_staging(cur: Any, *, table: str, staging: str, columns: Sequence[str],
                           rows: Iterable[tuple[Any, ...]], on_conflict: str,
                           copy_types: Sequence[str] | None = None) -> int:
    """Insert ``rows`` into ``table`` in one statement (PostgreSQL, a psycopg 3 cursor).

    They are copied into the temporary table ``staging`` (binary ``COPY`` when
    ``copy_types`` are given), inserted from it with ``on_conflict`` (an ``ON
    CONFLICT`` clause), and the staging rows deleted. Returns the rows inserted or
    updated.
    """
    names = ", ".join(columns)
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
                f"SELECT {names} FROM {table} WITH NO DATA")
    copy_into(cur, staging, names, rows, copy_types)
    cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {on_conflict}")
    written = cur.rowcount
    cur.execute(f"DELETE FROM {staging}")
    return int(written)


def copy_into(cur: Any, table: str, columns: str, rows: Iterable[tuple[Any, ...]],
              types: Sequence[str] | None = None) -> None:
    """``COPY`` of ``rows`` into ``table``'s ``columns`` (a comma-separated list;
    PostgreSQL, a psycopg 3 cursor): binary when the columns' ``types`` are given."""
    binary = " (FORMAT BINARY)" if types else ""
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN{binary}") as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
