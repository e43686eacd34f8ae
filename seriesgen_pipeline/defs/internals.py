"""Every private Dagster API and internal setting seriesgen relies on, in one place.

Dagster's public API has no cheap way to record a thousand per-partition
outcomes of one step, nor to make a failed partition's later success the
partition's latest run; seriesgen uses a few internals for that. They are all
imported or read here, at import time, so an upgrade that moves one fails the
code location's load with an ``ImportError`` naming it, never silently. Each is
listed in docs/dagster.md ("Dagster internals") and pinned, for the version in
``DAGSTER_VERSION``, by ``seriesgen_pipeline_tests/defs/test_dagster_internals.py``.

- ``DagsterEvent.asset_materialization`` with ``DagsterEventBatchMetadata`` and
  ``generate_event_batch_id``: a step's materializations written in one batch.
- ``DAGSTER_EVENT_BATCH_SIZE`` (environment, read when an event is stored): the
  size of such a batch.
- ``DagsterEvent.build_asset_materialization_planned_event`` and
  ``AssetMaterializationPlannedData``: per-partition "planned" events.
- ``AssetExecutionContext.op_execution_context._step_execution_context``: the
  step context those constructors need.
- ``EventLogStorage.get_event_records`` filtered by storage ids, and
  ``DagsterInstance.get_latest_storage_id_by_partition``: which run planned a
  partition last (the run the UI shows on the partition's page); with its
  ``after_cursor``, the partitions planned again since their latest
  materialization, read without naming them.
- ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` (environment, read by
  ``EventLogStorage`` in the process that **creates** a run: the daemon for
  schedule, sensor, backfill and retried runs, the webserver for runs launched
  from the UI, the CLI for its own): one planned event per asset per run instead
  of one per partition. ``SeriesgenInstance``, the ``instance_class`` of the
  project's ``dagster.yaml``, sets it in every process that opens the instance,
  before any run is created, so it does not depend on anyone's environment.
- ``InstanceRef.config_defaults``: what a custom instance class must provide.
- ``RunStorage.get_cursor_values`` / ``set_cursor_values`` (the instance's
  key-value store): the change sensor's fingerprints, kept out of its cursor,
  which Dagster copies into every tick record.
- ``DATA_VERSION_TAG`` and ``EventLogStorage.get_latest_tags_by_partition``: each
  partition's recorded fingerprint is its materializations' data version, read
  back for thousands of partitions in one query, without loading their events.
- The engines of dagster-postgres' storages (``_engine``, ``_token_provider``,
  ``postgres_url`` of its run, event log and schedule storages, and
  ``dagster_postgres.utils.create_pg_engine``): a run keeps one connection per
  storage open instead of opening one per call.
- Run health checks for the run launcher (``CheckRunHealthResult``,
  ``WorkerStatus``) and ``DagsterUserCodeUnreachableError`` (``defs/monitoring.py``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventBatchMetadata,
    generate_event_batch_id,
)
from dagster._core.execution.context.system import StepExecutionContext
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine
from sqlalchemy.pool import NullPool

DAGSTER_VERSION = "1.13.27"
SUBSET_PLANNED_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE"

__all__ = [
    "DAGSTER_VERSION",
    "DATA_VERSION_TAG",
    "EVENT_BATCH_SIZE",
    "SUBSET_PLANNED_EVENTS",
    "AssetMaterializationPlannedData",
    "CheckRunHealthResult",
    "DagsterEvent",
    "DagsterUserCodeUnreachableError",
    "InstanceRef",
    "SeriesgenInstance",
    "StepExecutionContext",
    "WorkerStatus",
    "enable_subset_planned_events",
    "get_instance_value",
    "latest_data_versions",
    "latest_planned_runs",
    "log_materializations",
    "planned_since",
    "report_planned",
    "set_instance_value",
    "step_context",
    "storage_connections_kept",
]


@contextmanager
def storage_connections_kept(instance: dg.DagsterInstance) -> Iterator[None]:
    """Within the block, keep a connection of each PostgreSQL storage open between calls.

    Outside the webserver, dagster-postgres opens a new connection for every storage
    call and closes it after (its engines have no pool): about 5 ms each, and a run
    makes about ninety calls on a night that changes nothing. Within the block each
    storage has an engine that keeps one connection, checks it before each use (a
    server restart or a terminated backend costs a reconnect, not an error), and
    opens more at once, without limit as before, when threads call together. After
    it, the connections are closed and the storages have their own engines back.
    SQLite storage, and storage that pools already (the webserver's), are left alone.
    """
    replaced = []
    try:
        for storage in _postgres_storages(instance):
            pooled = create_pg_engine(storage.postgres_url, storage._token_provider,
                                      isolation_level="AUTOCOMMIT", pool_size=1,
                                      max_overflow=-1, pool_pre_ping=True)
            replaced.append((storage, storage._engine))
            storage._engine = pooled
        yield
    finally:
        for storage, own in replaced:
            pooled, storage._engine = storage._engine, own
            pooled.dispose()


def _postgres_storages(instance: dg.DagsterInstance) -> list[Any]:
    kinds = (PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage)
    return [storage for storage in (instance.run_storage, instance.event_log_storage,
                                    instance.schedule_storage)
            if isinstance(storage, kinds) and isinstance(storage._engine.pool, NullPool)]


def enable_subset_planned_events() -> None:
    """One planned event per asset per run, for every run this process creates."""
    os.environ[SUBSET_PLANNED_EVENTS] = "1"


class SeriesgenInstance(dg.DagsterInstance):
    """seriesgen's Dagster instance: Dagster's own, with one planned event per asset per run.

    Named by ``instance_class`` in the project's ``dagster.yaml``, so every process
    that opens the instance (daemon, webserver, code server, run worker, CLI) runs
    this before it can create a run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        enable_subset_planned_events()
        super().__init__(*args, **kwargs)

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        """No settings of its own."""
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, Any]:
        """Dagster's defaults (storage under ``base_dir``)."""
        return InstanceRef.config_defaults(base_dir)


