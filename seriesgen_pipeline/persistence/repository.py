"""Queries and bulk writes. Keyword-only, take a connection, never commit.

Conversion between rows and core values lives here and nowhere else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues
from seriesgen_pipeline.core.conflicts import Overlap
from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.core.reconcile import ExistingSession, SessionValues, Update
from seriesgen_pipeline.core.series import SeriesSpec
from seriesgen_pipeline.persistence.models import (
    Branch,
    ClassSeries,
    ClassSession,
    GenerationLog,
    GenerationState,
    Notification,
    SchedulingConfig,
    SeriesConflict,
    SeriesSnapshot,
)

series_t = ClassSeries.__table__
sessions_t = ClassSession.__table__
configs_t = SchedulingConfig.__table__
branches_t = Branch.__table__
log_t = GenerationLog.__table__
snapshots_t = SeriesSnapshot.__table__
conflicts_t = SeriesConflict.__table__
notifications_t = Notification.__table__
state_t = GenerationState.__table__

# Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
_INSERT_BATCH = 1000


def utcnow() -> datetime:
    """The wall clock, for audit columns (``created_at``, ``updated_at``)."""
    return datetime.now(UTC)


# ---------------------------------------------------------------- configuration

_CONFIG_READERS = {
    "horizon_days": readers.read_int, "timezone": readers.read_text,
    "default_duration_minutes": readers.read_int, "default_capacity": readers.read_int,
    "open_time": readers.read_text, "close_time": readers.read_text,
    "closed_dates": readers.read_date_list, "generation_enabled": readers.read_bool,
    "cleanup_grace_days": readers.read_int,
}


def config_values_from_row(row: Mapping[str, Any], name: str = "") -> ConfigValues:
    """A ``scheduling_configs`` row as core ``ConfigValues``.

    A value that cannot be read is left unset and recorded in ``unreadable``
    (``name`` says how the error names the row, e.g. ``branch 'east'``).
    """
    values: dict[str, Any] = {}
    unreadable: dict[str, UnreadableValueError] = {}
    scope = row.get("scope")
    for field_name in CONFIG_FIELDS:
        raw = row[field_name]
        try:
            values[field_name] = _CONFIG_READERS[field_name](raw)
        except readers.UnreadableValue as exc:
            values[field_name] = None
            unreadable[field_name] = UnreadableValueError(
                "scheduling_configs", name or str(scope), field_name, raw, exc.reason,
                scope=scope)
    if values["closed_dates"] is not None:
        values["closed_dates"] = tuple(values["closed_dates"])
    return ConfigValues(**values, unreadable=unreadable)


@dataclass(frozen=True)
class SchedulingInputs:
    """Everything snapshots are built from, read in one transaction.

    ``unreadable`` lists, per series id, the values of its ``class_series`` row that
    could not be read (its ``SeriesSpec`` holds placeholders for them).
    """

    base: ConfigValues | None
    branches: dict[str, str]
    branch_configs: dict[str, ConfigValues]
    series: list[SeriesSpec]
    series_configs: dict[int, ConfigValues]
    unreadable: dict[int, list[UnreadableValueError]] = field(default_factory=dict)


# Column -> (reader, placeholder used when the value cannot be read).
_SERIES_READERS: dict[str, tuple[Any, Any]] = {
    "key": (readers.read_text, ""), "branch_id": (readers.read_text, ""),
    "title": (readers.read_text, ""), "instructor": (readers.read_text, None),
    "room": (readers.read_text, None), "capacity": (readers.read_int, None),
    "recurrence": (readers.read_text, ""), "start_time": (readers.read_text, ""),
    "duration_minutes": (readers.read_int, None), "start_date": (readers.read_date, None),
    "end_date": (readers.read_date, None), "exdates": (readers.read_date_list, None),
    "version": (readers.read_int, 1),
}
_PLACEHOLDER_DATE = date(1970, 1, 1)


def read_series_row(row: Mapping[str, Any]) -> tuple[SeriesSpec, list[UnreadableValueError]]:
    """A ``class_series`` row (typed or raw) as a ``SeriesSpec`` and the values it could not read.

    Each unreadable value is replaced by a placeholder and reported, naming the row
    by its key (or by its id when the key itself is unreadable).
    """
    values: dict[str, Any] = {}
    bad: list[tuple[str, Any, str]] = []
    for column, (reader, placeholder) in _SERIES_READERS.items():
        try:
            values[column] = reader(row[column])
        except readers.UnreadableValue as exc:
            values[column] = placeholder
            bad.append((column, row[column], exc.reason))
    if values["start_date"] is None:
        if not any(column == "start_date" for column, _, _ in bad):
            bad.append(("start_date", None, "is missing"))
        values["start_date"] = _PLACEHOLDER_DATE
    key = values["key"] or f"#{row['id']}"
    name = f"'{values['key']}'" if values["key"] else f"id {row['id']}"
    problems = [UnreadableValueError("class_series", name, column, raw, reason, scope="series")
                for column, raw, reason in bad]
    spec = SeriesSpec(
        id=row["id"], key=key, branch_id=values["branch_id"] or "", title=values["title"] or "",
        instructor=values["instructor"], room=values["room"], capacity=values["capacity"],
        recurrence=values["recurrence"] or "", start_time=values["start_time"] or "",
        duration_minutes=values["duration_minutes"], start_date=values["start_date"],
        end_date=values["end_date"], exdates=tuple(values["exdates"] or ()),
        version=values["version"] if values["version"] is not None else 1,
    )
    return spec, problems


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


def load_scheduling_inputs(conn: sa.Connection, *, keys: Sequence[str] | None = None
                           ) -> SchedulingInputs:
    """Read the configuration scopes, branches and series (all, or those of ``keys``).

    Never fails on a value another writer corrupted: such values are reported per
    row (``ConfigValues.unreadable``, ``SchedulingInputs.unreadable``), so that only
    the series that depend on them fail.
    """
    query = sa.select(*raw_columns(conn, series_t.c)).order_by(series_t.c.id)
    if keys is not None:
        rows: list[Any] = []
        for part in _slices(list(keys), 5000):
            rows.extend(conn.execute(query.where(series_t.c.key.in_(part))).mappings())
        rows.sort(key=lambda r: r["id"])
    else:
        rows = list(conn.execute(query).mappings())
    specs: list[SeriesSpec] = []
    unreadable: dict[int, list[UnreadableValueError]] = {}
    for row in rows:
        spec, problems = read_series_row(row)
        specs.append(spec)
        if problems:
            unreadable[spec.id] = problems
    names = {spec.id: spec.key for spec in specs}
    base = None
    branch_configs: dict[str, ConfigValues] = {}
    series_configs: dict[int, ConfigValues] = {}
    for row in conn.execute(sa.select(*raw_columns(conn, configs_t.c))).mappings():
        if row["scope"] == "base":
            base = config_values_from_row(row, "base")
        elif row["scope"] == "branch" and row["branch_id"] is not None:
            branch_configs[row["branch_id"]] = config_values_from_row(
                row, f"branch '{row['branch_id']}'")
        elif row["scope"] == "series" and row["series_id"] is not None:
            name = names.get(row["series_id"], f"id {row['series_id']}")
            series_configs[row["series_id"]] = config_values_from_row(row, f"series '{name}'")
    branches = {r.id: r.name for r in conn.execute(sa.select(branches_t.c.id, branches_t.c.name))}
    return SchedulingInputs(base, branches, branch_configs, specs, series_configs, unreadable)


def series_keys(conn: sa.Connection) -> list[str]:
    """Keys of every series, oldest first."""
    return list(conn.execute(sa.select(series_t.c.key).order_by(series_t.c.id)).scalars())


# ---------------------------------------------------------------- sessions

def _values_from_row(row: Mapping[str, Any]) -> SessionValues:
    return SessionValues(
        occurrence_key=row["occurrence_key"], branch_id=row["branch_id"], title=row["title"],
        instructor=row["instructor"], room=row["room"], capacity=row["capacity"],
        timezone=row["timezone"], starts_at=row["starts_at"], ends_at=row["ends_at"],
    )


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
    for part in _slices(sorted(since), 2000):
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


_INSERT_COLUMNS = (
    "series_id", "origin_series_id", "series_key", "occurrence_key", "branch_id", "title",
    "instructor", "room", "capacity", "timezone", "starts_at", "ends_at", "status", "detached",
    "booked_count", "config_hash", "run_id", "created_at", "updated_at",
)
_PG_TYPES = (
    "int4", "int4", "varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "int4",
    "varchar", "timestamptz", "timestamptz", "varchar", "bool", "int4", "varchar", "varchar",
    "timestamptz", "timestamptz",
)
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
                f"COPY class_sessions ({', '.join(_INSERT_COLUMNS)}) FROM STDIN "
                "(FORMAT BINARY)") as copy:
            copy.set_types(list(_PG_TYPES))
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
        columns = ", ".join(_INSERT_COLUMNS)
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
                        f"SELECT {columns} FROM class_sessions WITH NO DATA")
            _copy_rows(cur, _STAGING, columns, tuples)
            cur.execute(f"INSERT INTO class_sessions ({columns}) SELECT {columns} FROM {_STAGING} "
                        "ON CONFLICT (origin_series_id, occurrence_key) DO NOTHING")
            created = cur.rowcount
            cur.execute(f"DELETE FROM {_STAGING}")
        return int(created)
    return _insert_tuples_on_conflict(conn, tuples)


def _insert_tuples_on_conflict(conn: sa.Connection, tuples: list[tuple[Any, ...]]) -> int:
    if not tuples:
        return 0
    columns = ", ".join(_INSERT_COLUMNS)
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        marks = ", ".join("?" for _ in _INSERT_COLUMNS)
        before = raw.total_changes  # type: ignore[union-attr]
        raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO class_sessions ({columns}) VALUES ({marks}) "
            "ON CONFLICT (origin_series_id, occurrence_key) DO NOTHING",
            [tuple(_sqlite_value(v) for v in row) for row in tuples])
        return int(raw.total_changes - before)  # type: ignore[union-attr]
    payload = [dict(zip(_INSERT_COLUMNS, row, strict=True)) for row in tuples]
    created = 0
    for part in _slices(payload, _INSERT_BATCH):
        created += conn.execute(sa.insert(sessions_t).values(part)).rowcount
    return created


def _copy_rows(cur: Any, table: str, columns: str, tuples: list[tuple[Any, ...]]) -> None:
    """Binary ``COPY`` of ``tuples`` into ``table`` (PostgreSQL, psycopg 3)."""
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(_PG_TYPES))
        for row in tuples:
            copy.write_row(row)


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy would store on SQLite: naive UTC text for instants, 0/1 for booleans."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


_UNPROTECTED = sa.and_(
    sessions_t.c.detached == sa.false(),
    sessions_t.c.booked_count == 0,
    sessions_t.c.status == "scheduled",
)


def update_sessions(conn: sa.Connection, *,
                    rows: Sequence[tuple[SeriesIdentity, Update]], run_id: str) -> int:
    """Rewrite generator-owned attributes of unprotected rows. Returns rows updated.

    Protection is checked in the statement itself: a row booked, detached or
    cancelled since it was read is not touched.
    """
    if not rows:
        return 0
    stamp = utcnow()
    stmt = (
        sa.update(sessions_t)
        .where(sessions_t.c.id == sa.bindparam("row_id"), _UNPROTECTED)
        .values({
            name: sa.bindparam(f"v_{name}") for name in (
                "branch_id", "title", "instructor", "room", "capacity", "timezone",
                "starts_at", "ends_at", "config_hash", "run_id", "updated_at")
        })
    )
    params = []
    for ident, update in rows:
        values = _session_row(update.values)
        values.pop("occurrence_key")
        values.update(config_hash=ident.config_hash, run_id=run_id, updated_at=stamp)
        params.append({"row_id": update.id, **{f"v_{k}": v for k, v in values.items()}})
    return conn.execute(stmt, params).rowcount


def delete_sessions(conn: sa.Connection, *, ids: Sequence[int]) -> int:
    """Delete unprotected rows by id. Returns rows deleted."""
    deleted = 0
    for part in _slices(list(ids), 5000):
        deleted += conn.execute(
            sa.delete(sessions_t).where(sessions_t.c.id.in_(part), _UNPROTECTED)).rowcount
    return deleted


def set_watermarks(conn: sa.Connection, *, marks: Mapping[int, datetime]) -> None:
    """Advance ``last_generated_through`` of each series."""
    if not marks:
        return
    stmt = (sa.update(series_t).where(series_t.c.id == sa.bindparam("sid"))
            .values(last_generated_through=sa.bindparam("mark")))
    conn.execute(stmt, [{"sid": sid, "mark": mark} for sid, mark in marks.items()])


def watermarks(conn: sa.Connection, *, ids: Iterable[int]) -> dict[int, datetime | None]:
    """``last_generated_through`` per existing series id (missing ids are deleted series).

    Raises:
        UnreadableRowError: a series' watermark cannot be read (the first found).
    """
    out: dict[int, datetime | None] = {}
    mark = uncoerced(series_t.c.last_generated_through)
    for part in _slices(list(ids), 5000):
        for sid, key, raw in conn.execute(sa.select(series_t.c.id, series_t.c.key, mark)
                                          .where(series_t.c.id.in_(part))):
            try:
                out[sid] = readers.read_instant(raw)
            except readers.UnreadableValue as exc:
                raise UnreadableRowError(sid, UnreadableValueError(
                    "class_series", f"'{key}'", "last_generated_through", raw, exc.reason,
                    scope="series")) from None
    return out


@dataclass(frozen=True)
class StateRow:
    """A ``generation_state`` row."""

    series_id: int
    fingerprint: str
    tz_version: str
    generated_through: datetime
    reconciled_at: datetime
    as_of: datetime | None = None
    row_count: int | None = None
    warn_dates: dict[str, Any] | None = None


def generation_states(conn: sa.Connection, *, ids: Iterable[int]) -> dict[int, StateRow]:
    """The generation state of each series that has one."""
    out: dict[int, StateRow] = {}
    for part in _slices(sorted(set(ids)), 5000):
        for row in conn.execute(sa.select(state_t).where(state_t.c.series_id.in_(part))
                                ).mappings():
            out[row["series_id"]] = StateRow(**row)
    return out


def series_generated_as_of(conn: sa.Connection, *, keys: Sequence[str], now: datetime
                           ) -> set[str]:
    """Keys of the series whose generation as of ``now`` is wholly committed: the last
    chunk of a series commits its generation state with the run's ``now``."""
    out: set[str] = set()
    for part in _slices(list(keys), 5000):
        query = (sa.select(series_t.c.key)
                 .join(state_t, state_t.c.series_id == series_t.c.id)
                 .where(series_t.c.key.in_(part),
                        state_t.c.generated_through == series_t.c.last_generated_through,
                        state_t.c.as_of == now))
        out.update(conn.execute(query).scalars())
    return out


