"""One partition per class series, keyed by the series ``key``, and keeping them in step."""

import time
from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa

class_series_partitions = dg.DynamicPartitionsDefinition(name="class_series")


def sync_partitions(instance: dg.DagsterInstance, series_keys: Sequence[str]) -> list[str]:
    """Add partitions of new series, remove those of deleted ones; returns the order.

    New keys are added in one bulk insert (the sensor daemon's own handling of an
    ``AddDynamicPartitionsRequest`` checks them one query at a time: minutes for tens
    of thousands of new series). Another process (a second CLI run, the sensor) may
    register the same keys at the same moment: a conflict is retried against what is
    then registered.
    """
    name = class_series_partitions.name
    assert name is not None
    present = set(series_keys)
    for attempt in range(5):
        existing = instance.get_dynamic_partitions(name)
        for key in existing:
            if key not in present:
                instance.delete_dynamic_partition(name, key)
        known = set(existing)
        new = [k for k in series_keys if k not in known]
        try:
            if new:
                instance.add_dynamic_partitions(name, new)
            break
        except sa.exc.IntegrityError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    return instance.get_dynamic_partitions(name)
