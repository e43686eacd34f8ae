"""Retiring the series that ended, once their occurrences are all committed (``retire``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from seriesgen_pipeline.core.snapshot import SeriesSnapshot
from seriesgen_pipeline.core.timezones import load_zone
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.locks import series_locks
from seriesgen_pipeline.service.engine.outcomes import RetirementOutcome, short_error
from seriesgen_pipeline.service.faults import fault_point

log = logging.getLogger("seriesgen.engine")


def retire(engine: sa.Engine, snapshots: Iterable[SeriesSnapshot], *, now: datetime,
           generated: Sequence[str] | None = None) -> list[RetirementOutcome]:
    """Retire the series that ended (SPEC §5, FR-004).

    A series is retired once its local date is past ``end_date +
    cleanup_grace_days`` and its watermark covers ``end_date``; the series row
    and its series-scope configuration go, its sessions stay with ``series_id``
    NULL. The current row is re-read under the series lock, so an ``end_date``
    extended during the run keeps the series.
    """
    results: list[RetirementOutcome] = []
    allowed = set(generated) if generated is not None else None
    for snap in snapshots:
        key = snap.series_key
        if snap.config is None or snap.error is not None:
            results.append(RetirementOutcome(key, False, "not generated: the series is broken"))
            continue
        if allowed is not None and key not in allowed:
            results.append(RetirementOutcome(key, False, "not generated in this run"))
            continue
        if not snap.config.generation_enabled:
            results.append(RetirementOutcome(key, False, "generation is disabled"))
            continue
        if snap.spec.end_date is None:
            results.append(RetirementOutcome(key, False, "open-ended"))
            continue
        zone = load_zone(snap.config.timezone)
        due = snap.spec.end_date + timedelta(days=snap.config.cleanup_grace_days)
        if now.astimezone(zone).date() <= due:
            results.append(RetirementOutcome(key, False, f"active until {due}"))
            continue
        try:
            results.append(_retire_one(engine, snap, now=now, zone=zone))
        except Exception as exc:
            results.append(RetirementOutcome(key, False, "failed", error=short_error(exc)))
    return results


def _retire_one(engine: sa.Engine, snap: SeriesSnapshot, *, now: datetime,
                zone: ZoneInfo) -> RetirementOutcome:
    key = snap.series_key
    with engine.connect() as conn, series_locks(conn, [snap.spec.id]), conn.begin():
        row = repo.retirement_state(conn, series_id=snap.spec.id)
        if row is None:
            return RetirementOutcome(key, False, "already retired")
        end_date, mark = row
        if end_date is None or now.astimezone(zone).date() <= end_date + timedelta(
                days=snap.config.cleanup_grace_days if snap.config else 0):
            return RetirementOutcome(key, False, "end_date changed during the run")
        end_of_span = datetime.combine(end_date + timedelta(days=1), datetime.min.time(),
                                       tzinfo=zone)
        if mark is None or mark < end_of_span:
            return RetirementOutcome(key, False,
                                     "waiting: occurrences up to end_date not all committed")
        kept = repo.retire_series(conn, series_id=snap.spec.id)
        fault_point("retirement")
    log.info("retired series %s; %d sessions kept", key, kept)
    return RetirementOutcome(key, True, "retired", sessions_kept=kept)