def logged_series(conn: sa.Connection, *, run_id: str) -> set[str]:
    """Keys of the series ``run_id`` has a ``generation_log`` row for."""
    return set(conn.execute(sa.select(log_t.c.series_key).where(log_t.c.run_id == run_id))
               .scalars())


def rows_written_by_run(conn: sa.Connection, *, run_id: str) -> dict[str, tuple[int, int]]:
    """Per series key: the rows ``run_id`` created and updated that are still its own.

    A created row has its creation stamp as its update stamp; an updated one a later one.
    For a run that ended before it could record its counts (it was interrupted).
    """
    t = sessions_t
    created = sa.func.sum(sa.case((t.c.created_at == t.c.updated_at, 1), else_=0))
    query = (sa.select(t.c.series_key, created, sa.func.count())
             .where(t.c.run_id == run_id).group_by(t.c.series_key))
    return {key: (int(c or 0), int(n) - int(c or 0)) for key, c, n in conn.execute(query)}


def save_generation_states(conn: sa.Connection, *, rows: Sequence[StateRow]) -> None:
    """Insert or replace generation states; a ``row_count`` not given is counted here.

    ``row_count`` is the number of the series' rows starting at or after
    ``as_of``; one left None is counted as this transaction sees them.
    """
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(state_t)
    stmt = stmt.on_conflict_do_update(
        index_elements=["series_id"],
        set_={name: stmt.excluded[name] for name in
              ("fingerprint", "tz_version", "generated_through", "reconciled_at", "as_of",
               "row_count", "warn_dates")})
    conn.execute(stmt, [row.__dict__ for row in rows])
    counted = (sa.select(sa.func.count()).select_from(sessions_t)
               .where(sessions_t.c.origin_series_id == state_t.c.series_id,
                      sessions_t.c.starts_at >= state_t.c.as_of)
               .scalar_subquery())
    for part in _slices(sorted(row.series_id for row in rows if row.row_count is None), 5000):
        conn.execute(sa.update(state_t).where(state_t.c.series_id.in_(part))
                     .values(row_count=counted))


