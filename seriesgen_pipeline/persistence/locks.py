"""Per-series serialization of writers (FR-011).

PostgreSQL: session-level advisory locks, one per series, taken in id order (so
two runs never deadlock) and held across the run's chunk transactions; the
server drops them if the process dies. SQLite: byte-range locks on a file beside
the database (one byte per series id), released by the kernel when the process
dies; each chunk then also holds SQLite's own write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa

_LOCK_NAMESPACE = 0x5E61  # "seriesgen" in the advisory lock key space


@contextmanager
def series_locks(conn: sa.Connection, series_ids: Sequence[int]) -> Iterator[None]:
    """Hold the locks of ``series_ids`` for the body; ``conn`` must have no open transaction."""
    ids = sorted(set(series_ids))
    if conn.dialect.name == "postgresql":
        with _advisory(conn, ids):
            yield
    elif conn.dialect.name == "sqlite":
        with _file_locks(conn, ids):
            yield
    else:
        yield


@contextmanager
def _advisory(conn: sa.Connection, ids: list[int]) -> Iterator[None]:
    # One round trip: the ordered subquery feeds the locks in id order.
    stmt = sa.text("SELECT count(pg_advisory_lock(:ns, sid)) FROM "
                   "(SELECT unnest(CAST(:ids AS integer[])) AS sid ORDER BY 1) AS ordered")
    conn.execute(stmt, {"ns": _LOCK_NAMESPACE, "ids": ids})
    conn.commit()
    try:
        yield
    finally:
        if not conn.closed and not conn.invalidated:
            try:
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
                conn.commit()
            except sa.exc.DBAPIError:
                conn.invalidate()  # the server releases a dead session's locks


@contextmanager
def _file_locks(conn: sa.Connection, ids: list[int]) -> Iterator[None]:
    database = conn.engine.url.database
    if not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.series-locks", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for sid in ids:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, sid)
        yield
    finally:
        os.close(fd)  # closing releases every lock this process holds on the file
