"""What runs leave behind: runs, generation log, snapshots, conflicts, notifications."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from seriesgen_pipeline.persistence.repository.tables import (
    INSERT_BATCH,
    among,
    among_parts,
    conflicts_t,
    is_among,
    log_t,
    notifications_t,
    pg_type,
    runs_t,
    series_t,
    sessions_t,
    slices,
    snapshots_t,
    unnest_arrays,
)

# ``generation_log``'s columns but its id, which the database numbers.
_LOG_COLUMNS = tuple(column.name for column in log_t.columns if column.name != "id")


def write_generation_log(conn: sa.Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``generation_log`` rows (each with every column but ``id``), numbered in
    their order: on PostgreSQL in one statement from one bound array per column,
    elsewhere in batches."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        arrays = unnest_arrays({name: pg_type(log_t.c[name]) for name in _LOG_COLUMNS})
        conn.execute(sa.text(f"INSERT INTO generation_log ({', '.join(_LOG_COLUMNS)}) "
                             f"SELECT * FROM {arrays}"),
                     {name: [row[name] for row in rows] for name in _LOG_COLUMNS})
        return
    for part in slices(list(rows), INSERT_BATCH):
        conn.execute(sa.insert(log_t), part)


def logged_series(conn: sa.Connection, *, run_id: str) -> set[str]:
    """Keys of the series ``run_id`` has a ``generation_log`` row for."""
    return set(conn.execute(sa.select(log_t.c.series_key).where(log_t.c.run_id == run_id))
               .scalars())


def generation_log_rows(conn: sa.Connection, *, run_ids: Sequence[str]
                        ) -> list[sa.RowMapping]:
    """The ``generation_log`` rows of ``run_ids``, by series key."""
    return list(conn.execute(sa.select(log_t).where(log_t.c.run_id.in_(run_ids))
                             .order_by(log_t.c.series_key)).mappings())


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


def store_snapshots(conn: sa.Connection, *, run_id: str, now: datetime,
                    snapshots: Sequence[Any]) -> int:
    """Record the run in ``generation_runs`` and store those of its snapshots whose
    fingerprint differs from their series' latest stored one. Returns how many it stored.

    A run that stored its snapshots before (the same ``run_id``, started again)
    replaces its record, which counts every snapshot stored under its id.
    """
    latest = latest_snapshot_fingerprints(conn, keys=[s.series_key for s in snapshots])
    new = [s for s in snapshots
           if s.series_key not in latest or latest[s.series_key] != s.fingerprint]
    rows = [{
        "run_id": run_id, "series_key": s.series_key, "series_id": s.spec.id,
        "taken_at": s.taken_at, "now": now, "fingerprint": s.fingerprint,
        "config_hash": s.config_hash, "payload": s.to_payload(),
    } for s in new]
    for part in slices([s.series_key for s in new], 5000):
        conn.execute(sa.delete(snapshots_t).where(snapshots_t.c.run_id == run_id,
                                                  snapshots_t.c.series_key.in_(part)))
    for part in slices(rows, INSERT_BATCH):
        conn.execute(sa.insert(snapshots_t), part)
    stored = conn.execute(sa.select(sa.func.count()).select_from(snapshots_t)
                          .where(snapshots_t.c.run_id == run_id)).scalar_one()
    started_at = min((s.taken_at for s in snapshots), default=now)
    conn.execute(sa.delete(runs_t).where(runs_t.c.run_id == run_id))
    conn.execute(sa.insert(runs_t).values(run_id=run_id, started_at=started_at, now=now,
                                          series=len(snapshots), snapshots_stored=stored))
    return len(new)


def latest_snapshot_fingerprints(conn: sa.Connection, *, keys: Sequence[str]
                                 ) -> dict[str, str | None]:
    """``series key -> fingerprint`` of each series' latest stored snapshot."""
    t, newer = snapshots_t, snapshots_t.alias("newer")
    out: dict[str, str | None] = {}
    for among_keys in among(conn, t.c.series_key, keys, size=5000):
        out.update(conn.execute(sa.select(t.c.series_key, t.c.fingerprint).where(
            among_keys,
            ~sa.select(newer.c.run_id).where(newer.c.series_key == t.c.series_key,
                                             newer.c.taken_at > t.c.taken_at).exists())
        ).all())
    return out


def previous_statuses(conn: sa.Connection, *, keys: Sequence[str], before_run: str
                      ) -> dict[str, str]:
    """The status of each series' latest ``generation_log`` row written by another run.

    Latest is the row whose run started the series last. Each series' row is found
    through the (series, start) index, so the cost does not grow with the history
    that retention keeps. Series without a row, or without a ``class_series`` row
    any more, are absent.
    """
    t = log_t
    out: dict[str, str] = {}
    latest = (sa.select(t.c.status)
              .where(t.c.series_key == series_t.c.key, t.c.run_id != before_run)
              .order_by(t.c.started_at.desc(), t.c.id.desc()).limit(1)
              .scalar_subquery())
    for among_keys in among(conn, series_t.c.key, keys):
        query = sa.select(series_t.c.key, latest).where(among_keys)
        out.update((key, status) for key, status in conn.execute(query) if status is not None)
    return out


