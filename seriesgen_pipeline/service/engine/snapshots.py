"""Snapshots: every series with its resolved configuration, as one run sees it (FR-011).

``take_snapshots`` reads the series and configuration scopes in one transaction,
resolves and validates each series, and records the run (``generation_runs``) with
the snapshots that are new: those whose fingerprint differs from their series'
latest stored one. So ``series_snapshots`` holds what each run generated from
(a series' latest snapshot taken at or before the run started) at a cost that
follows what changed, not the number of series. The run generates from the
snapshots it took, in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from seriesgen_pipeline.core.config import BranchResolver, ConfigValues
from seriesgen_pipeline.core.snapshot import SeriesSnapshot, build_snapshot
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.faults import fault_point


def take_snapshots(engine: sa.Engine, *, keys: Sequence[str] | None, now: datetime,
                   run_id: str, store: bool = True) -> dict[str, SeriesSnapshot]:
    """Snapshot series ``keys`` (or all) with their resolved configuration.

    Keys with no series row are absent from the result (deleted or retired).
    """
    taken_at = repo.utcnow()
    with engine.begin() as conn:
        inputs = repo.load_scheduling_inputs(conn, keys=keys)
    resolver = BranchResolver(inputs.base or ConfigValues())
    snapshots = {
        spec.key: build_snapshot(
            spec, taken_at=taken_at, base=inputs.base,
            branch=inputs.branch_configs.get(spec.branch_id),
            series=inputs.series_configs.get(spec.id),
            branch_known=spec.branch_id in inputs.branches,
            unreadable=inputs.unreadable.get(spec.id, ()), resolver=resolver,
        )
        for spec in inputs.series
    }
    fault_point("snapshot")
    if store:
        with engine.begin() as conn:
            repo.store_snapshots(conn, run_id=run_id, now=now, snapshots=list(snapshots.values()))
        fault_point("after_snapshot")
    return snapshots


@dataclass(frozen=True)
class PreviousRun:
    """What the runs before this one left for each series."""

    statuses: dict[str, str]


def previous_run(engine: sa.Engine, *, keys: Sequence[str], run_id: str) -> PreviousRun:
    """Each series' generation status as the runs before ``run_id`` left it."""
    with engine.connect() as conn:
        return PreviousRun(repo.previous_statuses(conn, keys=keys, before_run=run_id))


def current_fingerprints(engine: sa.Engine) -> dict[str, str]:
    """``series key -> fingerprint`` of every series as it is now (for change detection)."""
    snapshots = take_snapshots(engine, keys=None, now=repo.utcnow(), run_id="", store=False)
    return {key: snap.fingerprint for key, snap in snapshots.items()}
