"""Recording per-series outcomes in Dagster cheaply and exactly.

A run covers many series, and Dagster's own bookkeeping would otherwise
dominate: by default it writes one "planned" event per partition per asset at
run start and one event per yielded materialization, each in its own storage
transaction (about 10 ms each). seriesgen keeps the bookkeeping small:

- Runs are created with ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1``
  (one planned event per asset per run). Dagster then no longer marks every
  unmaterialized partition of a failed run as failed, so ``mark_failed`` reports
  a per-partition planned event for exactly the series that failed: with the
  run's failure, those partitions — and only those — show as failed.
- Materializations are written in batches (one multi-row insert per asset on
  PostgreSQL storage) instead of one transaction each.
- The assets record a materialization only where something changed or the
  partition is not materialized yet (see ``assets.py``).

Both helpers use Dagster internals (``DagsterEvent`` constructors and batch
metadata, pinned by ``dagster==1.13.27``) and fall back to the public
``context.log_event`` if those ever move.
"""

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import dagster as dg

BATCH_SIZE = "1000"
SUBSET_PLANNED_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


@contextmanager
def _batched_writes() -> Iterator[None]:
    previous = os.environ.get("DAGSTER_EVENT_BATCH_SIZE")
    if not previous:
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = BATCH_SIZE
    try:
        yield
    finally:
        if not previous:
            os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)


def record_materializations(context: dg.AssetExecutionContext,
                            materializations: Iterable[dg.AssetMaterialization]) -> int:
    """Write the materializations of this step, batched per asset. Returns how many."""
    by_asset: dict[dg.AssetKey, list[dg.AssetMaterialization]] = {}
    for materialization in materializations:
        by_asset.setdefault(materialization.asset_key, []).append(materialization)
    written = 0
    try:
        from dagster._core.events import (
            DagsterEvent,
            DagsterEventBatchMetadata,
            generate_event_batch_id,
        )

        step_context = context.op_execution_context._step_execution_context
    except (ImportError, AttributeError):  # pragma: no cover - only if internals move
        for items in by_asset.values():
            for materialization in items:
                context.log_event(materialization)
                written += 1
        return written
    with _batched_writes():
        for items in by_asset.values():
            batch_id = generate_event_batch_id()
            last = len(items) - 1
            for index, materialization in enumerate(items):
                # Building the event logs it, with the batch it belongs to.
                DagsterEvent.asset_materialization(
                    step_context, materialization,
                    DagsterEventBatchMetadata(batch_id, index == last))
                written += 1
    return written


def mark_failed(context: dg.AssetExecutionContext, keys: Sequence[str],
                asset_keys: Sequence[dg.AssetKey]) -> None:
    """Make exactly ``keys`` show as failed once the run fails (see the module doc)."""
    if not keys:
        return
    try:
        from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

        step_key = context.op_execution_context._step_execution_context.step.key
    except (ImportError, AttributeError):  # pragma: no cover - only if internals move
        return
    for asset_key in asset_keys:
        for key in keys:
            event = DagsterEvent.build_asset_materialization_planned_event(
                job_name=context.run.job_name, step_key=step_key,
                asset_materialization_planned_data=AssetMaterializationPlannedData(
                    asset_key, partition=key))
            context.instance.report_dagster_event(event, context.run.run_id)