def replace_conflicts(conn: sa.Connection, *, series_keys: Sequence[str],
                      rows: Sequence[Mapping[str, Any]]) -> int:
    """Make ``rows`` the current conflicts of ``series_keys``. Returns how many series
    had their conflicts rewritten.

    A series whose stored conflicts are already those of ``rows`` keeps its rows,
    and so the run and instant that first found them (``run_id``, ``detected_at``);
    the others' are replaced. A stored row that cannot be read counts as a change.
    """
    wanted: dict[str, list[Mapping[str, Any]]] = {key: [] for key in series_keys}
    for row in rows:
        wanted[row["series_key"]].append(row)
    stored = _stored_conflicts(conn, list(wanted))
    changed = [key for key, found in wanted.items()
               if stored.get(key, []) != sorted(_conflict_identity(r) for r in found)]
    for part in slices(changed, 5000):
        conn.execute(sa.delete(conflicts_t).where(conflicts_t.c.series_key.in_(part)))
    for rows_part in slices([r for key in changed for r in wanted[key]], INSERT_BATCH):
        conn.execute(sa.insert(conflicts_t), rows_part)
    return len(changed)


_CONFLICT_IDENTITY = ("code", "severity", "message", "dates", "details", "config_hash")


def _conflict_identity(row: Mapping[str, Any]) -> str:
    """What makes a stored conflict the same conflict: everything but when and by
    which run it was found (one JSON text)."""
    return json.dumps([row[name] for name in _CONFLICT_IDENTITY], sort_keys=True, default=str)


def _stored_conflicts(conn: sa.Connection, keys: Sequence[str]
                      ) -> dict[str, list[str] | None]:
    """``series key -> sorted identities`` of its stored conflicts (None: unreadable)."""
    t = conflicts_t
    out: dict[str, list[str] | None] = {}
    columns = [t.c.series_key, *(t.c[name] for name in _CONFLICT_IDENTITY)]
    for part in among_parts(conn, keys, 5000):
        try:
            found = conn.execute(sa.select(*columns).where(is_among(conn, t.c.series_key, part))
                                 ).mappings().all()
        except (ValueError, TypeError):  # a value the JSON columns cannot decode
            out.update(dict.fromkeys(part))
            continue
        for row in found:
            identities = out.setdefault(row["series_key"], [])
            if identities is not None:
                identities.append(_conflict_identity(row))
    return {key: sorted(found) if found is not None else None for key, found in out.items()}


def insert_notifications(conn: sa.Connection, *, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert notifications whose ``dedupe_key`` is new. Returns rows inserted."""
    if not rows:
        return 0
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    unique = list({r["dedupe_key"]: r for r in rows}.values())
    stmt = insert(notifications_t).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return conn.execute(stmt, unique).rowcount



def prune_run_records(conn: sa.Connection, *, series_keys: Sequence[str], before: datetime
                      ) -> dict[str, int]:
    """Forget run records of ``series_keys`` older than ``before``; returns rows deleted
    per table.

    Each series keeps its latest snapshot and its latest ``generation_log`` row
    whatever their age (what the next run compares against), and the latest
    notification of each of its conflicts still current (it keeps that conflict
    from being notified again). The ``generation_runs`` rows older than ``before``
    go too.
    """
    if conn.dialect.name == "postgresql":
        # The estimates of these deletes pass jit_above_cost while they touch few rows:
        # compiling them took most of the prune's time.
        conn.exec_driver_sql("SET LOCAL jit = off")
    newer_snapshot = snapshots_t.alias("newer")
    newer_log = log_t.alias("newer")
    newer_note = notifications_t.alias("newer")
    notes, current = notifications_t, conflicts_t
    return {
        "series_snapshots": _delete_among(
            conn, snapshots_t, series_keys, snapshots_t.c.taken_at < before,
            sa.select(newer_snapshot.c.run_id).where(
                newer_snapshot.c.series_key == snapshots_t.c.series_key,
                newer_snapshot.c.taken_at > snapshots_t.c.taken_at).exists()),
        "generation_log": _delete_among(
            conn, log_t, series_keys, log_t.c.started_at < before,
            sa.select(newer_log.c.id).where(newer_log.c.series_key == log_t.c.series_key,
                                            newer_log.c.id > log_t.c.id).exists()),
        "notifications": _delete_among(
            conn, notes, series_keys, notes.c.created_at < before,
            sa.or_(~sa.select(current.c.id).where(current.c.series_key == notes.c.series_key,
                                                  current.c.code == notes.c.code).exists(),
                   sa.select(newer_note.c.id).where(newer_note.c.series_key == notes.c.series_key,
                                                    newer_note.c.code == notes.c.code,
                                                    newer_note.c.id > notes.c.id).exists())),
        "generation_runs": conn.execute(sa.delete(runs_t).where(
            runs_t.c.started_at < before)).rowcount,
    }


def _delete_among(conn: sa.Connection, table: sa.Table, series_keys: Sequence[str],
                  *where: Any) -> int:
    """Delete the rows of ``series_keys`` matching ``where``; returns how many."""
    return sum(conn.execute(sa.delete(table).where(keys, *where)).rowcount
               for keys in among(conn, table.c.series_key, series_keys))
