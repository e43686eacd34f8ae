"""Room and instructor double bookings between series (SPEC conflicts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.conflicts import Overlap
from seriesgen_pipeline.persistence.repository.tables import (
    series_t,
    sessions_t,
    slices,
    uncoerced,
)

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
        for part in slices(ids, 2000):
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
        for part in slices(marked, 2000):
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
    for part in slices(ids, 5000):
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

