"""Planning a batch: expand each series (pure core) and plan its writes against its rows.

Before the batches, ``settle`` finds at once, without locks, the series with nothing
to do as of ``now`` (a rerun of a night finds most series so): they take no batch.
The caller of ``plan_batch`` holds the batch's series locks. Per series, the planner
decides between three ways (see ``core.incremental``):

- never generated (no watermark, no generation state): it has no rows; none are
  read, and the writer expands it as it writes it (``writing.write_new``);
- continuing its last complete generation: only the occurrences beyond that
  generation's end are expanded, and only the rows beyond it are read;
- otherwise the whole window is expanded and every future row of it read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from seriesgen_pipeline.core.generation import (
    DesiredSessions,
    continued_sessions,
    desired_sessions,
)
from seriesgen_pipeline.core.incremental import (
    continues,
    rows_beyond,
    rows_from_after,
    settled,
)
from seriesgen_pipeline.core.occurrences import WarnDates
from seriesgen_pipeline.core.reconcile import (
    ExistingSession,
    ordered_operations,
    plan_reconciliation,
)
from seriesgen_pipeline.core.timezones import tz_version
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine.outcomes import Status
from seriesgen_pipeline.service.engine.work import SeriesPlan, SeriesWork

# Reads the rows of a series from an instant on, and those of any occurrence key
# from this one on: a series that wants no session has no key to start from.
_NO_KEY = "9999-12-31"


def expand(item: SeriesWork, state: repo.StateRow | None = None) -> DesiredSessions | None:
    """Expand the series over its window (pure core); a failure stops the series alone.

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
                                        carried=WarnDates.from_payload(state.warn_dates or {}),
                                        carried_from=state.as_of)
    except Exception as exc:  # one bad series must not stop the others
        item.stop(Status.FAILED, f"{type(exc).__name__}: {exc}")
        return None
    item.conflicts = wanted.conflicts
    item.busy_s = time.perf_counter() - started + item.prepared_ms / 1000
    return wanted


def fresh_state(item: SeriesWork, wanted: DesiredSessions, *, now: datetime,
                reconciled_at: datetime, row_count: int | None = None) -> repo.StateRow:
    """The generation state the series has once this run's last chunk of it commits.

    A ``row_count`` left None is counted when the state is saved, in that chunk's
    transaction.
    """
    return repo.StateRow(item.series_id, item.snapshot.fingerprint, tz_version(),
                         item.window.end, reconciled_at, now, row_count,
                         wanted.dates.to_payload())


@dataclass(frozen=True)
class _Expanded:
    """A series expanded, waiting for its rows to be read."""

    item: SeriesWork
    wanted: DesiredSessions
    continue_from: datetime | None
    state: repo.StateRow | None
    guarded: int  # its protected rows from ``now`` on (counted when it may continue)
    current: int  # its rows from ``now`` on (counted when it may continue)


def settle(engine: sa.Engine, work: Sequence[SeriesWork], *, now: datetime
           ) -> list[SeriesWork]:
    """Settle the series with nothing to do as of ``now``; returns the others.

    A series is settled when its last complete generation was as of ``now`` and
    reached its window's end, its fingerprint and the time-zone database are
    unchanged (``core.incremental.settled``), its rows from ``now`` on are as many
    as that generation left, and none starts after its end. Its outcome is that
    generation's: nothing written, its protected rows from ``now`` on, and the
    warnings carried in its state. The reads are one snapshot of the database and
    take no lock: a run writing the series meanwhile has either committed a chunk of
    it (its watermark or rows moved: it is planned in a batch, under its lock) or
    not yet (the outcome is the database's before that run, as if this one went first).
    """
    if not work:
        return []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            states = repo.states_as_of(conn, ids=[w.series_id for w in work], now=now)
            zone_db = tz_version()
            # Each state read is its series' watermark (``states_as_of``).
            maybe = {w.series_id: state for w in work
                     if (state := states.get(w.series_id)) is not None
                     and settled(state, fingerprint=w.snapshot.fingerprint, tz_version=zone_db,
                                 watermark=state.generated_through, window=w.window, now=now)}
            counts = repo.rows_from(conn, since=now, beyond={
                sid: state.generated_through for sid, state in maybe.items()})
    rest = []
    for item in work:
        state = maybe.get(item.series_id)
        total, guarded, after = counts.get(item.series_id, (0, 0, 0))
        if state is None or total != state.row_count or after:
            rest.append(item)
        elif expand(item, state) is not None:  # else it failed to expand: stopped
            item.tally.protected = guarded
            item.duration_ms = round(item.busy_s * 1000)
    return rest


