"""Recording a run: per series, its ``generation_log`` row, its current conflicts with
the room and instructor double bookings found against all other series, and, with a
recipient, a de-duplicated notification per conflict.

The sessions are committed already; the record is one transaction of its own, tried
again once when the server dropped the connection.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine.outcomes import SUCCESS, SeriesOutcome, short_error
from seriesgen_pipeline.service.faults import fault_point

log = logging.getLogger("seriesgen.engine")


def record(engine: sa.Engine, outcomes: Sequence[SeriesOutcome], *, run_id: str,
           notify_recipient: str | None) -> list[SeriesOutcome]:
    """Write the run's bookkeeping; one retry when the server dropped the connection.

    Each attempt is one transaction (reads, then one write transaction), so a
    connection lost half-way leaves nothing and the retry starts over on a fresh
    connection. Returns the outcomes with the double bookings among their conflicts.
    """
    try:
        return _record_once(engine, outcomes, run_id=run_id, notify_recipient=notify_recipient)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("lost the database connection while recording run %s (%s); retrying",
                    run_id, short_error(exc))
    return _record_once(engine, outcomes, run_id=run_id, notify_recipient=notify_recipient)


def _record_once(engine: sa.Engine, outcomes: Sequence[SeriesOutcome], *, run_id: str,
                 notify_recipient: str | None) -> list[SeriesOutcome]:
    finished = repo.utcnow()
    with engine.connect() as conn:
        found = _double_bookings(conn, outcomes)
    conflicts = {o.series_key: (*o.conflicts, *found.get(o.series_key, ())) for o in outcomes}
    logs = [{
        "run_id": run_id, "series_key": o.series_key, "status": str(o.status),
        "started_at": o.started_at or finished,
        "finished_at": (o.started_at + timedelta(milliseconds=o.duration_ms)
                        if o.started_at else finished),
        "window_start": o.window.start if o.window else None,
        "window_end": o.window.end if o.window else None,
        "created": o.created, "updated": o.updated, "deleted": o.deleted,
        "protected": o.protected, "error": o.error, "config_hash": o.config_hash,
    } for o in outcomes]
    conflict_rows = [{
        "series_key": o.series_key, "code": k.code, "severity": k.severity,
        "message": k.message, "dates": [d.isoformat() for d in k.dates],
        "details": k.details, "config_hash": o.config_hash, "run_id": run_id,
        "detected_at": finished,
    } for o in outcomes for k in conflicts[o.series_key]]
    with engine.begin() as conn:
        # Conflicts first: replacing them reads the stored ones, so the transaction
        # reads before it writes (its written rows stay locked for less time).
        repo.replace_conflicts(conn, series_keys=[o.series_key for o in outcomes],
                               rows=conflict_rows)
        repo.write_generation_log(conn, rows=logs)
        if notify_recipient:
            repo.insert_notifications(conn, rows=_notifications(
                outcomes, conflicts, recipient=notify_recipient, created_at=finished))
        fault_point("record")
    return [dataclasses.replace(o, conflicts=conflicts[o.series_key])
            if o.series_key in found else o for o in outcomes]


def _notifications(outcomes: Sequence[SeriesOutcome],
                   conflicts: dict[str, tuple[c.Conflict, ...]], *, recipient: str,
                   created_at: datetime) -> list[dict[str, Any]]:
    """A ``notifications`` row per conflict; ``dedupe_key`` keeps a known one from
    being notified twice."""
    return [{
        "recipient_type": "SYSTEM", "recipient": recipient,
        "kind": "series_conflict", "severity": k.severity,
        "series_key": o.series_key, "code": k.code, "message": k.message,
        "details": {**k.details, "dates": [d.isoformat() for d in k.dates],
                    "config_hash": o.config_hash},
        "dedupe_key": k.dedupe_key(o.config_hash or ""), "created_at": created_at,
    } for o in outcomes for k in conflicts[o.series_key]]


def _double_bookings(conn: sa.Connection, outcomes: Sequence[SeriesOutcome]
                     ) -> dict[str, list[c.Conflict]]:
    """Room and instructor double bookings against other series, per series key."""
    generated = [o for o in outcomes if o.status == SUCCESS and o.window and o.series_id]
    if not generated:
        return {}
    bookings = repo.find_double_bookings(
        conn, series_ids=[o.series_id for o in generated if o.series_id],
        since=min(o.window.start for o in generated if o.window),
        until=max(o.window.end for o in generated if o.window))
    keys = {o.series_key for o in generated}
    found: dict[str, list[c.Conflict]] = {}
    for conflict in c.double_booking_conflicts(bookings):
        if conflict.series_key in keys:
            found.setdefault(conflict.series_key, []).append(conflict)
    return found