def row_counts(conn: sa.Connection, *, since: Mapping[int, datetime], protected_since: datetime
               ) -> dict[int, tuple[int, int]]:
    """Per series id: its rows starting at or after its instant in ``since``, and how
    many of its rows starting at or after ``protected_since`` are protected."""
    out: dict[int, tuple[int, int]] = {}
    by_instant: dict[datetime, list[int]] = defaultdict(list)
    for sid, instant in since.items():
        by_instant[instant].append(sid)
    for instant, ids in by_instant.items():
        low = min(instant, protected_since)
        counted = sa.func.sum(sa.case((sessions_t.c.starts_at >= instant, 1), else_=0))
        guarded = sa.func.sum(sa.case((sa.and_(sessions_t.c.starts_at >= protected_since,
                                               sa.not_(_UNPROTECTED)), 1), else_=0))
        for part in _slices(sorted(ids), 2000):
            query = (sa.select(sessions_t.c.origin_series_id, counted, guarded)
                     .where(sessions_t.c.origin_series_id.in_(part),
                            sessions_t.c.starts_at >= low)
                     .group_by(sessions_t.c.origin_series_id))
            out.update({sid: (int(n or 0), int(p or 0)) for sid, n, p in conn.execute(query)})
    return out


def retirement_state(conn: sa.Connection, *, series_id: int
                     ) -> tuple[date | None, datetime | None] | None:
    """``(end_date, last_generated_through)`` of a series as stored now; None once it is gone."""
    row = conn.execute(sa.select(series_t.c.end_date, series_t.c.last_generated_through)
                       .where(series_t.c.id == series_id)).first()
    return None if row is None else (row[0], row[1])


