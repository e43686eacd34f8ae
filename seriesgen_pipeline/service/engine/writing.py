"""Writing a planned batch in chunk transactions (FR-010).

A chunk holds up to ``chunk_rows`` writes of one or more series, in each series'
occurrence order. In the chunk's transaction, the watermark of every series it
covers advances to how far its committed writes reach, and a series whose last
write it holds saves its generation state. Once the chunk commits, its row counts
go to its series: writes a guard refused (a booking made after the plan) count as
protected. A series' generation state carries the row count its plan foresaw; when
a chunk holding its writes wrote fewer than planned, the count is taken again.

Series never generated are expanded one by one as they are written (``write_new``);
should rows of one turn up after all, ``RowsInTheWay`` is raised and the chunk
rolls back.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from seriesgen_pipeline.core.reconcile import Delete, Operation, SessionValues, Update
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine.planning import expand, fresh_state
from seriesgen_pipeline.service.engine.work import EngineSettings, SeriesPlan, SeriesWork
from seriesgen_pipeline.service.faults import fault_point

# A chunk's share of a series: the series, and how many of its operations are
# committed once the chunk is.
Touched = list[tuple[SeriesWork, int]]


class RowsInTheWay(Exception):
    """Rows turned up for a series whose rows were not read (see ``plan_batch``)."""


def apply_batch(conn: sa.Connection, live: Sequence[SeriesWork], *, now: datetime,
                run_id: str, settings: EngineSettings) -> None:
    """Write the planned series of a batch: the never generated ones first."""
    write_new(conn, [w for w in live if w.new], now=now, run_id=run_id, settings=settings)
    pending = [w for w in live if w.plan is not None and not w.new and not w.plan.settled]
    while pending:
        budget = settings.chunk_rows
        creates: list[tuple[repo.SeriesIdentity, SessionValues]] = []
        updates: list[tuple[repo.SeriesIdentity, Update]] = []
        deletes: list[int] = []
        touched: Touched = []
        copy_direct = True  # every series creating rows in this chunk had none
        for item in pending:
            if budget <= 0 and touched:
                break
            plan = _plan_of(item)
            take = plan.operations[item.applied:item.applied + budget]
            ident = item.identity()
            for op in take:
                if isinstance(op, SessionValues):
                    creates.append((ident, op))
                    copy_direct = copy_direct and not plan.had_rows
                elif isinstance(op, Update):
                    updates.append((ident, op))
                else:
                    deletes.append(op.id)
            budget -= len(take)
            touched.append((item, item.applied + len(take)))
        with conn.begin():
            created = repo.insert_sessions(conn, rows=creates, run_id=run_id,
                                           series_had_no_rows=copy_direct)
            updated = repo.update_sessions(conn, rows=updates, run_id=run_id)
            deleted = repo.delete_sessions(conn, ids=deletes)
            if (created, updated, deleted) != (len(creates), len(updates), len(deletes)):
                for item, _ in touched:  # which series' write did not happen is not known
                    item.recount = True
            _record_coverage(conn, touched)
        _committed(touched, created, updated, deleted)
        pending = ([w for w, end in touched if end < len(_plan_of(w).operations)]
                   + pending[len(touched):])


def write_new(conn: sa.Connection, items: Sequence[SeriesWork], *, now: datetime, run_id: str,
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
        touched: Touched = []
        with conn.begin():
            try:
                with repo.new_sessions_writer(conn, run_id=run_id) as writer:
                    while queue and budget > 0:
                        item = queue[0]
                        # Not expanded yet: a series left half-written by the last chunk
                        # has a plan, and one that failed to expand left the queue at once.
                        if item.plan is None and not _plan_new(item, now=now):
                            queue.popleft()  # failed alone
                            continue
                        sessions = _plan_of(item).desired  # all creates, in this order
                        take = sessions[item.applied:item.applied + budget]
                        writer.write(item.identity(), take)
                        budget -= len(take)
                        end = item.applied + len(take)
                        touched.append((item, end))
                        if end < len(sessions):
                            break
                        queue.popleft()
            except (sa.exc.IntegrityError, dbapi_integrity) as exc:
                raise RowsInTheWay(_in_the_way(touched)) from exc
            if writer.inserted < writer.written:
                raise RowsInTheWay(_in_the_way(touched))
            _record_coverage(conn, touched)
        _committed(touched, writer.inserted, 0, 0)


def planned_counts(operations: Sequence[Operation]) -> dict[str, int]:
    """How many creates, updates and deletes ``operations`` hold (what a dry run reports)."""
    kinds = Counter(map(type, operations))
    return {"created": kinds[SessionValues], "updated": kinds[Update], "deleted": kinds[Delete]}


def _plan_new(item: SeriesWork, *, now: datetime) -> bool:
    """Expand a series never generated; its plan is to create every occurrence."""
    wanted = expand(item)
    if wanted is None:
        return False
    # With no rows, the plan is to create every occurrence, in occurrence order; all
    # of them start at or after ``now``, and no other run writes rows of the series.
    sessions = wanted.sessions
    state = fresh_state(item, wanted, now=now, reconciled_at=now, row_count=len(sessions))
    item.plan = SeriesPlan(sessions, sessions, None, state, had_rows=False)
    return True


def _plan_of(item: SeriesWork) -> SeriesPlan:
    plan = item.plan
    assert plan is not None, "a series is written only once planned"
    return plan


def _in_the_way(touched: Touched) -> str:
    return ("existing rows are in the way of new rows of one of "
            + ", ".join(w.series_key for w, _ in touched))


def _record_coverage(conn: sa.Connection, touched: Touched) -> None:
    """In a chunk's transaction: the watermark of every series the chunk covers, and
    the generation state of each whose last operation it holds."""
    repo.set_watermarks(conn, marks={w.series_id: w.covered_through(end) for w, end in touched})
    states = []
    for item, end in touched:
        plan = _plan_of(item)
        if end >= len(plan.operations) and plan.state is not None:
            # The row count the plan foresaw, unless a write did not happen: then
            # counted again, as this transaction sees the rows.
            states.append(dataclasses.replace(plan.state, row_count=None) if item.recount
                          else plan.state)
    repo.save_generation_states(conn, rows=states)
    fault_point("chunk_write")


def _committed(touched: Touched, created: int, updated: int, deleted: int) -> None:
    """After a chunk commits: its counts go to its series, which move on."""
    fault_point("chunk_commit")
    _attribute(touched, created, updated, deleted)
    for item, end in touched:
        item.applied = end


def _attribute(touched: Touched, created: int, updated: int, deleted: int) -> None:
    """Spread a chunk's row counts over its series; rows refused by a guard are protected."""
    planned = [Counter(map(type, _plan_of(item).operations[item.applied:end]))
               for item, end in touched]
    made = _shares(planned, SessionValues, created)
    changed = _shares(planned, Update, updated)
    removed = _shares(planned, Delete, deleted)
    for (item, _), (new, _), (rewritten, kept), (gone, stayed) in zip(
            touched, made, changed, removed, strict=True):
        # Only updates and deletes have a guard: a create that did not happen counts nowhere.
        item.tally.add(created=new, updated=rewritten, deleted=gone, refused=kept + stayed)


def _shares(planned: list[Counter[type]], kind: type, actual: int) -> list[tuple[int, int]]:
    """Per series of a chunk: its writes of ``kind`` that happened, and those that did not.

    The chunk knows only how many of its writes of ``kind`` happened in all; the
    shortfall is charged to its series in order.
    """
    missing = sum(counts[kind] for counts in planned) - actual
    shares = []
    for counts in planned:
        share, lost = counts[kind], 0
        if missing > 0 and share:
            lost = min(missing, share)
            missing -= lost
            share -= lost
        shares.append((share, lost))
    return shares
