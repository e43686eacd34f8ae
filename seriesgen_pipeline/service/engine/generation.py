"""Generation of many series: prepare each, then plan and write them batch by batch.

The series with nothing to do as of ``now`` are found first, all at once
(``planning.settle``). Of the others, in batches of ``batch_series``, the batch's
series locks are taken, the batch is planned (``planning``) and written in chunk
transactions (``writing``); the run is then recorded (``recording``). A broken
series fails alone; the others are generated. A batch that meets a database error
fails as a whole (its committed chunks stay, and a rerun goes on from them); any
other error is seriesgen's own and said as such, with its traceback in the log.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.occurrences import window_for
from seriesgen_pipeline.core.snapshot import SeriesSnapshot
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.locks import series_locks
from seriesgen_pipeline.service.engine.outcomes import (
    FAILED,
    SKIPPED,
    SeriesOutcome,
    Status,
    short_error,
)
from seriesgen_pipeline.service.engine.planning import plan_batch, settle
from seriesgen_pipeline.service.engine.recording import record
from seriesgen_pipeline.service.engine.work import EngineSettings, SeriesWork
from seriesgen_pipeline.service.engine.writing import RowsInTheWay, apply_batch, planned_counts

log = logging.getLogger("seriesgen.engine")


def generate(
    engine: sa.Engine,
    snapshots: Iterable[SeriesSnapshot],
    *,
    now: datetime,
    run_id: str,
    settings: EngineSettings | None = None,
    dry_run: bool = False,
    notify_recipient: str | None = None,
) -> list[SeriesOutcome]:
    """Generate the sessions of every snapshot as of ``now``.

    Returns one outcome per snapshot, in the order given. Outcomes, the
    ``generation_log`` rows and the current conflicts are written for every
    series, failed and skipped ones included (except in a dry run). A dry run
    reports what it would write and writes nothing. With ``notify_recipient``,
    each new conflict is written once to ``notifications``.
    """
    settings = settings or EngineSettings()
    prepared = [_prepare(snap, now=now) for snap in snapshots]
    work = settle(engine, [p for p in prepared if isinstance(p, SeriesWork)], now=now)
    with _cyclic_gc_paused():
        for start in range(0, len(work), settings.batch_series):
            batch = work[start:start + settings.batch_series]
            _run_batch(engine, batch, now=now, run_id=run_id, settings=settings,
                       dry_run=dry_run)
            for item in batch:  # the batch is written: let its rows go
                item.plan = None
    outcomes = [p.outcome() if isinstance(p, SeriesWork) else p for p in prepared]
    if dry_run:
        return outcomes
    return record(engine, outcomes, run_id=run_id, notify_recipient=notify_recipient)


def _prepare(snap: SeriesSnapshot, *, now: datetime) -> SeriesWork | SeriesOutcome:
    """The series' work, or at once its outcome when it is broken or disabled."""
    started = time.perf_counter()
    started_at = repo.utcnow()
    provenance = dict(snap.config.provenance) if snap.config else None
    if snap.error is not None:
        conflict = snap.error_conflict()
        assert conflict is not None, "a broken snapshot has its error conflict"
        return SeriesOutcome(snap.series_key, FAILED, series_id=snap.spec.id,
                             config_hash=snap.config_hash, provenance=provenance,
                             error=snap.error.message, conflicts=(conflict,),
                             started_at=started_at)
    assert snap.config is not None, "a snapshot without an error has its configuration"
    if not snap.config.generation_enabled:
        return SeriesOutcome(snap.series_key, SKIPPED, series_id=snap.spec.id,
                             config_hash=snap.config_hash, provenance=provenance,
                             error=(f"generation_enabled is false (set at "
                                    f"{snap.config.provenance['generation_enabled']} scope)"),
                             started_at=started_at)
    window = window_for(now, snap.config.horizon_days)
    prepared_ms = round((time.perf_counter() - started) * 1000)
    return SeriesWork(snap, window, started_at, prepared_ms, duration_ms=prepared_ms)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a run plans and writes.

    A night creates and frees millions of small acyclic objects (occurrences,
    session values, row tuples); reference counting frees every one of them, but
    the allocation bursts also trigger collections that walk every live object
    (Dagster's included): about a quarter of the expansion's time. Cycles made
    meanwhile are collected once the collector is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_batch(engine: sa.Engine, batch: list[SeriesWork], *, now: datetime, run_id: str,
               settings: EngineSettings, dry_run: bool) -> None:
    """Plan and write a batch; a series whose rows cannot be read fails alone.

    Such a series is found while the batch is planned, before its own writes: it
    fails with the table, row and column at fault, and the batch is run again
    without it (rows the first attempt committed are found by the replan).
    """
    started = time.perf_counter()
    remaining = batch
    try:
        while remaining:
            try:
                _run_batch_once(engine, remaining, now=now, run_id=run_id, settings=settings,
                                dry_run=dry_run)
                return
            except repo.UnreadableRowError as exc:
                log.error("series %s failed: %s", _key_of(remaining, exc.series_id), exc)
                for item in remaining:
                    item.start_over()
                    if item.series_id == exc.series_id:
                        _fail_unreadable(item, exc)
                remaining = [w for w in remaining if w.succeeding]
    finally:
        shared = (time.perf_counter() - started) / max(len(batch), 1)
        for item in batch:
            item.duration_ms = round((item.busy_s + shared) * 1000)


def _fail_unreadable(item: SeriesWork, exc: repo.UnreadableRowError) -> None:
    """The series fails on a stored value it depends on, named in its error conflict."""
    item.stop(Status.FAILED, str(exc.error), conflicts=(c.Conflict(
        item.series_key, exc.error.code, c.ERROR, str(exc.error), (),
        {"field": exc.error.column, "scope": exc.error.scope}),))
    item.tally.protected = 0


def _key_of(batch: Sequence[SeriesWork], series_id: int) -> str:
    return next((w.series_key for w in batch if w.series_id == series_id), str(series_id))


def _run_batch_once(engine: sa.Engine, batch: list[SeriesWork], *, now: datetime, run_id: str,
                    settings: EngineSettings, dry_run: bool) -> None:
    try:
        with engine.connect() as conn, series_locks(conn, [w.series_id for w in batch]):
            live = plan_batch(conn, batch, now=now, read_all=dry_run)
            if dry_run:
                for item in live:
                    if item.plan is not None:
                        item.tally.add(**planned_counts(item.plan.operations))
                return
            try:
                apply_batch(conn, live, now=now, run_id=run_id, settings=settings)
            except RowsInTheWay as exc:
                # A series believed never generated has rows after all (its watermark
                # was cleared by hand): read the batch's rows, plan again, write again.
                log.warning("%s; planning the batch again from its rows", exc)
                again = [w for w in live if w.succeeding]
                for item in again:
                    item.start_over()
                again = plan_batch(conn, again, now=now, read_all=True)
                apply_batch(conn, again, now=now, run_id=run_id, settings=settings)
    except repo.UnreadableRowError:
        raise
    except (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        # The database's fault (the driver's own errors come from the COPY stream): a
        # rerun may succeed.
        log.error("generation failed for %s: %s", ", ".join(w.series_key for w in batch),
                  short_error(exc))
        lost = isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        what = "database connection lost" if lost else "database error"
        _fail_batch(batch, f"{what} ({short_error(exc)}); the write in flight was rolled back; "
                           "rerun the series")
    except Exception as exc:  # seriesgen's own fault: said as such, traceback in the log
        log.error("internal error while generating %s: %s",
                  ", ".join(w.series_key for w in batch), short_error(exc), exc_info=exc)
        _fail_batch(batch, f"internal error ({type(exc).__name__}: {exc}); the write in flight "
                           "was rolled back; the traceback is in the run's log")


def _fail_batch(batch: Sequence[SeriesWork], error: str) -> None:
    for item in batch:
        if item.succeeding:
            item.stop(Status.FAILED, error)
