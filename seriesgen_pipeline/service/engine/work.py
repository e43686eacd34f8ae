"""One series on its way through a run, and the tuning of the write path.

A run prepares each series (``SeriesWork``), plans it (``SeriesPlan``, one per
planning attempt), writes the plan in chunks and counts what each chunk committed
(``Tally``), and builds the series' ``SeriesOutcome`` once, at the end. The plan is
immutable; what changes while a run goes on is said by the few fields of
``SeriesWork`` that the planner and the writer move forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.incremental import watermark
from seriesgen_pipeline.core.occurrences import Window
from seriesgen_pipeline.core.reconcile import Operation, SessionValues
from seriesgen_pipeline.core.snapshot import SeriesSnapshot
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine.outcomes import SUCCESS, SeriesOutcome, Status


@dataclass(frozen=True)
class EngineSettings:
    """Tuning of the write path."""

    chunk_rows: int = 10_000  # writes per chunk transaction
    batch_series: int = 256  # series planned and locked together


@dataclass(frozen=True)
class SeriesPlan:
    """What one planning attempt decided to write for one series.

    Attributes:
        operations: the writes, in occurrence-key order (for a series never
            generated, its desired sessions themselves: every one is a create).
        desired: the sessions the plan wants, in occurrence-key order (the slice
            beyond ``continue_from`` when the plan continues an earlier generation).
        continue_from: where the planned slice starts, or None for a whole window.
        state: the generation state saved with the series' last chunk, or None when
            the stored one still holds.
        had_rows: the planner found rows of the series (False: their creates may
            take the fast path of a series with no rows).
        settled: nothing at all to write: no operation, no new state, and the
            watermark already at the window's end.
    """

    operations: Sequence[Operation]
    desired: Sequence[SessionValues]
    continue_from: datetime | None
    state: repo.StateRow | None
    had_rows: bool
    settled: bool = False


@dataclass(frozen=True)
class Stopped:
    """Why a series did not succeed: its status, error and, when they replace the
    warnings of its expansion, its conflicts."""

    status: Status
    error: str
    conflicts: tuple[c.Conflict, ...] | None = None


@dataclass
class Tally:
    """What a series' committed chunks wrote, and the rows left alone.

    ``protected`` is set by each plan (the protected rows it found) and grows by
    the writes a guard refused (a booking made after the plan).
    """

    created: int = 0
    updated: int = 0
    deleted: int = 0
    protected: int = 0

    def add(self, *, created: int = 0, updated: int = 0, deleted: int = 0,
            refused: int = 0) -> None:
        """Count what one chunk did for the series."""
        self.created += created
        self.updated += updated
        self.deleted += deleted
        self.protected += refused


@dataclass(eq=False)
class SeriesWork:
    """A series between its preparation and its outcome.

    Attributes:
        snapshot: the series as the run sees it.
        window: its window in this run.
        started_at: when the run started on it.
        prepared_ms: the time its preparation took.
        duration_ms: the time the run spent on it (its share of its batch).
        busy_s: the time spent on it alone (expanding, planning) in its batch.
        plan: the current planning attempt's plan, if any.
        new: never generated: it is expanded and planned as it is written.
        applied: how many operations of ``plan`` are committed.
        recount: a chunk holding its writes wrote fewer than planned (a guard
            refused one): its row count is taken again when its state is saved.
        conflicts: the warnings of its last expansion.
        tally: what its committed chunks wrote.
        stopped: why it did not succeed, once it did not.
    """

    snapshot: SeriesSnapshot
    window: Window
    started_at: datetime
    prepared_ms: int
    duration_ms: int = 0
    busy_s: float = 0.0
    plan: SeriesPlan | None = None
    new: bool = False
    applied: int = 0
    recount: bool = False
    conflicts: tuple[c.Conflict, ...] = ()
    tally: Tally = field(default_factory=Tally)
    stopped: Stopped | None = None

    @property
    def series_id(self) -> int:
        """The series' row id."""
        return self.snapshot.spec.id

    @property
    def series_key(self) -> str:
        """The series' key."""
        return self.snapshot.series_key

    @property
    def succeeding(self) -> bool:
        """Nothing has stopped the series so far."""
        return self.stopped is None

    def stop(self, status: Status, error: str,
             conflicts: tuple[c.Conflict, ...] | None = None) -> None:
        """The series ends with ``status``: it is planned and written no further."""
        self.stopped = Stopped(status, error, conflicts)

    def start_over(self) -> None:
        """Forget the current plan and its progress (committed counts stay)."""
        self.plan, self.applied, self.new = None, 0, False

    def identity(self) -> repo.SeriesIdentity:
        """What its new rows are stamped with."""
        return repo.SeriesIdentity(self.series_id, self.series_key, self.snapshot.config_hash)

    def covered_through(self, applied: int) -> datetime:
        """Every occurrence up to the returned instant is committed once ``applied``
        operations of the plan are."""
        plan = self.plan
        assert plan is not None, "only a planned series has a watermark"
        return watermark(plan.operations, applied, plan.desired, window=self.window,
                         continue_from=plan.continue_from)

    def outcome(self) -> SeriesOutcome:
        """The series' outcome, as the run leaves it."""
        snap, stopped, tally = self.snapshot, self.stopped, self.tally
        conflicts = self.conflicts
        if stopped is not None and stopped.conflicts is not None:
            conflicts = stopped.conflicts
        return SeriesOutcome(
            snap.series_key, stopped.status if stopped else SUCCESS, series_id=snap.spec.id,
            created=tally.created, updated=tally.updated, deleted=tally.deleted,
            protected=tally.protected, window=self.window, duration_ms=self.duration_ms,
            config_hash=snap.config_hash,
            provenance=dict(snap.config.provenance) if snap.config else None,
            error=stopped.error if stopped else None, conflicts=conflicts,
            started_at=self.started_at)
