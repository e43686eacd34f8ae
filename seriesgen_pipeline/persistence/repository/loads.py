"""The writes of a data-file load (``service.loading`` decides what to write)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues
from seriesgen_pipeline.persistence.repository.inputs import config_values_from_row
from seriesgen_pipeline.persistence.repository.tables import (
    branches_t,
    configs_t,
    raw_columns,
    series_t,
    slices,
)

LOAD_LOCK_KEY = 7243002
"""PostgreSQL transaction advisory lock serializing loads (upgrades use 7243001)."""

SERIES_CONTENT_COLUMNS = (
    "branch_id", "title", "instructor", "room", "capacity", "recurrence", "start_time",
    "duration_minutes", "start_date", "end_date", "exdates",
)
"""The ``class_series`` columns a data file sets, ``key`` aside."""

_OWNER_COLUMN = {"base": None, "branch": "branch_id", "series": "series_id"}


def lock_loads(conn: sa.Connection) -> None:
    """Wait for any other load to commit (PostgreSQL; SQLite serializes writers itself)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOAD_LOCK_KEY})


def _config_filter(scope: str, owner: str | int | None) -> list[sa.ColumnElement[bool]]:
    conditions = [configs_t.c.scope == scope]
    column = _OWNER_COLUMN[scope]
    if column is not None:
        conditions.append(configs_t.c[column] == owner)
    return conditions


def stored_config(conn: sa.Connection, *, scope: str,
                  owner: str | int | None = None) -> ConfigValues | None:
    """The stored scope; a value it cannot read is in ``ConfigValues.unreadable``."""
    columns = raw_columns(conn, (configs_t.c[name] for name in CONFIG_FIELDS))
    row = conn.execute(
        sa.select(*columns).where(*_config_filter(scope, owner))
    ).mappings().first()
    if row is None:
        return None
    name = scope if owner is None else f"{scope} {owner!r}"
    return config_values_from_row(row, name)


def put_config(conn: sa.Connection, *, scope: str, owner: str | int | None,
               values: ConfigValues, stamp: datetime, exists: bool) -> None:
    """Insert (``exists`` False) or replace one scope's row."""
    fields: dict[str, Any] = {name: getattr(values, name) for name in CONFIG_FIELDS}
    if fields["closed_dates"] is not None:
        fields["closed_dates"] = list(fields["closed_dates"])
    if not exists:
        row: dict[str, Any] = {"scope": scope, "branch_id": None, "series_id": None}
        column = _OWNER_COLUMN[scope]
        if column is not None:
            row[column] = owner
        conn.execute(sa.insert(configs_t).values(**row, **fields, updated_at=stamp))
    else:
        conn.execute(sa.update(configs_t).where(*_config_filter(scope, owner))
                     .values(**fields, updated_at=stamp))


def branch_names(conn: sa.Connection) -> dict[str, str]:
    """``branch id -> name`` of every branch."""
    return dict(conn.execute(sa.select(branches_t.c.id, branches_t.c.name)).all())


def insert_branch(conn: sa.Connection, *, branch_id: str, name: str) -> None:
    """Add a branch."""
    conn.execute(sa.insert(branches_t).values(id=branch_id, name=name))


def rename_branch(conn: sa.Connection, *, branch_id: str, name: str) -> None:
    """Change a branch's name."""
    conn.execute(sa.update(branches_t).where(branches_t.c.id == branch_id).values(name=name))


def series_rows_for_update(conn: sa.Connection, *, keys: Sequence[str]
                           ) -> dict[str, sa.RowMapping]:
    """``key -> row`` (id, key, version and the content columns, read raw) of the stored
    series among ``keys``, locked until the transaction ends."""
    columns = raw_columns(conn, (series_t.c[name] for name in
                                 ("id", "key", "version", *SERIES_CONTENT_COLUMNS)))
    stored: dict[str, sa.RowMapping] = {}
    for part in slices(list(keys), 5000):
        query = sa.select(*columns).where(series_t.c.key.in_(part))
        stored.update((row["key"], row) for row in conn.execute(
            query.with_for_update(of=series_t)).mappings())
    return stored


def insert_series(conn: sa.Connection, *, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert new series; returns ``key -> id``."""
    if not rows:
        return {}
    result = conn.execute(
        sa.insert(series_t).returning(series_t.c.key, series_t.c.id,
                                      sort_by_parameter_order=True),
        list(rows),
    )
    return {key: series_id for key, series_id in result}


def update_series_content(conn: sa.Connection, *, changes: Iterable[tuple[int, Mapping[str, Any]]],
                          stamp: datetime) -> int:
    """Rewrite the content of series (``(id, content)``), each to its next ``version``."""
    params = [{"sid": sid, **{f"v_{k}": v for k, v in content.items()}}
              for sid, content in changes]
    if not params:
        return 0
    statement = (
        sa.update(series_t)
        .where(series_t.c.id == sa.bindparam("sid"))
        .values({name: sa.bindparam(f"v_{name}") for name in SERIES_CONTENT_COLUMNS})
        .values(version=series_t.c.version + 1, updated_at=stamp)
    )
    conn.execute(statement, params)
    return len(params)
