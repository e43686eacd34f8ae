"""Per series generation state: watermarks, ``generation_state`` rows, retirement."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.persistence.repository.tables import (
    UNPROTECTED,
    UnreadableRowError,
    among,
    configs_t,
    pg_type,
    series_t,
    sessions_t,
    slices,
    state_t,
    uncoerced,
    unnest_arrays,
)


def set_watermarks(conn: sa.Connection, *, marks: Mapping[int, datetime]) -> None:
    """Advance ``last_generated_through`` of each series (on PostgreSQL, one statement
    from arrays)."""
    if not marks:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "UPDATE class_series SET last_generated_through = m.mark FROM "
            + unnest_arrays({"ids": "int4", "marks": "timestamptz"})
            + " AS m(id, mark) WHERE class_series.id = m.id"),
            {"ids": list(marks), "marks": list(marks.values())})
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
    for part in slices(list(ids), 5000):
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
    for part in slices(sorted(set(ids)), 5000):
        for row in conn.execute(sa.select(state_t).where(state_t.c.series_id.in_(part))
                                ).mappings():
            out[row["series_id"]] = StateRow(**row)
    return out


def states_as_of(conn: sa.Connection, *, ids: Iterable[int], now: datetime
                 ) -> dict[int, StateRow]:
    """The generation states, of the series among ``ids``, written by a generation as of
    ``now`` that is the series' watermark (nothing was written for the series since)."""
    out: dict[int, StateRow] = {}
    for among_ids in among(conn, state_t.c.series_id, sorted(set(ids)), size=5000):
        query = (sa.select(state_t)
                 .join(series_t, series_t.c.id == state_t.c.series_id)
                 .where(among_ids, state_t.c.as_of == now,
                        state_t.c.generated_through == series_t.c.last_generated_through))
        for row in conn.execute(query).mappings():
            out[row["series_id"]] = StateRow(**row)
    return out


def rows_from(conn: sa.Connection, *, since: datetime, beyond: Mapping[int, datetime]
              ) -> dict[int, tuple[int, int, int]]:
    """Per series id in ``beyond`` with rows starting at or after ``since``: how many,
    how many of those are protected, and how many start after the series' instant in
    ``beyond`` (on SQLite, a start that cannot be read sorts after every instant, so it
    counts there). One scan of those rows."""
    out: dict[int, tuple[int, int, int]] = {}
    for instant, ids in _ids_by_instant(beyond).items():
        guarded = sa.func.sum(sa.case((sa.not_(UNPROTECTED), 1), else_=0))
        after = sa.func.sum(sa.case((sessions_t.c.starts_at > instant, 1), else_=0))
        for among_ids in among(conn, sessions_t.c.origin_series_id, sorted(ids), size=5000):
            query = (sa.select(sessions_t.c.origin_series_id, sa.func.count(), guarded, after)
                     .where(among_ids,
                            sessions_t.c.starts_at >= since)
                     .group_by(sessions_t.c.origin_series_id))
            out.update({sid: (int(n), int(p or 0), int(a or 0))
                        for sid, n, p, a in conn.execute(query)})
    return out


def series_generated_as_of(conn: sa.Connection, *, keys: Sequence[str], now: datetime
                           ) -> set[str]:
    """Keys of the series whose generation as of ``now`` is wholly committed: the last
    chunk of a series commits its generation state with the run's ``now``."""
    out: set[str] = set()
    for part in slices(list(keys), 5000):
        query = (sa.select(series_t.c.key)
                 .join(state_t, state_t.c.series_id == series_t.c.id)
                 .where(series_t.c.key.in_(part),
                        state_t.c.generated_through == series_t.c.last_generated_through,
                        state_t.c.as_of == now))
        out.update(conn.execute(query).scalars())
    return out


def save_generation_states(conn: sa.Connection, *, rows: Sequence[StateRow]) -> None:
    """Insert or replace generation states; a ``row_count`` not given is counted here.

    ``row_count`` is the number of the series' rows starting at or after
    ``as_of``; one left None is counted as this transaction sees them.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _upsert_states_from_arrays(conn, rows)
    else:
        stmt = sqlite.insert(state_t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["series_id"],
            set_={name: stmt.excluded[name] for name in _STATE_COLUMNS[1:]})
        conn.execute(stmt, [row.__dict__ for row in rows])
    counted = (sa.select(sa.func.count()).select_from(sessions_t)
               .where(sessions_t.c.origin_series_id == state_t.c.series_id,
                      sessions_t.c.starts_at >= state_t.c.as_of)
               .scalar_subquery())
    for part in slices(sorted(row.series_id for row in rows if row.row_count is None), 5000):
        conn.execute(sa.update(state_t).where(state_t.c.series_id.in_(part))
                     .values(row_count=counted))


# ``generation_state``'s columns, the key first.
_STATE_COLUMNS = tuple(column.name for column in state_t.columns)


def _upsert_states_from_arrays(conn: sa.Connection, rows: Sequence[StateRow]) -> None:
    """One ``INSERT … SELECT FROM unnest(…) ON CONFLICT`` of ``rows`` (PostgreSQL);
    of two rows of one series, the later one is saved, as a row at a time would."""
    last = list({row.series_id: row for row in rows}.values())
    values = {name: [getattr(row, name) for row in last] for name in _STATE_COLUMNS}
    # Serialized as the column's own type would: None as JSON null.
    values["warn_dates"] = [json.dumps(v) for v in values["warn_dates"]]
    arrays = unnest_arrays({name: pg_type(state_t.c[name]) for name in _STATE_COLUMNS})
    conn.execute(sa.text(
        f"INSERT INTO generation_state ({', '.join(_STATE_COLUMNS)}) SELECT * FROM {arrays} "
        "ON CONFLICT (series_id) DO UPDATE SET "
        + ", ".join(f"{name} = EXCLUDED.{name}" for name in _STATE_COLUMNS[1:])), values)


def row_counts(conn: sa.Connection, *, since: Mapping[int, datetime], protected_since: datetime
               ) -> dict[int, tuple[int, int, int]]:
    """Per series id: its rows starting at or after its instant in ``since``; of its
    rows starting at or after ``protected_since``, how many are protected, and how
    many there are."""
    out: dict[int, tuple[int, int, int]] = {}
    for instant, ids in _ids_by_instant(since).items():
        low = min(instant, protected_since)
        counted = sa.func.sum(sa.case((sessions_t.c.starts_at >= instant, 1), else_=0))
        later = sessions_t.c.starts_at >= protected_since
        guarded = sa.func.sum(sa.case((sa.and_(later, sa.not_(UNPROTECTED)), 1), else_=0))
        current = sa.func.sum(sa.case((later, 1), else_=0))
        for among_ids in among(conn, sessions_t.c.origin_series_id, sorted(ids)):
            query = (sa.select(sessions_t.c.origin_series_id, counted, guarded, current)
                     .where(among_ids,
                            sessions_t.c.starts_at >= low)
                     .group_by(sessions_t.c.origin_series_id))
            out.update({sid: (int(n or 0), int(p or 0), int(c or 0))
                        for sid, n, p, c in conn.execute(query)})
    return out


def _ids_by_instant(instants: Mapping[int, datetime]) -> dict[datetime, list[int]]:
    """The series ids of ``instants`` grouped by their instant (one query per group)."""
    grouped: dict[datetime, list[int]] = defaultdict(list)
    for sid, instant in instants.items():
        grouped[instant].append(sid)
    return grouped


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

