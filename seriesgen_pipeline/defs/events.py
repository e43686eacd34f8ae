"""Recording per-series outcomes in Dagster cheaply and exactly.

A run covers many series, and Dagster's own bookkeeping would otherwise
dominate: by default it writes one "planned" event per partition per asset at
run start and one event per yielded materialization, each in its own storage
transaction (about 10 ms each). seriesgen keeps the bookkeeping small:

- Runs are created with ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1``
  (one planned event per asset per run; the project's instance class sets it in
  every Dagster process, see ``internals.py``). Dagster then no longer marks every
  unmaterialized partition of a failed run as failed, so ``mark_failed`` reports
  a per-partition planned event for exactly the series that failed: with the
  run's failure, those partitions — and only those — show as failed.
- The UI names a partition's "latest run" after its latest *per-partition*
  planned event, which only failures have. So when a series that failed (or was
  left unfinished by a crashed run) is materialized again, ``record_materializations``
  first reports a per-partition planned event of the current run for it: the run
  that materialized the partition is then its latest run, and the page no longer
  says an earlier run "failed, and did not materialize this asset". This costs two
  queries per asset and one event per such partition, none for the others.
- Materializations are written in batches (one multi-row insert per asset on
  PostgreSQL storage) instead of one transaction each.
- The assets record a materialization only where something changed or the
  partition is not materialized yet (see ``assets.py``).

The Dagster internals this takes are in ``internals.py``; if one moves, the code
location fails to load, naming it (no silent fallback).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from seriesgen_pipeline.defs.internals import (
    SUBSET_PLANNED_EVENTS,
    latest_planned_runs,
    log_materializations,
    report_planned,
)

BATCH_SIZE = 1000
# Runs whose per-partition planned event puts a failure banner on the partition's page.
_BANNER_STATUSES = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

__all__ = ["BATCH_SIZE", "SUBSET_PLANNED_EVENTS", "mark_failed", "record_materializations",
           "stale_latest_runs"]


def record_materializations(context: dg.AssetExecutionContext,
                            materializations: Iterable[dg.AssetMaterialization]) -> int:
    """Write the materializations of this step, batched per asset. Returns how many.

    A partition whose latest run (as the UI shows it) is an earlier failed or
    canceled run first gets a planned event of this run, so that this run, which
    materializes it, becomes its latest run.
    """
    by_asset: dict[dg.AssetKey, list[dg.AssetMaterialization]] = {}
    for materialization in materializations:
        by_asset.setdefault(materialization.asset_key, []).append(materialization)
    for asset_key, items in by_asset.items():
        partitions = [m.partition for m in items if m.partition is not None]
        report_planned(context, asset_key, stale_latest_runs(
            context.instance, asset_key, partitions, run_id=context.run.run_id))
    for items in by_asset.values():
        log_materializations(context, items, BATCH_SIZE)
    return sum(len(items) for items in by_asset.values())


def stale_latest_runs(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                      partitions: Sequence[str], *, run_id: str) -> list[str]:
    """Of ``partitions``, those whose latest run is another run that failed or was canceled."""
    if not partitions:
        return []
    latest = {partition: other for partition, other
              in latest_planned_runs(instance, asset_key, partitions).items()
              if other != run_id}
    if not latest:
        return []
    ended = {run.run_id for run in instance.get_runs(
        filters=dg.RunsFilter(run_ids=sorted(set(latest.values())),
                              statuses=list(_BANNER_STATUSES)))}
    return [partition for partition in partitions if latest.get(partition) in ended]


def mark_failed(context: dg.AssetExecutionContext, keys: Sequence[str],
                asset_keys: Sequence[dg.AssetKey]) -> None:
    """Make exactly ``keys`` show as failed once the run fails (see the module doc)."""
    if not keys:
        return
    for asset_key in asset_keys:
        report_planned(context, asset_key, keys)
