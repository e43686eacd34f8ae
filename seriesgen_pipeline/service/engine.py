"""Generation for one series or many: snapshot -> plan -> apply in committed chunks.

- ``take_snapshots`` reads every series and configuration scope in one
  transaction, resolves and validates each series, and stores the snapshots in
  the application database (FR-011).
- ``generate`` expands each valid snapshot over its window (pure core), then,
  in batches of series, takes the series' locks, reads their rows, plans, and
  applies the plan in chunk transactions; each chunk advances
  ``last_generated_through`` of the series it covers in the same transaction
  (FR-010). A broken series fails alone; the others are generated.
- ``retire`` deletes series past ``end_date + cleanup_grace_days`` whose
  occurrences are all committed; their sessions stay (FR-004).
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.generation import continued_sessions, desired_sessions
from seriesgen_pipeline.core.occurrences import WarnDates, Window, window_for
from seriesgen_pipeline.core.reconcile import (
    ReconciliationPlan,
    SessionValues,
    Update,
    plan_reconciliation,
)
from seriesgen_pipeline.core.snapshot import SeriesSnapshot, build_snapshot
from seriesgen_pipeline.core.timezones import load_zone, tz_version
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.locks import series_locks
from seriesgen_pipeline.service.faults import fault_point

log = logging.getLogger("seriesgen.engine")

SUCCESS = "success"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass
class SeriesOutcome:
    """What one run did for one series."""

    series_key: str
    status: str
    series_id: int | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    protected: int = 0
    window: Window | None = None
    duration_ms: int = 0
    config_hash: str | None = None
    provenance: dict[str, str] | None = None
    error: str | None = None
    conflicts: tuple[c.Conflict, ...] = ()
    started_at: datetime | None = None

    @property
    def changed(self) -> bool:
        """True when the run wrote sessions for the series."""
        return bool(self.created or self.updated or self.deleted)

    def counts(self) -> dict[str, int]:
        """The four counters."""
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "protected": self.protected}


@dataclass
class RetirementOutcome:
    """What the cleanup did for one series."""

    series_key: str
    retired: bool
    reason: str
    sessions_kept: int = 0
    error: str | None = None


@dataclass(frozen=True)
class EngineSettings:
    """Tuning of the write path."""

    chunk_rows: int = 10_000  # writes per chunk transaction
    batch_series: int = 64  # series planned and locked together


# ------------------------------------------------------------------ snapshots

def take_snapshots(engine: sa.Engine, *, keys: Sequence[str] | None, now: datetime,
                   run_id: str, store: bool = True) -> dict[str, SeriesSnapshot]:
    """Snapshot series ``keys`` (or all) with their resolved configuration.

    Keys with no series row are absent from the result (deleted or retired).
    """
    taken_at = repo.utcnow()
    with engine.begin() as conn:
        inputs = repo.load_scheduling_inputs(conn, keys=keys)
    snapshots = {
        spec.key: build_snapshot(
            spec, taken_at=taken_at, base=inputs.base,
            branch=inputs.branch_configs.get(spec.branch_id),
            series=inputs.series_configs.get(spec.id),
            branch_known=spec.branch_id in inputs.branches,
            unreadable=inputs.unreadable.get(spec.id, ()),
        )
        for spec in inputs.series
    }
    fault_point("snapshot")
    if store:
        with engine.begin() as conn:
            repo.store_snapshots(conn, run_id=run_id, now=now, snapshots=list(snapshots.values()))
        fault_point("after_snapshot")
    return snapshots


def load_snapshots(engine: sa.Engine, *, run_id: str, keys: Sequence[str]
                   ) -> dict[str, SeriesSnapshot]:
    """The snapshots stored by ``take_snapshots`` for ``run_id``."""
    with engine.begin() as conn:
        payloads = repo.load_snapshot_payloads(conn, run_id=run_id, keys=keys)
    return {k: SeriesSnapshot.from_payload(p) for k, (_, p) in payloads.items()}


@dataclass(frozen=True)
class PreviousRun:
    """What the runs before this one left for each series."""

    fingerprints: dict[str, str | None]
    statuses: dict[str, str]


def previous_run(engine: sa.Engine, *, keys: Sequence[str], run_id: str) -> PreviousRun:
    """Each series' fingerprint and generation status as the runs before ``run_id`` left them."""
    with engine.connect() as conn:
        return PreviousRun(repo.previous_fingerprints(conn, keys=keys, before_run=run_id),
                           repo.previous_statuses(conn, keys=keys, before_run=run_id))


