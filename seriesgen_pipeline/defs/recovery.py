"""``failed_run_partitions``: the series a failed or crashed run did not finish show Failed.

A generation run records its series at its end, and marks the series that failed
itself. A run that dies before (its worker killed, its code server gone, the
database lost mid-run) records nothing, and with one planned event per asset per
run Dagster would leave its partitions as they were: new series "Missing", the
others "Materialized" with the metadata of an older run. This sensor watches
failed runs of the generation assets and marks every partition of the run that
has neither a materialization nor a planned event in it, for each of the three
assets, as planned by that run — so they show Failed, "backfill failed and
missing" picks them up, and the rerun records them with current metadata
(``assets.py``). Partitions deleted meanwhile (retired or deleted series), and
those of a later run that did not fail (its retry, a rerun: it sets their status),
are left alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from seriesgen_pipeline.defs.assets import CLEANUP, RESOLVED, SESSIONS, series_generation
from seriesgen_pipeline.defs.monitoring import mark_unfinished
from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.unfinished import record_unfinished_run

ASSETS = (RESOLVED, SESSIONS, CLEANUP)
PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def run_partition_keys(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The partition keys a generation run covered that still exist."""
    order = instance.get_dynamic_partitions(str(class_series_partitions.name))
    if PARTITION_TAG in run.tags:
        return [key for key in [run.tags[PARTITION_TAG]] if key in order]
    first, last = run.tags.get(RANGE_START), run.tags.get(RANGE_END)
    if first is None or last is None or first not in order or last not in order:
        return []
    return order[order.index(first):order.index(last) + 1]


def unfinished_partitions(instance: dg.DagsterInstance, run: dg.DagsterRun
                          ) -> list[tuple[dg.AssetKey, str]]:
    """(asset, partition) pairs of ``run`` with neither a materialization nor a planned
    event of their own in it."""
    if not _generates(run):
        return []
    keys = run_partition_keys(instance, run)
    if not keys:
        return []
    records = instance.get_records_for_run(
        run.run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION,
                             dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED}).records
    done = set()
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.asset_key is not None and event.partition is not None:
            done.add((event.asset_key, event.partition))
    covered = _covered_since(instance, run)
    return [(asset, key) for asset in ASSETS for key in keys
            if (asset, key) not in done and key not in covered]


# A run in one of these states, created after the failed one, has generated (or will
# generate) its series: their status is for that run to set.
_LATER = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.SUCCESS]


def _covered_since(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[str]:
    """The keys of generation runs created after ``run`` that did not fail (a retry, a
    rerun, the next night)."""
    record = instance.get_run_record_by_id(run.run_id)
    if record is None:
        return set()
    later = instance.get_runs(filters=dg.RunsFilter(created_after=record.create_timestamp,
                                                    statuses=_LATER))
    covered: set[str] = set()
    for other in later:
        if other.run_id != run.run_id and _generates(other):
            covered.update(run_partition_keys(instance, other))
    return covered


def _generates(run: dg.DagsterRun) -> bool:
    if run.asset_selection:  # the UI's and backfills' runs of the implicit asset job
        return SESSIONS in run.asset_selection
    return run.job_name == "series_generation_job"


@dg.run_failure_sensor(
    name="failed_run_partitions", minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the series a failed or crashed generation run did not finish as "
                "failed, so that 'backfill failed and missing' reruns them.")
def failed_run_partitions(context: dg.RunFailureSensorContext,
                          seriesgen: SeriesgenResource) -> None:
    """Mark what the failed run left unfinished (see the module doc), and log in
    ``generation_log`` what it committed for the series it did not record."""
    run = context.dagster_run
    unfinished = unfinished_partitions(context.instance, run)
    if unfinished:
        marked = mark_unfinished(context.instance, run, series_generation.op.name, unfinished)
        context.log.info(f"run {run.run_id}: {marked} unfinished partition(s) marked failed")
        record = context.instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record is not None and record.start_time else None
        logged = record_unfinished_run(
            seriesgen.engine(), run_id=run.run_id,
            keys=sorted({key for asset, key in unfinished if asset == SESSIONS}),
            started_at=(datetime.fromtimestamp(started, UTC) if started else repo.utcnow()),
            reason="the run ended before this series was recorded (its worker stopped or "
                   "was killed); what it committed stays; rerun the series")
        context.log.info(f"run {run.run_id}: {logged} series logged as unfinished")
