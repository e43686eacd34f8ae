"""Helpers shared by the Dagster tests: databases, partition status, run request coverage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg
import sqlalchemy as sa

from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.runs import RANGE_END, RANGE_START
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database

PARTITIONS = "class_series"
NOW = "2026-03-02T12:00:00Z"


def migrated_engine(url: str) -> sa.Engine:
    """An engine on ``url`` with the application schema at head."""
    engine = create_db_engine(url)
    upgrade_database(engine)
    return engine


def partition_status(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                     keys: Sequence[str]) -> dict[str, str | None]:
    """``key -> "MATERIALIZED" | "FAILED" | "IN_PROGRESS" | None``, as the UI shows it."""
    found = instance.get_status_by_partition(asset_key, list(keys), class_series_partitions)
    assert found is not None
    return {key: (status.value if status else None) for key, status in found.items()}


def keys_with(status: dict[str, str | None], value: str | None) -> set[str]:
    """The keys whose status is ``value``."""
    return {key for key, found in status.items() if found == value}


def request_keys(order: Sequence[str], request: dg.RunRequest) -> list[str]:
    """The partition keys a run request covers, in partition order.

    A request is either a plain partition run (``partition_key``) or a ranged run
    (the range start/end tags), resolved against the partition ``order``.
    """
    if request.partition_key is not None:
        assert RANGE_START not in request.tags and RANGE_END not in request.tags
        return [request.partition_key]
    first, last = request.tags[RANGE_START], request.tags[RANGE_END]
    start, end = order.index(first), order.index(last)
    assert start <= end, f"range {first}..{last} runs backwards in {order}"
    return list(order[start:end + 1])


def covered(order: Sequence[str], requests: Iterable[dg.RunRequest]) -> list[list[str]]:
    """The keys of each request, in request order."""
    return [request_keys(order, request) for request in requests]


def apply_partition_requests(instance: dg.DagsterInstance,
                             requests: Iterable[object]) -> None:
    """Apply a sensor's dynamic partition requests to the instance, as the daemon does."""
    for request in requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name,
                                            list(request.partition_keys))
        elif isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:  # pragma: no cover - a new request type would need handling here
            raise AssertionError(f"unexpected request {request!r}")
