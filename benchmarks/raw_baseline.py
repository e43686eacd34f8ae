"""The yardstick: the cold night's sessions expanded by the core and written in one go.

The snapshots a cold night stored are expanded by the core (``desired_sessions``) and
written into an empty copy of ``class_sessions`` with the package's own row layout
(``repo.NewSessionsWriter``, ``repo.INSERT_COLUMNS``): on PostgreSQL with one binary
``COPY`` (``repo.copy_rows``) into ``CREATE TABLE bench_raw (LIKE class_sessions
INCLUDING ALL)``; on SQLite with one ``executemany`` of the values as SQLAlchemy stores
them (``repo.sqlite_value``) into a table made from ``class_sessions``' own DDL, in one
transaction. No Dagster, no locks, no reconciliation, no conflict check.

The same expansion counts the sessions a cold night must have written
(``expected_cold_rows``, the production-path check).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import maxrss_kib
from benchmarks.databases import count_rows
from seriesgen_pipeline.core.generation import desired_sessions
from seriesgen_pipeline.core.occurrences import window_for
from seriesgen_pipeline.core.reconcile import SessionValues
from seriesgen_pipeline.core.snapshot import SeriesSnapshot
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine

RAW_TABLE = "bench_raw"
RAW_RUN_ID = "bench-raw"
# The values SQLite stores otherwise than the driver binds them: instants and booleans.
_SQLITE_CONVERTED = tuple(i for i, kind in enumerate(repo.COPY_TYPES)
                          if kind in ("timestamptz", "bool"))


def snapshot_payloads(engine: sa.Engine, run_ids: list[str]) -> list[dict[str, Any]]:
    """The snapshots the runs stored, in series order."""
    t = repo.snapshots_t
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.c.payload).where(t.c.run_id.in_(run_ids))
                                 .order_by(t.c.series_id)).scalars())


def save_cold_snapshots(engine: sa.Engine, run_ids: list[str], path: Path) -> int:
    """Keep the snapshots the cold run generated from, for the raw baseline."""
    payloads = snapshot_payloads(engine, run_ids)
    path.write_text(json.dumps(payloads))
    return len(payloads)


def wanted_sessions(payload: dict[str, Any], now: datetime
                    ) -> tuple[SeriesSnapshot, tuple[SessionValues, ...]] | None:
    """A stored snapshot and the sessions the core wants for it; None when it wants none."""
    snap = SeriesSnapshot.from_payload(payload)
    if snap.error is not None or snap.config is None or not snap.config.generation_enabled:
        return None
    window = window_for(now, snap.config.horizon_days)
    return snap, desired_sessions(snap.valid(), window).sessions


def expected_cold_rows(engine: sa.Engine, run_ids: list[str], now: datetime) -> tuple[int, int]:
    """(sessions, snapshots): the core's expansion of the snapshots the cold runs stored."""
    payloads = snapshot_payloads(engine, run_ids)
    wanted = (wanted_sessions(payload, now) for payload in payloads)
    return sum(len(found[1]) for found in wanted if found is not None), len(payloads)


def create_raw_table(engine: sa.Engine) -> None:
    """An empty copy of ``class_sessions`` (columns, defaults, keys and indexes)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE {RAW_TABLE} (LIKE class_sessions INCLUDING ALL)")
            return
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'class_sessions' AND sql IS NOT NULL "
            "AND type IN ('table', 'index') ORDER BY type DESC"
        ).scalars().all()  # the table first, then its indexes (no triggers, as LIKE on PostgreSQL)
        for statement in ddl:
            conn.exec_driver_sql(statement.replace("class_sessions", RAW_TABLE))


def drop_raw_table(engine: sa.Engine) -> None:
    """Remove the baseline's table."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")


class _Expansion:
    """The rows of the snapshots, made as the write takes them; times the expansion."""

    def __init__(self, payloads: list[dict[str, Any]], now: datetime) -> None:
        self.payloads = payloads
        self.now = now
        self.expand_s = 0.0
        self.series = 0

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Session rows in ``repo.INSERT_COLUMNS`` order, series after series."""
        stamp = datetime.now(UTC)
        batch: list[tuple[Any, ...]] = []
        writer = repo.NewSessionsWriter(batch.append, RAW_RUN_ID, stamp)
        for payload in self.payloads:
            started = time.perf_counter()
            found = wanted_sessions(payload, self.now)
            if found is not None:
                snap, sessions = found
                writer.write(repo.SeriesIdentity(series_id=snap.spec.id,
                                                 series_key=snap.series_key,
                                                 config_hash=snap.config_hash), sessions)
                self.series += 1
            self.expand_s += time.perf_counter() - started
            yield from batch
            batch.clear()


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row as SQLAlchemy would store it on SQLite (``repo.sqlite_value``)."""
    out = list(row)
    for i in _SQLITE_CONVERTED:
        out[i] = repo.sqlite_value(out[i])
    return tuple(out)


def run_raw_baseline(database_url: str, *, now: datetime, snapshots: Path) -> dict[str, Any]:
    """Expand and write the stored cold snapshots; the figures of the write."""
    rss_start = maxrss_kib()
    engine = create_db_engine(database_url)
    expansion = _Expansion(json.loads(snapshots.read_text()), now)
    create_raw_table(engine)
    columns = ", ".join(repo.INSERT_COLUMNS)
    rss_ready = maxrss_kib()
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with dbapi.cursor() as cur:
                # Streamed, so that the server indexes while the core expands.
                repo.copy_rows(cur, RAW_TABLE, columns, expansion.rows())
            dbapi.commit()
            method = "psycopg 3 binary COPY"
        else:
            marks = ", ".join("?" for _ in repo.INSERT_COLUMNS)
            cur = dbapi.cursor()
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany(f"INSERT INTO {RAW_TABLE} ({columns}) VALUES ({marks})",
                            map(_sqlite_row, expansion.rows()))
            cur.execute("COMMIT")
            cur.close()
            method = "sqlite3 executemany (one transaction)"
    finally:
        raw.close()
    wall = time.perf_counter() - started
    peak = maxrss_kib()
    written = count_rows(engine, RAW_TABLE)
    engine.dispose()
    return {
        "wall_s": wall, "expand_s": expansion.expand_s, "write_s": wall - expansion.expand_s,
        "created": written, "updated": 0, "deleted": 0, "protected": 0,
        "series": expansion.series, "method": method, "peak_rss_kib": peak,
        "rss_start_kib": rss_start, "rss_ready_kib": rss_ready,
    }
