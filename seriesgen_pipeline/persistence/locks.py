"""Per-series serialization of writers (FR-011), and of double-booking refreshes.

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
from typing import Any

import sqlalchemy as sa

_LOCK_NAMESPACE = 0x5E61  # "seriesgen" in the advisory lock key space
_OVERLAPS_NAMESPACE = 0x5E62  # the double-booking refresh, apart from the series


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
def overlaps_refresh_lock(conn: sa.Connection) -> Iterator[None]:
    """One double-booking refresh at a time; ``conn`` must have no open transaction.

    PostgreSQL: a session-level advisory lock taken before the refresh's transaction
    begins, so that its snapshot sees what the refresh before it committed. SQLite:
    nothing here; the refresh's own write lock (``BEGIN IMMEDIATE``) serializes it.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    with _held(conn, sa.text("SELECT pg_advisory_lock(:ns, :key)"),
               {"ns": _OVERLAPS_NAMESPACE, "key": 1}):
        yield


@contextmanager
def _advisory(conn: sa.Connection, ids: list[int]) -> Iterator[None]:
    # One round trip: the ordered subquery feeds the locks in id order.
    stmt = sa.text("SELECT count(pg_advisory_lock(:ns, sid)) FROM "
                   "(SELECT unnest(CAST(:ids AS integer[])) AS sid ORDER BY 1) AS ordered")
    with _held(conn, stmt, {"ns": _LOCK_NAMESPACE, "ids": ids}):
        yield


@contextmanager
def _held(conn: sa.Connection, take: Any, params: dict[str, Any]) -> Iterator[None]:
    """Session advisory locks taken by ``take``, all released after the body."""
    conn.execute(take, params)
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
