"""What snapshots are built from: configuration scopes, branches and series.

Stored values are read without SQLAlchemy's result conversions and checked one by
one (``core.readers``): another writer may have corrupted any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues
from seriesgen_pipeline.core.errors import UnreadableValueError
from seriesgen_pipeline.core.series import SeriesSpec
from seriesgen_pipeline.persistence.repository.tables import (
    among,
    branches_t,
    changes_t,
    configs_t,
    raw_columns,
    series_t,
)

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
        for among_keys in among(conn, series_t.c.key, keys, 5000):
            rows.extend(conn.execute(query.where(among_keys)).mappings())
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


def input_changes(conn: sa.Connection) -> int | None:
    """How many changes of scheduling inputs the database has counted (``series_changes``,
    kept by triggers for every writer); None when the counter row is missing."""
    return conn.execute(sa.select(changes_t.c.value).where(changes_t.c.id == 1)).scalar()


def series_keys(conn: sa.Connection) -> list[str]:
    """Keys of every series, oldest first."""
    return list(conn.execute(sa.select(series_t.c.key).order_by(series_t.c.id)).scalars())