# ------------------------------------------------------------------ generation

@dataclass
class _Work:
    snapshot: SeriesSnapshot
    outcome: SeriesOutcome
    window: Window
    desired: tuple[SessionValues, ...] = ()  # what this run plans (the slice when continuing)
    plan: ReconciliationPlan | None = None
    ops: list[tuple[str, str, Any]] = field(default_factory=list)
    applied: int = 0
    busy_s: float = 0.0
    continue_from: datetime | None = None  # set when only the slice beyond it is planned
    dates: WarnDates = field(default_factory=WarnDates)  # behind the date-based warnings
    state: repo.StateRow | None = None  # written with the series' last chunk
    had_rows: bool = True  # the planner found rows of the series
    new: bool = False  # never generated: its rows are not read, and it is expanded as written


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
    outcomes: list[SeriesOutcome] = []
    work: list[_Work] = []
    for snap in snapshots:
        started = time.perf_counter()
        outcome = SeriesOutcome(snap.series_key, SUCCESS, series_id=snap.spec.id,
                                config_hash=snap.config_hash, started_at=repo.utcnow(),
                                provenance=dict(snap.config.provenance) if snap.config else None)
        outcomes.append(outcome)
        if snap.error is not None:
            outcome.status, outcome.error = FAILED, snap.error.message
            outcome.conflicts = (snap.error_conflict(),)  # type: ignore[assignment]
            continue
        assert snap.config is not None
        if not snap.config.generation_enabled:
            outcome.status = SKIPPED
            outcome.error = (f"generation_enabled is false (set at "
                             f"{snap.config.provenance['generation_enabled']} scope)")
            continue
        window = window_for(now, snap.config.horizon_days)
        outcome.window = window
        work.append(_Work(snap, outcome, window))
        outcome.duration_ms = round((time.perf_counter() - started) * 1000)
    with _cyclic_gc_paused():
        for start in range(0, len(work), settings.batch_series):
            batch = work[start:start + settings.batch_series]
            _run_batch(engine, batch, now=now, run_id=run_id, settings=settings,
                       dry_run=dry_run)
            for item in batch:  # the batch is written: let its rows go
                item.desired, item.ops, item.plan = (), [], None
    if not dry_run:
        _record(engine, outcomes, run_id=run_id, notify_recipient=notify_recipient)
    return outcomes


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


def _expand(item: _Work, state: repo.StateRow | None = None) -> bool:
    """Expand the series over its window (pure core); a failure fails the series alone.

    With ``state``, the series continues its last complete generation: only the
    occurrences after ``state.generated_through`` are expanded, and the warnings
    of the whole window come from those and the dates ``state`` carries.
    """
    started = time.perf_counter()
    try:
        series = item.snapshot.valid()
        if state is None:
            wanted = desired_sessions(series, item.window)
        else:
            wanted = continued_sessions(series, item.window, since=state.generated_through,
                                        carried=WarnDates.from_payload(state.warn_dates or {}))
    except Exception as exc:  # one bad series must not stop the others
        item.outcome.status = FAILED
        item.outcome.error = f"{type(exc).__name__}: {exc}"
        return False
    item.desired = wanted.sessions
    item.dates = wanted.dates
    item.outcome.conflicts = wanted.conflicts
    item.busy_s = time.perf_counter() - started + item.outcome.duration_ms / 1000
    return True