def retire_series(conn: sa.Connection, *, series_id: int) -> int:
    """Delete a series and its series-scope configuration; its sessions stay.

    Returns the number of sessions detached from the series (``series_id`` set to NULL).
    """
    kept = conn.execute(sa.update(sessions_t).where(sessions_t.c.series_id == series_id)
                        .values(series_id=None)).rowcount
    conn.execute(sa.delete(configs_t).where(configs_t.c.scope == "series",
                                            configs_t.c.series_id == series_id))
    conn.execute(sa.delete(state_t).where(state_t.c.series_id == series_id))
    conn.execute(sa.delete(series_t).where(series_t.c.id == series_id))
    return kept


# ---------------------------------------------------------------- run records

def write_generation_log(conn: sa.Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``generation_log`` rows."""
    for part in _slices(list(rows), _INSERT_BATCH):
        conn.execute(sa.insert(log_t), part)


def store_snapshots(conn: sa.Connection, *, run_id: str, now: datetime,
                    snapshots: Sequence[Any]) -> None:
    """Store the run's snapshots (replacing any earlier ones of the same run)."""
    keys = [s.series_key for s in snapshots]
    for part in _slices(keys, 5000):
        conn.execute(sa.delete(snapshots_t).where(snapshots_t.c.run_id == run_id,
                                                  snapshots_t.c.series_key.in_(part)))
    rows = [{
        "run_id": run_id, "series_key": s.series_key, "series_id": s.spec.id,
        "taken_at": s.taken_at, "now": now, "fingerprint": s.fingerprint,
        "config_hash": s.config_hash, "payload": s.to_payload(),
    } for s in snapshots]
    for part in _slices(rows, _INSERT_BATCH):
        conn.execute(sa.insert(snapshots_t), part)


def load_snapshot_payloads(conn: sa.Connection, *, run_id: str, keys: Sequence[str]
                           ) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """``series_key -> (now, payload)`` of the run's stored snapshots."""
    out: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for part in _slices(list(keys), 5000):
        query = sa.select(snapshots_t.c.series_key, snapshots_t.c.now, snapshots_t.c.payload
                          ).where(snapshots_t.c.run_id == run_id,
                                  snapshots_t.c.series_key.in_(part))
        for key, now, payload in conn.execute(query):
            out[key] = (now, payload)
    return out


def previous_fingerprints(conn: sa.Connection, *, keys: Sequence[str], before_run: str
                          ) -> dict[str, str | None]:
    """The fingerprint of each series' latest snapshot taken by another run."""
    out: dict[str, str | None] = {}
    for part in _slices(list(keys), 2000):
        latest = (sa.select(snapshots_t.c.series_key,
                            sa.func.max(snapshots_t.c.taken_at).label("taken_at"))
                  .where(snapshots_t.c.series_key.in_(part), snapshots_t.c.run_id != before_run)
                  .group_by(snapshots_t.c.series_key).subquery())
        query = sa.select(snapshots_t.c.series_key, snapshots_t.c.fingerprint).join(
            latest, sa.and_(snapshots_t.c.series_key == latest.c.series_key,
                            snapshots_t.c.taken_at == latest.c.taken_at))
        out.update(conn.execute(query).all())
    return out


def previous_statuses(conn: sa.Connection, *, keys: Sequence[str], before_run: str
                      ) -> dict[str, str]:
    """The status of each series' latest ``generation_log`` row written by another run."""
    out: dict[str, str] = {}
    for part in _slices(list(keys), 2000):
        latest = (sa.select(log_t.c.series_key, sa.func.max(log_t.c.id).label("id"))
                  .where(log_t.c.series_key.in_(part), log_t.c.run_id != before_run)
                  .group_by(log_t.c.series_key).subquery())
        query = sa.select(log_t.c.series_key, log_t.c.status).join(
            latest, log_t.c.id == latest.c.id)
        out.update(conn.execute(query).all())
    return out


def prune_snapshots(conn: sa.Connection, *, before: datetime) -> int:
    """Forget snapshots taken before ``before``."""
    return conn.execute(sa.delete(snapshots_t).where(snapshots_t.c.taken_at < before)).rowcount


def replace_conflicts(conn: sa.Connection, *, series_keys: Sequence[str],
                      rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the current conflicts of ``series_keys`` with ``rows``."""
    for part in _slices(list(series_keys), 5000):
        conn.execute(sa.delete(conflicts_t).where(conflicts_t.c.series_key.in_(part)))
    for rows_part in _slices(list(rows), _INSERT_BATCH):
        conn.execute(sa.insert(conflicts_t), rows_part)


# From this many series on, double bookings are found by one ordered scan of the
# window per resource instead of one index probe per session.
SCAN_DOUBLE_BOOKINGS_FROM = 200


def find_double_bookings(conn: sa.Connection, *, series_ids: Sequence[int], since: datetime,
                         until: datetime) -> list[Overlap]:
    """Scheduled sessions of ``series_ids`` starting in ``[since, until]`` that overlap a
    scheduled session of another series in the same branch and room (or instructor).

    Sessions last at most a day, so the other session starts within a day before.
    For a few series, each of their sessions probes the room (instructor) index.
    For many (a nightly run), one scan per resource in (branch, resource, start)
    order marks the sessions that start before an earlier one has ended (a
    running maximum of ``ends_at``); only those are probed. Both give the same
    overlaps.
    """
    ids = sorted(set(series_ids))
    if len(ids) < SCAN_DOUBLE_BOOKINGS_FROM:
        return _probe_double_bookings(conn, ids, since, until)
    return _scan_double_bookings(conn, ids, since, until)


def _overlap_join(conn: sa.Connection, resource: str) -> tuple[Any, Any, Any]:
    """``(a, b, join)``: sessions ``b`` of another series overlapping ``a`` on ``resource``."""
    a = sessions_t.alias("a")
    b = sessions_t.alias("b")
    if conn.dialect.name == "sqlite":
        day_before = sa.func.datetime(a.c.starts_at, "-1 day")
    else:
        day_before = a.c.starts_at - sa.literal(timedelta(days=1), sa.Interval())
    return a, b, sa.and_(
        b.c.branch_id == a.c.branch_id,
        b.c[resource] == a.c[resource],
        b.c.origin_series_id != a.c.origin_series_id,
        b.c.starts_at > day_before,
        b.c.starts_at < a.c.ends_at,
        b.c.ends_at > a.c.starts_at,
        b.c.status == "scheduled",
    )


def _probe_double_bookings(conn: sa.Connection, ids: list[int], since: datetime,
                           until: datetime) -> list[Overlap]:
    found: list[Overlap] = []
    for resource in ("room", "instructor"):
        a, b, join = _overlap_join(conn, resource)
        for part in _slices(ids, 2000):
            query = (
                sa.select(a.c.series_key, b.c.series_key, a.c[resource], a.c.occurrence_key,
                          a.c.branch_id)
                .join(b, join)
                .where(a.c.origin_series_id.in_(part), a.c.starts_at >= since,
                       a.c.starts_at <= until, a.c.status == "scheduled",
                       a.c[resource].is_not(None))
            )
            found.extend(Overlap(r[0], r[1], resource, r[2], r[3], r[4])
                         for r in conn.execute(query))
    return found


def _scan_double_bookings(conn: sa.Connection, ids: list[int], since: datetime,
                          until: datetime) -> list[Overlap]:
    wanted = set(ids)
    found: dict[tuple[int, int, str], Overlap] = {}
    # A run over a minority of the series (the schedule's ranged runs) scans only the
    # (branch, resource) groups its sessions are in (PostgreSQL); a run over most of
    # them scans the whole window, which is cheaper than finding the groups first.
    total = conn.execute(sa.select(sa.func.count()).select_from(series_t)).scalar_one()
    restrict = conn.dialect.name == "postgresql" and len(ids) * 2 <= total
    for resource in ("room", "instructor"):
        if restrict:
            marked = _marked_in_groups(conn, resource, ids, since, until)
        else:
            marked = _marked_in_window(conn, resource, since, until)
        a, b, join = _overlap_join(conn, resource)
        for part in _slices(marked, 2000):
            query = (sa.select(a.c.id, b.c.id, a.c.origin_series_id, b.c.origin_series_id,
                               a.c.series_key, b.c.series_key, a.c.occurrence_key,
                               b.c.occurrence_key, uncoerced(a.c.starts_at),
                               uncoerced(b.c.starts_at), a.c[resource], a.c.branch_id)
                     .join(b, join).where(a.c.id.in_(part), a.c.status == "scheduled"))
            for r in conn.execute(query):
                # The pair (a, b) stands for both series: each side, once.
                for x, y, sid, key, other, occurrence, raw_start in (
                        (r[0], r[1], r[2], r[4], r[5], r[6], r[8]),
                        (r[1], r[0], r[3], r[5], r[4], r[7], r[9])):
                    try:
                        starts = readers.read_instant(raw_start)
                    except readers.UnreadableValue:
                        continue  # its series fails on it when it is generated
                    if sid in wanted and starts is not None and since <= starts <= until:
                        found.setdefault((x, y, resource), Overlap(
                            key, other, resource, r[10], occurrence, r[11]))
    return list(found.values())


def _marked_in_window(conn: sa.Connection, resource: str, since: datetime,
                      until: datetime) -> list[int]:
    """Sessions of the window that start before an earlier one of their group ended."""
    t = sessions_t
    day = timedelta(days=1)
    ended_before = sa.func.max(t.c.ends_at).over(
        partition_by=(t.c.branch_id, t.c[resource]), order_by=(t.c.starts_at, t.c.id),
        rows=(None, -1))
    ordered = (sa.select(t.c.id, t.c.starts_at, ended_before.label("ended_before"))
               .where(t.c.status == "scheduled", t.c[resource].is_not(None),
                      t.c.starts_at >= since - day, t.c.starts_at <= until + day)
               .subquery())
    return list(conn.execute(sa.select(ordered.c.id)
                             .where(ordered.c.ended_before > ordered.c.starts_at)).scalars())


def _marked_in_groups(conn: sa.Connection, resource: str, ids: list[int], since: datetime,
                      until: datetime) -> list[int]:
    """``_marked_in_window`` for the groups that sessions of ``ids`` are in (PostgreSQL).

    The groups are read first; each is then scanned through the (branch, resource,
    start) index, one group at a time in a lateral join, so the plan cannot turn
    quadratic when the table has no statistics yet (a first night).
    """
    assert resource in ("room", "instructor")
    groups: set[tuple[str, str]] = set()
    for part in _slices(ids, 5000):
        groups.update((branch, value) for branch, value in conn.execute(sa.text(
            f"SELECT DISTINCT branch_id, {resource} FROM class_sessions "
            f"WHERE origin_series_id = ANY(CAST(:ids AS integer[])) AND {resource} IS NOT NULL "
            "AND status = 'scheduled' AND starts_at >= :since AND starts_at <= :until"),
            {"ids": part, "since": since, "until": until}))
    if not groups:
        return []
    ordered = sorted(groups)
    day = timedelta(days=1)
    return list(conn.execute(sa.text(
        "SELECT s.id FROM unnest(CAST(:branches AS text[]), CAST(:values AS text[])) "
        "AS g(branch_id, value) CROSS JOIN LATERAL ("
        "  SELECT t.id, t.starts_at, max(t.ends_at) OVER (ORDER BY t.starts_at, t.id "
        "    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ended_before"
        f"  FROM class_sessions t WHERE t.branch_id = g.branch_id AND t.{resource} = g.value"
        "    AND t.status = 'scheduled' AND t.starts_at >= :low AND t.starts_at <= :high"
        ") AS s WHERE s.ended_before > s.starts_at"),
        {"branches": [g[0] for g in ordered], "values": [g[1] for g in ordered],
         "low": since - day, "high": until + day}).scalars())


def insert_notifications(conn: sa.Connection, *, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert notifications whose ``dedupe_key`` is new. Returns rows inserted."""
    if not rows:
        return 0
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    unique = list({r["dedupe_key"]: r for r in rows}.values())
    stmt = insert(notifications_t).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return conn.execute(stmt, unique).rowcount


def _slices(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def dates_iso(values: Iterable[date]) -> list[str]:
    """Dates as sorted ISO strings."""
    return sorted(d.isoformat() for d in values)
