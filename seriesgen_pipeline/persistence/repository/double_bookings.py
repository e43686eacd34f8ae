"""Room and instructor double bookings between series (SPEC conflicts), kept up to date
by what changed.

``session_overlaps`` holds every pair of scheduled sessions of two series that
overlap in one branch's room (or instructor). ``refresh_overlaps`` brings it up
to date from what triggers (migrations 0006, 0010) log for every statement that
writes ``class_sessions`` (an update that changes nothing a double booking depends
on is not logged):

- the id of every row deleted or updated (``session_removals``): its pairs as they
  were go, and no other pair depends on it;
- the spans of days of the starts written, inserted or updated into a scheduled
  row, in each (resource, branch, value) group (``session_changes``): the refresh
  re-examines each logged span (one day more on each side: sessions last at most a
  day) for the pairs as they are now.

A session cancelled or deleted so costs no scan. The refresh deletes the log rows it
read; a night that changed nothing reads an empty log. Every session is scanned instead
the first time, after a ``TRUNCATE`` of ``class_sessions``, and
every ``FULL_SCAN_EVERY``, which also covers writes made with triggers disabled
(a restore).

One refresh runs at a time (an advisory lock on PostgreSQL, SQLite's write lock)
in one transaction that reads the log and the sessions from one snapshot
(``REPEATABLE READ``): a change committed after that snapshot stays in the log
for the next refresh.

A scan marks, in (start, id) order within each group, the sessions that start
before an earlier one has ended (a running maximum of ``ends_at``); every
overlapping pair has its later session marked, so only marked sessions are
probed for the sessions they overlap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from seriesgen_pipeline.core import readers
from seriesgen_pipeline.core.conflicts import DoubleBooking, Overlap
from seriesgen_pipeline.persistence.locks import overlaps_refresh_lock
from seriesgen_pipeline.persistence.repository.tables import (
    among,
    among_parts,
    insert_through_staging,
    is_among,
    overlaps_state_t,
    overlaps_t,
    session_changes_t,
    session_removals_t,
    sessions_t,
    slices,
    uncoerced,
    unnest_arrays,
    utcnow,
)

FULL_SCAN_EVERY = timedelta(days=7)
RESOURCES = ("room", "instructor")
_DAY = timedelta(days=1)
# The span of a group whose logged starts cannot be read: all of it.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)

# Logged spans of one group at most this far apart are re-examined as one.
_JOIN_SPANS_WITHIN = timedelta(days=7)

Group = tuple[str, str]  # (branch_id, value)
Span = tuple[datetime, datetime]
Spans = list[tuple[Group, Span]]  # a group may have several, apart
PairKey = tuple[str, int, int]  # (resource, a_id, b_id), a_id < b_id
# A ``session_overlaps`` row, its values in the order of ``PAIR_COLUMNS``.
Pair = tuple[Any, ...]
PAIR_COLUMNS = tuple(column.name for column in overlaps_t.columns)
_STAGING = "seriesgen_new_overlaps"
# The groups' spans as bound arrays (``_group_arrays``), on PostgreSQL.
_GROUP_ARRAYS = unnest_arrays({"branches": "text", "values": "text", "lows": "timestamptz",
                               "highs": "timestamptz"})


def find_double_bookings(conn: sa.Connection, *, series_ids: Sequence[int], since: datetime,
                         until: datetime) -> list[DoubleBooking]:
    """The double bookings of ``series_ids``: their scheduled sessions starting in
    ``[since, until]`` that overlap a scheduled session of another series in the same
    branch and room (or instructor), grouped per series, other series and resource.

    Brings ``session_overlaps`` up to date first. ``conn`` must have no open
    transaction.
    """
    refresh_overlaps(conn)
    return read_double_bookings(conn, series_ids=series_ids, since=since, until=until)


def refresh_overlaps(conn: sa.Connection, *, full: bool = False) -> None:
    """Bring ``session_overlaps`` up to date with ``class_sessions``.

    Re-examines the logged spans, or every session when ``full``, on the first
    refresh, after a ``TRUNCATE``, or ``FULL_SCAN_EVERY`` after the last full scan.
    """
    with overlaps_refresh_lock(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        now = utcnow()
        last_full = conn.execute(sa.select(overlaps_state_t.c.full_scan_at)
                                 .where(overlaps_state_t.c.id == 1)).scalar_one_or_none()
        if full or last_full is None or now - last_full >= FULL_SCAN_EVERY:
            conn.execute(sa.delete(overlaps_t))
            for resource in RESOURCES:
                _write_pairs(conn, _pairs(conn, resource, _marked_everywhere(conn, resource)))
            _set_full_scan(conn, now)
        else:
            # A pair can only go with a session logged by id: whatever a pair depends
            # on, a change to it logs the session's id (a side whose start cannot be
            # read, on SQLite, included). The spans only add the pairs as they are now.
            _forget_removed(conn)
            logged = _logged_spans(conn)
            for resource in RESOURCES:
                spans = logged.get(resource)
                if spans:
                    pairs = _pairs(conn, resource, _marked_in_spans(conn, resource, spans))
                    by_group: dict[Group, list[Span]] = {}
                    for group, span in spans:
                        by_group.setdefault(group, []).append(span)
                    _write_pairs(conn, {key: row for key, row in pairs.items()
                                        if _touches(row, by_group)})
        # The rows this snapshot sees, and only those: a later change stays logged.
        conn.execute(sa.delete(session_changes_t))
        conn.execute(sa.delete(session_removals_t))


def read_overlaps(conn: sa.Connection, *, series_ids: Sequence[int], since: datetime,
                  until: datetime) -> list[Overlap]:
    """The overlaps in ``session_overlaps`` of sessions of ``series_ids`` starting in
    ``[since, until]``, one per session and other session and resource."""
    o = overlaps_t
    found: list[Overlap] = []
    wanted = sorted(set(series_ids))
    with conn.begin():
        for side, other in (("a", "b"), ("b", "a")):
            for part in slices(wanted, 2000):
                query = sa.select(
                    o.c[f"{side}_series_key"], o.c[f"{other}_series_key"], o.c.resource,
                    o.c.value, o.c[f"{side}_occurrence"], o.c.branch_id,
                ).where(o.c[f"{side}_series_id"].in_(part),
                        o.c[f"{side}_starts_at"].between(since, until))
                found.extend(Overlap(*row) for row in conn.execute(query))
    return found


def read_double_bookings(conn: sa.Connection, *, series_ids: Sequence[int], since: datetime,
                         until: datetime) -> list[DoubleBooking]:
    """The overlaps ``read_overlaps`` finds, grouped by the database: one row per
    series, other series, resource, value and branch, with the dates of its sessions
    (a night reads a row per double booking, not one per pair of sessions)."""
    o = overlaps_t
    postgres = conn.dialect.name == "postgresql"
    dates: dict[tuple[str, str, str, str, str], set[str]] = {}
    wanted = sorted(set(series_ids))
    with conn.begin():
        for side, other in (("a", "b"), ("b", "a")):
            occurrence = sa.distinct(o.c[f"{side}_occurrence"])
            days = (sa.func.array_agg(occurrence) if postgres
                    else sa.func.json_group_array(occurrence))
            group = (o.c[f"{side}_series_key"], o.c[f"{other}_series_key"], o.c.resource,
                     o.c.value, o.c.branch_id)
            for among_ids in among(conn, o.c[f"{side}_series_id"], wanted):
                query = (sa.select(*group, days)
                         .where(among_ids, o.c[f"{side}_starts_at"].between(since, until))
                         .group_by(*group))
                for key, other_key, resource, value, branch, found in conn.execute(query):
                    dates.setdefault((key, other_key, resource, value, branch), set()).update(
                        found if postgres else json.loads(found))
    return [DoubleBooking(*group, tuple(sorted(days))) for group, days in dates.items()]


def _set_full_scan(conn: sa.Connection, when: datetime) -> None:
    done = conn.execute(sa.update(overlaps_state_t).where(overlaps_state_t.c.id == 1)
                        .values(full_scan_at=when)).rowcount
    if not done:
        conn.execute(sa.insert(overlaps_state_t).values(id=1, full_scan_at=when))


def _logged_spans(conn: sa.Connection) -> dict[str, Spans]:
    """``resource -> [((branch, value), (first, last start))]`` of the logged changes,
    the spans of a group within ``_JOIN_SPANS_WITHIN`` of each other joined."""
    c = session_changes_t
    query = (sa.select(c.c.resource, c.c.branch_id, c.c.value, uncoerced(c.c.low),
                       uncoerced(c.c.high)).distinct())
    logged: dict[tuple[str, Group], list[Span]] = {}
    for resource, branch, value, low, high in conn.execute(query):
        try:
            first, last = readers.read_instant(low), readers.read_instant(high)
        except readers.UnreadableValue:
            first = last = None  # a start the booking app garbled: the whole group
        logged.setdefault((resource, (branch, value)), []).append(
            (first or _EARLIEST, last or _LATEST))
    spans: dict[str, Spans] = {}
    for (resource, group), found in logged.items():
        found.sort()
        joined = [found[0]]
        for first, last in found[1:]:
            if first - joined[-1][1] <= _JOIN_SPANS_WITHIN:  # (no overflow at _LATEST)
                joined[-1] = (joined[-1][0], max(joined[-1][1], last))
            else:
                joined.append((first, last))
        spans.setdefault(resource, []).extend((group, span) for span in joined)
    return spans


def _forget_removed(conn: sa.Connection) -> None:
    """Delete the stored pairs of the sessions logged as removed."""
    r, o = session_removals_t, overlaps_t
    ids = sorted(conn.execute(sa.select(r.c.session_id).distinct()).scalars())
    for part in among_parts(conn, ids, postgres_size=50000):
        conn.execute(sa.delete(o).where(sa.or_(is_among(conn, o.c.a_id, part),
                                                is_among(conn, o.c.b_id, part))))


def _touches(row: Pair, spans: dict[Group, list[Span]]) -> bool:
    """Whether a pair has a session starting within a logged span of its group."""
    return any(start is not None and first <= start <= last
               for first, last in spans[(row[3], row[4])] for start in (row[11], row[12]))


def _group_arrays(part: Spans) -> dict[str, list[Any]]:
    return {"branches": [g[0] for g, _ in part], "values": [g[1] for g, _ in part],
            "lows": [s[0] for _, s in part], "highs": [s[1] for _, s in part]}


def _marked_scan(resource: str, *where: Any, per_group: bool) -> sa.Select[Any]:
    """The scheduled sessions matching ``where`` that start before an earlier one
    (in start order) of their group has ended: each is in an overlap. ``per_group``
    orders each (branch, resource) group on its own; otherwise ``where`` is one group."""
    t = sessions_t
    ended_before = sa.func.max(t.c.ends_at).over(
        partition_by=(t.c.branch_id, t.c[resource]) if per_group else None,
        order_by=(t.c.starts_at, t.c.id), rows=(None, -1))
    ordered = (sa.select(t.c.id, t.c.starts_at, ended_before.label("ended_before"))
               .where(t.c.status == "scheduled", *where).subquery())
    return sa.select(ordered.c.id).where(ordered.c.ended_before > ordered.c.starts_at)


def _marked_everywhere(conn: sa.Connection, resource: str) -> list[int]:
    """The marked sessions of every group."""
    return list(conn.execute(_marked_scan(
        resource, sessions_t.c[resource].is_not(None), per_group=True)).scalars())


def _marked_in_spans(conn: sa.Connection, resource: str, spans: Spans) -> list[int]:
    """The marked sessions of each span's group among those starting within a day of it.

    PostgreSQL scans each group through the (branch, resource, start) index, one
    group at a time in a lateral join, so the plan cannot turn quadratic when the
    table has no statistics yet (a first night).
    """
    assert resource in RESOURCES
    t = sessions_t
    ordered = sorted(spans)
    marked: list[int] = []
    if conn.dialect.name == "postgresql":
        for part in slices(ordered, 5000):
            arrays = _group_arrays(part)
            marked.extend(conn.execute(sa.text(
                f"SELECT s.id FROM {_GROUP_ARRAYS} "
                "AS g(branch_id, value, low, high) CROSS JOIN LATERAL ("
                "  SELECT t.id, t.starts_at, max(t.ends_at) OVER (ORDER BY t.starts_at, t.id "
                "    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ended_before"
                f"  FROM class_sessions t WHERE t.branch_id = g.branch_id "
                f"    AND t.{resource} = g.value AND t.status = 'scheduled' "
                "    AND t.starts_at > g.low - interval '1 day' "
                "    AND t.starts_at < g.high + interval '1 day'"
                ") AS s WHERE s.ended_before > s.starts_at"), arrays).scalars())
        return marked
    for (branch, value), (first, last) in ordered:
        marked.extend(conn.execute(_marked_scan(
            resource, t.c.branch_id == branch, t.c[resource] == value,
            t.c.starts_at > first - _DAY, t.c.starts_at < last + _DAY,
            per_group=False)).scalars())
    return marked


def _overlap_join(conn: sa.Connection, resource: str) -> tuple[Any, Any, Any]:
    """``(a, b, join)``: sessions ``b`` of another series overlapping ``a`` on ``resource``."""
    a = sessions_t.alias("a")
    b = sessions_t.alias("b")
    if conn.dialect.name == "sqlite":
        day_before = sa.func.datetime(a.c.starts_at, "-1 day")
    else:
        day_before = a.c.starts_at - sa.literal(_DAY, sa.Interval())
    return a, b, sa.and_(
        b.c.branch_id == a.c.branch_id,
        b.c[resource] == a.c[resource],
        b.c.origin_series_id != a.c.origin_series_id,
        b.c.starts_at > day_before,
        b.c.starts_at < a.c.ends_at,
        b.c.ends_at > a.c.starts_at,
        b.c.status == "scheduled",
    )


def _pairs(conn: sa.Connection, resource: str, marked: list[int]) -> dict[PairKey, Pair]:
    """The overlapping pairs of the ``marked`` sessions, as ``session_overlaps`` rows."""
    a, b, join = _overlap_join(conn, resource)
    # PostgreSQL returns every start as a datetime; SQLite returns stored text.
    start = (lambda raw: raw) if conn.dialect.name == "postgresql" else _start_or_none
    pairs: dict[PairKey, Pair] = {}
    # On PostgreSQL, arrays of 5,000 ids: every part keeps its plan of one index probe
    # per marked session.
    for among_ids in among(conn, a.c.id, sorted(set(marked)), postgres_size=5000):
        query = (sa.select(a.c.id, b.c.id, a.c.origin_series_id, b.c.origin_series_id,
                           a.c.series_key, b.c.series_key, a.c.occurrence_key,
                           b.c.occurrence_key, uncoerced(a.c.starts_at),
                           uncoerced(b.c.starts_at), a.c[resource], a.c.branch_id)
                 .join(b, join).where(among_ids, a.c.status == "scheduled"))
        for r in conn.execute(query):
            first, second = (0, 1) if r[0] < r[1] else (1, 0)
            pairs[(resource, r[first], r[second])] = (
                resource, r[first], r[second], r[11], r[10], r[2 + first], r[2 + second],
                r[4 + first], r[4 + second], r[6 + first], r[6 + second],
                start(r[8 + first]), start(r[8 + second]))
    return pairs


def _start_or_none(raw: Any) -> datetime | None:
    """A stored start, or None when it cannot be read (that side is never reported)."""
    try:
        return readers.read_instant(raw)
    except readers.UnreadableValue:
        return None


def _write_pairs(conn: sa.Connection, pairs: dict[PairKey, Pair]) -> None:
    """Insert ``pairs``, each replacing the stored row of its key.

    PostgreSQL copies them into a temporary table and inserts them from it in one
    statement; SQLite inserts them a batch per statement.
    """
    if not pairs:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in PAIR_COLUMNS[3:])
        with raw.cursor() as cur:  # type: ignore[union-attr]
            insert_through_staging(
                cur, table="session_overlaps", staging=_STAGING, columns=PAIR_COLUMNS,
                rows=pairs.values(),
                on_conflict=f"ON CONFLICT (resource, a_id, b_id) DO UPDATE SET {update}")
        return
    stmt = sqlite.insert(overlaps_t)
    stmt = stmt.on_conflict_do_update(
        index_elements=["resource", "a_id", "b_id"],
        set_={c: stmt.excluded[c] for c in PAIR_COLUMNS[3:]})
    for part in slices(list(pairs.values()), 1000):
        conn.execute(stmt, [dict(zip(PAIR_COLUMNS, row, strict=True)) for row in part])