def _run_batch(engine: sa.Engine, batch: list[_Work], *, now: datetime, run_id: str,
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
                    item.applied, item.ops, item.plan, item.state = 0, [], None, None
                    item.new, item.continue_from, item.desired = False, None, ()
                    if item.snapshot.spec.id == exc.series_id:
                        item.outcome.status, item.outcome.error = FAILED, str(exc.error)
                        item.outcome.conflicts = (c.Conflict(
                            item.snapshot.series_key, exc.error.code, c.ERROR,
                            str(exc.error), (),
                            {"field": exc.error.column, "scope": exc.error.scope}),)
                        item.outcome.protected = 0
                remaining = [w for w in remaining if w.outcome.status == SUCCESS]
    finally:
        shared = (time.perf_counter() - started) / max(len(batch), 1)
        for item in batch:
            item.outcome.duration_ms = round((item.busy_s + shared) * 1000)


def _key_of(batch: list[_Work], series_id: int) -> str:
    return next((w.snapshot.series_key for w in batch if w.snapshot.spec.id == series_id),
                str(series_id))


def _run_batch_once(engine: sa.Engine, batch: list[_Work], *, now: datetime, run_id: str,
                    settings: EngineSettings, dry_run: bool) -> None:
    try:
        with engine.connect() as conn, series_locks(conn, [w.snapshot.spec.id for w in batch]):
            live = _plan_batch(conn, batch, now=now, read_all=dry_run)
            if dry_run:
                for item in live:
                    if item.plan is not None:
                        item.outcome.created = len(item.plan.creates)
                        item.outcome.updated = len(item.plan.updates)
                        item.outcome.deleted = len(item.plan.deletes)
                return
            try:
                _apply_batch(conn, live, now=now, run_id=run_id, settings=settings)
            except _RowsInTheWay as exc:
                # A series believed never generated has rows after all (its watermark
                # was cleared by hand): read the batch's rows, plan again, write again.
                log.warning("%s; planning the batch again from its rows", exc)
                again = [w for w in live if w.outcome.status == SUCCESS]
                for item in again:
                    item.applied, item.ops, item.plan, item.state = 0, [], None, None
                    item.new = False
                again = _plan_batch(conn, again, now=now, read_all=True)
                _apply_batch(conn, again, now=now, run_id=run_id, settings=settings)
    except repo.UnreadableRowError:
        raise
    except (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        # The database's fault (the driver's own errors come from the COPY stream): a
        # rerun may succeed.
        log.error("generation failed for %s: %s", ", ".join(w.snapshot.series_key for w in batch),
                  _short(exc))
        lost = isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        what = "database connection lost" if lost else "database error"
        _fail_batch(batch, f"{what} ({_short(exc)}); the write in flight was rolled back; "
                           "rerun the series")
    except Exception as exc:  # seriesgen's own fault: said as such, traceback in the log
        log.error("internal error while generating %s: %s",
                  ", ".join(w.snapshot.series_key for w in batch), _short(exc), exc_info=exc)
        _fail_batch(batch, f"internal error ({type(exc).__name__}: {exc}); the write in flight "
                           "was rolled back; the traceback is in the run's log")


def _fail_batch(batch: list[_Work], error: str) -> None:
    for item in batch:
        if item.outcome.status == SUCCESS:
            item.outcome.status = FAILED
            item.outcome.error = error


class _RowsInTheWay(Exception):
    """Rows turned up for a series whose rows were not read (see ``_plan_batch``)."""


FULL_RECONCILE_EVERY = timedelta(days=7)
_NO_KEY = "9999-12-31"


def _continues(item: _Work, state: repo.StateRow | None, mark: datetime | None,
               now: datetime) -> bool:
    """True when the series' last complete generation still holds up to its end.

    Same series content and configuration (fingerprint), same time-zone database,
    the last run finished (its watermark is the state's end), the window does not
    shrink, and a full reconcile happened within ``FULL_RECONCILE_EVERY``.
    """
    return (state is not None and state.fingerprint == item.snapshot.fingerprint
            and state.tz_version == tz_version() and mark == state.generated_through
            and state.generated_through <= item.window.end
            and now - state.reconciled_at < FULL_RECONCILE_EVERY
            and state.as_of is not None and state.as_of <= now
            and state.row_count is not None and state.warn_dates is not None)


def _plan_batch(conn: sa.Connection, batch: list[_Work], *, now: datetime,
                read_all: bool = False) -> list[_Work]:
    """Expand and plan the batch's series; the caller holds their locks.

    A series that was never generated (no watermark and no generation state; every
    chunk that writes rows of a series sets its watermark) has no rows: unless
    ``read_all``, none are read, and it is left to ``_write_new`` to expand and
    write. Should rows turn up all the same, the write raises ``_RowsInTheWay``.
    """
    ids = [w.snapshot.spec.id for w in batch]
    with conn.begin():
        alive = repo.watermarks(conn, ids=ids)
        states = repo.generation_states(conn, ids=ids)
    for item in batch:
        if item.snapshot.spec.id not in alive:
            item.outcome.status = SKIPPED
            item.outcome.error = "the series was deleted during the run"
    live = [w for w in batch if w.snapshot.spec.id in alive]
    candidates = {w.snapshot.spec.id: states[w.snapshot.spec.id] for w in live
                  if _continues(w, states.get(w.snapshot.spec.id), alive[w.snapshot.spec.id],
                                now)}
    with conn.begin():
        counts = repo.row_counts(conn, since={sid: state.as_of for sid, state
                                              in candidates.items() if state.as_of},
                                 protected_since=now)
    full_since: dict[int, tuple[datetime, str]] = {}
    slice_since: dict[int, tuple[datetime, str]] = {}
    protected: dict[int, int] = {}
    planned: list[_Work] = []
    for item in live:
        sid = item.snapshot.spec.id
        state = states.get(sid)
        total, guarded = counts.get(sid, (0, 0))
        if not read_all and alive[sid] is None and state is None:
            item.new, item.had_rows = True, False
            planned.append(item)
            continue
        if state is not None and sid in candidates and total == state.row_count:
            # Its rows are as the last run left them: plan only the new slice.
            if not _expand(item, state):
                continue
            item.continue_from = state.generated_through
            first = item.desired[0].occurrence_key if item.desired else _NO_KEY
            slice_since[sid] = (state.generated_through + timedelta(microseconds=1), first)
            protected[sid] = guarded
        else:
            if not _expand(item):
                continue
            first = item.desired[0].occurrence_key if item.desired else _NO_KEY
            full_since[sid] = (now, first)
        planned.append(item)
        reconciled_at = state.reconciled_at if state and item.continue_from else now
        fresh = _fresh_state(item, now=now, reconciled_at=reconciled_at)
        same = (item.continue_from is not None and state is not None
                and fresh == dataclasses.replace(state, row_count=None))
        item.state = None if same else fresh
    with conn.begin():
        existing = repo.load_existing_sessions(conn, since=full_since)
        existing.update(repo.load_existing_sessions(conn, since=slice_since))
    for item in planned:
        if item.new:
            continue
        started = time.perf_counter()
        sid = item.snapshot.spec.id
        rows = existing.get(sid, [])
        item.had_rows = bool(rows)
        if item.continue_from is not None:
            keys = {d.occurrence_key for d in item.desired}
            rows = [r for r in rows if r.values.starts_at > item.continue_from
                    or r.values.occurrence_key in keys]
        plan = plan_reconciliation(item.desired, rows, now=now)
        item.plan = plan
        item.outcome.protected = (protected.get(sid, 0) if item.continue_from is not None
                                  else len(plan.protected))
        ops: list[tuple[str, str, Any]] = [("c", v.occurrence_key, v) for v in plan.creates]
        if plan.updates or plan.deletes:
            ops += [("u", u.values.occurrence_key, u) for u in plan.updates]
            row_keys = {e.id: e.values.occurrence_key for e in rows}
            ops += [("d", row_keys[i], i) for i in plan.deletes]
            ops.sort(key=lambda op: op[1])
        item.ops = ops
        item.busy_s += time.perf_counter() - started
        if alive[sid] == item.window.end and not ops and item.state is None:
            item.applied = -1  # nothing at all to write
    return planned


def _fresh_state(item: _Work, *, now: datetime, reconciled_at: datetime,
                 row_count: int | None = None) -> repo.StateRow:
    """The generation state the series has once this run's last chunk of it commits.

    A ``row_count`` left None is counted when the state is saved, in that chunk's
    transaction.
    """
    return repo.StateRow(item.snapshot.spec.id, item.snapshot.fingerprint, tz_version(),
                         item.window.end, reconciled_at, now, row_count,
                         item.dates.to_payload())


def _apply_batch(conn: sa.Connection, live: list[_Work], *, now: datetime, run_id: str,
                 settings: EngineSettings) -> None:
    _write_new(conn, [w for w in live if w.new], now=now, run_id=run_id, settings=settings)
    pending = [w for w in live if not w.new and w.applied >= 0]
    while pending:
        budget = settings.chunk_rows
        creates: list[tuple[repo.SeriesIdentity, SessionValues]] = []
        updates: list[tuple[repo.SeriesIdentity, Update]] = []
        deletes: list[int] = []
        touched: list[tuple[_Work, int]] = []
        copy_direct = True  # every series creating rows in this chunk had none
        for item in pending:
            if budget <= 0 and touched:
                break
            take = item.ops[item.applied:item.applied + budget]
            ident = _identity(item)
            for kind, _, payload in take:
                if kind == "c":
                    creates.append((ident, payload))
                    copy_direct = copy_direct and not item.had_rows
                elif kind == "u":
                    updates.append((ident, payload))
                else:
                    deletes.append(payload)
            budget -= len(take)
            touched.append((item, item.applied + len(take)))
        with conn.begin():
            created = repo.insert_sessions(conn, rows=creates, run_id=run_id,
                                           series_had_no_rows=copy_direct)
            updated = repo.update_sessions(conn, rows=updates, run_id=run_id)
            deleted = repo.delete_sessions(conn, ids=deletes)
            _record_coverage(conn, touched)
        _committed(touched, created, updated, deleted)
        pending = [w for w, end in touched if end < len(w.ops)] + pending[len(touched):]


def _write_new(conn: sa.Connection, items: list[_Work], *, now: datetime, run_id: str,
               settings: EngineSettings) -> None:
    """Expand and write series that were never generated, in chunk transactions.

    Each series is expanded just before its rows are written, into a stream the
    database indexes while the next series is expanded (``new_sessions_writer``).
    A chunk holds up to ``chunk_rows`` rows and advances the watermark of every
    series it covers; a series' generation state goes with its last chunk.
    """
    dbapi_integrity = conn.dialect.loaded_dbapi.IntegrityError
    queue = deque(items)
    while queue:
        budget = settings.chunk_rows
        touched: list[tuple[_Work, int]] = []
        with conn.begin():
            try:
                with repo.new_sessions_writer(conn, run_id=run_id) as writer:
                    while queue and budget > 0:
                        item = queue[0]
                        # Not expanded yet: a series left half-written by the last chunk
                        # has operations, and one with none left the queue at once.
                        if not item.ops and not _expand_new(item, now=now):
                            queue.popleft()  # failed alone
                            continue
                        take = item.ops[item.applied:item.applied + budget]
                        writer.write(_identity(item), (values for _, _, values in take))
                        budget -= len(take)
                        end = item.applied + len(take)
                        touched.append((item, end))
                        if end < len(item.ops):
                            break
                        queue.popleft()
            except (sa.exc.IntegrityError, dbapi_integrity) as exc:
                raise _RowsInTheWay(_in_the_way(touched)) from exc
            if writer.inserted < writer.written:
                raise _RowsInTheWay(_in_the_way(touched))
            _record_coverage(conn, touched)
        _committed(touched, writer.inserted, 0, 0)


def _record_coverage(conn: sa.Connection, touched: list[tuple[_Work, int]]) -> None:
    """In a chunk's transaction: the watermark of every series the chunk covers, and
    the generation state of each whose last operation it holds."""
    repo.set_watermarks(conn, marks={w.snapshot.spec.id: _watermark(w, end)
                                     for w, end in touched})
    repo.save_generation_states(conn, rows=[w.state for w, end in touched
                                            if end >= len(w.ops) and w.state is not None])
    fault_point("chunk_write")


def _committed(touched: list[tuple[_Work, int]], created: int, updated: int,
               deleted: int) -> None:
    """After a chunk commits: its counts go to its series, which move on."""
    fault_point("chunk_commit")
    _attribute(touched, created, updated, deleted)
    for item, end in touched:
        item.applied = end


def _expand_new(item: _Work, *, now: datetime) -> bool:
    if not _expand(item):
        return False
    # With no rows, the plan is to create every occurrence, in occurrence order; all
    # of them start at or after ``now``, and no other run writes rows of the series.
    item.ops = [("c", v.occurrence_key, v) for v in item.desired]
    item.state = _fresh_state(item, now=now, reconciled_at=now, row_count=len(item.ops))
    return True


def _in_the_way(touched: list[tuple[_Work, int]]) -> str:
    return ("existing rows are in the way of new rows of one of "
            + ", ".join(w.snapshot.series_key for w, _ in touched))


def _identity(item: _Work) -> repo.SeriesIdentity:
    return repo.SeriesIdentity(item.snapshot.spec.id, item.snapshot.series_key,
                               item.snapshot.config_hash)


def _watermark(item: _Work, applied: int) -> datetime:
    """Every occurrence up to the returned instant is committed once ``applied`` ops are."""
    if applied >= len(item.ops):
        return item.window.end
    last_key = item.ops[applied - 1][1] if applied else ""
    keys = [d.occurrence_key for d in item.desired]
    index = bisect.bisect_right(keys, last_key) - 1
    if index < 0:
        return item.continue_from or item.window.start
    return item.desired[index].starts_at


def _attribute(touched: list[tuple[_Work, int]], created: int, updated: int,
               deleted: int) -> None:
    """Spread a chunk's row counts over its series; rows refused by a guard are protected."""
    planned = {"c": 0, "u": 0, "d": 0}
    per_item = []
    for item, end in touched:
        counts = {"c": 0, "u": 0, "d": 0}
        for kind, _, _ in item.ops[item.applied:end]:
            counts[kind] += 1
            planned[kind] += 1
        per_item.append((item, counts))
    actual = {"c": created, "u": updated, "d": deleted}
    for kind in ("c", "u", "d"):
        missing = planned[kind] - actual[kind]
        for item, counts in per_item:
            share = counts[kind]
            if missing > 0 and share:
                lost = min(missing, share)
                missing -= lost
                share -= lost
                if kind != "c":
                    item.outcome.protected += lost
            if kind == "c":
                item.outcome.created += share
            elif kind == "u":
                item.outcome.updated += share
            else:
                item.outcome.deleted += share


def _record(engine: sa.Engine, outcomes: list[SeriesOutcome], *, run_id: str,
            notify_recipient: str | None) -> None:
    """Write the run's bookkeeping; one retry when the server dropped the connection.

    Each attempt is one transaction (reads, then one write transaction), so a
    connection lost half-way leaves nothing and the retry starts over on a fresh
    connection. The sessions themselves are committed already.
    """
    for attempt in (1, 2):
        try:
            _record_once(engine, outcomes, run_id=run_id, notify_recipient=notify_recipient)
            return
        except sa.exc.DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("lost the database connection while recording run %s (%s); retrying",
                        run_id, _short(exc))


def _record_once(engine: sa.Engine, outcomes: list[SeriesOutcome], *, run_id: str,
                 notify_recipient: str | None) -> None:
    finished = repo.utcnow()
    with engine.connect() as conn:
        found = _double_bookings(conn, outcomes)
    conflicts = {o.series_key: (*o.conflicts, *found.get(o.series_key, ())) for o in outcomes}
    logs = [{
        "run_id": run_id, "series_key": o.series_key, "status": o.status,
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
        repo.write_generation_log(conn, rows=logs)
        repo.replace_conflicts(conn, series_keys=[o.series_key for o in outcomes],
                               rows=conflict_rows)
        if notify_recipient:
            repo.insert_notifications(conn, rows=[{
                "recipient_type": "SYSTEM", "recipient": notify_recipient,
                "kind": "series_conflict", "severity": k.severity,
                "series_key": o.series_key, "code": k.code, "message": k.message,
                "details": {**k.details, "dates": [d.isoformat() for d in k.dates],
                            "config_hash": o.config_hash},
                "dedupe_key": k.dedupe_key(o.config_hash or ""), "created_at": finished,
            } for o in outcomes for k in conflicts[o.series_key]])
        fault_point("record")
    for o in outcomes:
        o.conflicts = conflicts[o.series_key]


def _double_bookings(conn: sa.Connection, outcomes: list[SeriesOutcome]
                     ) -> dict[str, list[c.Conflict]]:
    """Room and instructor double bookings against other series, per series key."""
    generated = [o for o in outcomes if o.status == SUCCESS and o.window and o.series_id]
    if not generated:
        return {}
    overlaps = repo.find_double_bookings(
        conn, series_ids=[o.series_id for o in generated if o.series_id],
        since=min(o.window.start for o in generated if o.window),
        until=max(o.window.end for o in generated if o.window))
    keys = {o.series_key for o in generated}
    found: dict[str, list[c.Conflict]] = {}
    for conflict in c.overlap_conflicts(overlaps):
        if conflict.series_key in keys:
            found.setdefault(conflict.series_key, []).append(conflict)
    return found


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ------------------------------------------------------------------ retirement

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
            results.append(RetirementOutcome(key, False, "failed", error=_short(exc)))
    return results


def _retire_one(engine: sa.Engine, snap: SeriesSnapshot, *, now: datetime,
                zone: Any) -> RetirementOutcome:
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


def current_fingerprints(engine: sa.Engine) -> dict[str, str]:
    """``series key -> fingerprint`` of every series as it is now (for change detection)."""
    snapshots = take_snapshots(engine, keys=None, now=repo.utcnow(), run_id="", store=False)
    return {key: snap.fingerprint for key, snap in snapshots.items()}