def plan_batch(conn: sa.Connection, batch: Sequence[SeriesWork], *, now: datetime,
               read_all: bool = False) -> list[SeriesWork]:
    """Expand and plan the batch's series; the caller holds their locks.

    Returns the series that are to be written: each has a plan, or is ``new`` (never
    generated: unless ``read_all``, its rows are not read, and the writer expands
    it; should rows turn up all the same, the write finds them in the way). A
    series deleted meanwhile is skipped, one that fails to expand is failed.
    """
    ids = [w.series_id for w in batch]
    with conn.begin():
        alive = repo.watermarks(conn, ids=ids)
        states = repo.generation_states(conn, ids=ids)
    for item in batch:
        if item.series_id not in alive:
            item.stop(Status.SKIPPED, "the series was deleted during the run")
    live = [w for w in batch if w.series_id in alive]
    zone_db = tz_version()
    candidates = {w.series_id: states[w.series_id] for w in live
                  if continues(states.get(w.series_id), fingerprint=w.snapshot.fingerprint,
                               tz_version=zone_db, watermark=alive[w.series_id],
                               window=w.window, now=now)}
    with conn.begin():
        counts = repo.row_counts(conn, since={sid: state.as_of for sid, state
                                              in candidates.items() if state.as_of},
                                 protected_since=now)
    full_since: dict[int, tuple[datetime, str]] = {}
    slice_since: dict[int, tuple[datetime, str]] = {}
    planned: list[SeriesWork] = []
    expanded: list[_Expanded] = []
    for item in live:
        sid = item.series_id
        state = states.get(sid)
        total, guarded, current = counts.get(sid, (0, 0, 0))
        if not read_all and alive[sid] is None and state is None:
            item.new = True
            planned.append(item)
            continue
        continue_from = None
        if state is not None and sid in candidates and total == state.row_count:
            # Its rows are as the last run left them: plan only the new slice.
            if (wanted := expand(item, state)) is None:
                continue
            continue_from = state.generated_through
            # Read even when the slice is empty (a rerun at the same ``now``): it finds
            # few rows, and a row another writer corrupted (on SQLite a garbled start
            # sorts after every instant) fails the series here, by its name.
            slice_since[sid] = (continue_from + timedelta(microseconds=1), _first_key(wanted))
        else:
            if (wanted := expand(item)) is None:
                continue
            full_since[sid] = (now, _first_key(wanted))
        planned.append(item)
        expanded.append(_Expanded(item, wanted, continue_from,
                                  _state_to_save(item, wanted, state, now=now,
                                                 continue_from=continue_from),
                                  guarded, current))
    with conn.begin():
        existing = repo.load_existing_sessions(conn, since=full_since)
        existing.update(repo.load_existing_sessions(conn, since=slice_since))
    for entry in expanded:
        _plan_one(entry, existing.get(entry.item.series_id, []),
                  watermark=alive[entry.item.series_id], now=now)
    return planned


def _first_key(wanted: DesiredSessions) -> str:
    return wanted.sessions[0].occurrence_key if wanted.sessions else _NO_KEY


def _state_to_save(item: SeriesWork, wanted: DesiredSessions, state: repo.StateRow | None, *,
                   now: datetime, continue_from: datetime | None) -> repo.StateRow | None:
    """The state to save with the series' last chunk (``_plan_one`` sets its row
    count); None when the stored one holds."""
    reconciled_at = state.reconciled_at if state and continue_from else now
    fresh = fresh_state(item, wanted, now=now, reconciled_at=reconciled_at,
                        row_count=state.row_count if state else None)
    return None if continue_from is not None and fresh == state else fresh


def _plan_one(entry: _Expanded, rows: list[ExistingSession], *,
              watermark: datetime | None, now: datetime) -> None:
    """Plan one expanded series against its rows (pure core)."""
    started = time.perf_counter()
    item, desired = entry.item, entry.wanted.sessions
    had_rows = bool(rows)
    if entry.continue_from is not None:
        rows_now = entry.current
        rows = rows_beyond(rows, desired, since=entry.continue_from)
    else:  # every row from ``now`` on was read
        rows_now = sum(row.values.starts_at >= now for row in rows)
    plan = plan_reconciliation(desired, rows, now=now)
    # Continuing, the rows before the slice are not read: their protected ones were counted.
    item.tally.protected = (entry.guarded if entry.continue_from is not None
                            else len(plan.protected))
    operations = ordered_operations(plan, rows)
    state = entry.state
    if state is not None:
        # Its rows from ``now`` on once the plan is written (the writer counts them
        # again should a write not happen).
        state = dataclasses.replace(
            state, row_count=rows_from_after(rows_now, operations, rows, now=now))
    item.plan = SeriesPlan(
        operations, desired, entry.continue_from, state, had_rows,
        settled=watermark == item.window.end and not operations and state is None)
    item.busy_s += time.perf_counter() - started