def step_context(context: dg.AssetExecutionContext) -> StepExecutionContext:
    """The system step context behind an asset's execution context."""
    found = context.op_execution_context._step_execution_context
    if not isinstance(found, StepExecutionContext):  # pragma: no cover - an upgrade moved it
        raise TypeError(f"unexpected step context {type(found).__name__} (Dagster internals "
                        f"pinned for dagster=={DAGSTER_VERSION}; see docs/dagster.md)")
    return found


def log_materializations(context: dg.AssetExecutionContext,
                         materializations: Sequence[dg.AssetMaterialization],
                         batch_size: int) -> None:
    """Store ``materializations`` (of one asset) as one batch of this step's events."""
    if not materializations:
        return
    step = step_context(context)
    previous = os.environ.get(EVENT_BATCH_SIZE)
    if not previous:
        os.environ[EVENT_BATCH_SIZE] = str(batch_size)
    try:
        batch_id = generate_event_batch_id()
        last = len(materializations) - 1
        for index, materialization in enumerate(materializations):
            # Building the event logs it, with the batch it belongs to.
            DagsterEvent.asset_materialization(
                step, materialization, DagsterEventBatchMetadata(batch_id, index == last))
    finally:
        if not previous:
            os.environ.pop(EVENT_BATCH_SIZE, None)


def report_planned(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                   partitions: Iterable[str]) -> None:
    """A per-partition planned event of this run and step for each of ``partitions``."""
    step_key = step_context(context).step.key
    for partition in partitions:
        event = DagsterEvent.build_asset_materialization_planned_event(
            job_name=context.run.job_name, step_key=step_key,
            asset_materialization_planned_data=AssetMaterializationPlannedData(
                asset_key, partition=partition))
        context.instance.report_dagster_event(event, context.run.run_id)


def latest_planned_runs(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                        partitions: Iterable[str]) -> dict[str, str]:
    """``partition -> run id`` of the latest per-partition planned event, where there is one.

    That run is the partition's "latest run" in the UI (GraphQL
    ``latestRunForPartition``). Two queries whatever the number of partitions; the
    first (``planned_since``, from the start) names none of them.
    """
    latest = planned_since(instance, asset_key, {}, set(partitions))
    if not latest:
        return {}
    records = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                              asset_key=asset_key, storage_ids=list(latest.values())),
        limit=len(latest))
    run_of = {record.storage_id: record.run_id for record in records}
    return {partition: run_of[storage_id] for partition, storage_id in latest.items()
            if storage_id in run_of}


def planned_since(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                  latest: Mapping[str, int], partitions: Collection[str]) -> dict[str, int]:
    """``partition -> storage id`` of the latest per-partition planned event of each of
    ``partitions``, where it may be newer than the partition's latest materialization
    (``latest``: the storage ids of the materialized ones); older ones are left out.

    Such events are few (failures, runs of a single partition; a run of many has one
    planned event for all), so they are read for every partition of the asset, from
    the oldest materialization of ``partitions`` on, in one query that names none of
    them: naming thousands cost more than reading the few there are.
    """
    since = min((latest.get(partition, 0) for partition in partitions), default=0)
    found = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        after_cursor=since or None)
    wanted = set(partitions)
    return {partition: storage_id for partition, storage_id in found.items()
            if partition in wanted}


def latest_data_versions(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                         partitions: Sequence[str]) -> dict[str, str]:
    """``partition -> data version`` of each partition's latest materialization that
    has one (``DATA_VERSION_TAG``). One query: the tags are indexed, no event is loaded.
    """
    if not partitions:
        return {}
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG],
        asset_partitions=list(partitions))
    return {partition: found[DATA_VERSION_TAG] for partition, found in tags.items()
            if DATA_VERSION_TAG in found}


def get_instance_value(instance: dg.DagsterInstance, key: str) -> str | None:
    """The value stored under ``key`` in the instance's key-value store, if any."""
    return instance.run_storage.get_cursor_values({key}).get(key)


def set_instance_value(instance: dg.DagsterInstance, key: str, value: str) -> None:
    """Store ``value`` under ``key`` in the instance's key-value store (replacing it)."""
    instance.run_storage.set_cursor_values({key: value})
