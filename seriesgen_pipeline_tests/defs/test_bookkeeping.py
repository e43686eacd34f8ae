"""Dagster bookkeeping per series stays small and exact (defs/events.py).

Contract, with runs created as the CLI and the Makefile create them (one planned
event per asset per run): a first ranged run records each good series once per
asset and leaves exactly the broken series failed; a run that changes nothing
records no materialization at all and every status stays as it was; an edited
series is recorded again; a series that breaks later is the only one failed, and
the rest of its range keep their status.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.internals import planned_since
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    keys_with,
    migrated_engine,
    partition_status,
)

SESSIONS = dg.AssetKey("class_sessions")
RESOLVED = dg.AssetKey("resolved_series_config")
KEYS = [f"b{i:02d}" for i in range(12)]


def materialized_in(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000).records
    return sorted((r.event_log_entry.dagster_event.asset_key.to_user_string(),
                   r.event_log_entry.dagster_event.partition) for r in records)


def unfinished(instance: dg.DagsterInstance, asset: dg.AssetKey, keys: list[str]) -> set[str]:
    """Of ``keys``, those whose latest planned event is newer than their latest
    materialization, found as the step finds them (``planned_since``, which names no
    partition); checked against the query that names every one of ``keys``."""
    latest = instance.get_latest_storage_id_by_partition(
        asset, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys))
    found = planned_since(instance, asset, latest, keys)
    named = instance.get_latest_storage_id_by_partition(
        asset, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, set(keys))
    since = min(latest.get(key, 0) for key in keys)
    assert found == {key: storage_id for key, storage_id in named.items() if storage_id > since}
    return {key for key, storage_id in found.items() if storage_id > latest.get(key, 0)}


@pytest.fixture
def subset_planned_events(monkeypatch):
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")


def test_changed_only_and_exact_failures(sqlite_url, subset_planned_events):
    engine = migrated_engine(sqlite_url)
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "east")
    for key in KEYS:
        seed_series(engine, key, room=f"Room {key}", instructor=f"Coach {key}",
                    start_date=date(2026, 1, 5))
    execute(engine, "UPDATE class_series SET recurrence = 'FREQ=YEARLY' WHERE key = 'b03'")
    job = build_definitions(resource=SeriesgenResource(database_url=sqlite_url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    tags = range_tags(KEYS[0], KEYS[-1])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("class_series", KEYS)

        first = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert not first.success
        status = partition_status(instance, SESSIONS, KEYS)
        assert keys_with(status, "FAILED") == {"b03"}
        assert keys_with(status, "MATERIALIZED") == set(KEYS) - {"b03"}
        assert keys_with(partition_status(instance, RESOLVED, KEYS), "FAILED") == {"b03"}
        recorded = materialized_in(instance, first.run_id)
        assert len(recorded) == 3 * 11  # three assets per good series, once each
        assert unfinished(instance, SESSIONS, KEYS) == {"b03"}

        execute(engine, "UPDATE class_series SET recurrence = 'FREQ=WEEKLY;BYDAY=MO' "
                        "WHERE key = 'b03'")
        fixed = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert fixed.success
        # Only the repaired series is recorded; the other eleven changed nothing.
        assert {p for _, p in materialized_in(instance, fixed.run_id)} == {"b03"}
        assert keys_with(partition_status(instance, SESSIONS, KEYS), "MATERIALIZED") == set(KEYS)
        assert unfinished(instance, SESSIONS, KEYS) == set()

        quiet = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert quiet.success
        assert materialized_in(instance, quiet.run_id) == []
        assert keys_with(partition_status(instance, SESSIONS, KEYS), "MATERIALIZED") == set(KEYS)

        execute(engine, "UPDATE class_series SET room = 'Hall' WHERE key = 'b05'")
        edited = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert sorted(materialized_in(instance, edited.run_id)) == [
            ("class_sessions", "b05"), ("resolved_series_config", "b05")]

        execute(engine, "UPDATE class_series SET duration_minutes = 0 WHERE key = 'b09'")
        broken = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert not broken.success
        status = partition_status(instance, SESSIONS, KEYS)
        assert keys_with(status, "FAILED") == {"b09"}
        assert keys_with(status, "MATERIALIZED") == set(KEYS) - {"b09"}
        # Materialized before, failed since: its planned event is newer (every key of
        # the range is materialized: the read starts after the oldest materialization).
        assert unfinished(instance, SESSIONS, KEYS) == {"b09"}
        assert unfinished(instance, SESSIONS, ["b09"]) == {"b09"}
        assert unfinished(instance, SESSIONS, ["b08", "b10"]) == set()


def _data_version(instance: dg.DagsterInstance, asset: dg.AssetKey, key: str) -> tuple[str, str]:
    """The data version and the ``fingerprint`` metadata of the partition's latest
    materialization."""
    (record,) = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=asset, asset_partitions=[key]), limit=1).records
    entry = record.event_log_entry
    materialization = entry.asset_materialization
    assert materialization is not None
    return (materialization.tags or {}).get("dagster/data_version", ""), str(
        materialization.metadata["fingerprint"].value)


def test_the_recorded_fingerprint_is_the_data_version(sqlite_url, subset_planned_events):
    """A change of configuration that changes no session is recorded (the snapshot's
    fingerprint is new); the fingerprint is each materialization's data version; a
    latest materialization without one (reported from outside) is recorded again."""
    engine = migrated_engine(sqlite_url)
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "east", cleanup_grace_days=3)
    keys = KEYS[:4]
    for key in keys:
        seed_series(engine, key, room=f"Room {key}", instructor=f"Coach {key}")
    job = build_definitions(resource=SeriesgenResource(database_url=sqlite_url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    tags = range_tags(keys[0], keys[-1])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("class_series", keys)
        assert job.execute_in_process(instance=instance, tags=tags).success
        first = {key: _data_version(instance, RESOLVED, key) for key in keys}
        for key, (version, fingerprint) in first.items():
            assert version == fingerprint and len(version) == 16, key
            assert _data_version(instance, SESSIONS, key) == (version, fingerprint)

        # Sessions do not depend on the grace days: only the fingerprints change.
        execute(engine, "UPDATE scheduling_configs SET cleanup_grace_days = 5 "
                        "WHERE scope = 'branch'")
        regraced = job.execute_in_process(instance=instance, tags=tags)
        assert {p for _, p in materialized_in(instance, regraced.run_id)} == set(keys)
        for key in keys:
            version, fingerprint = _data_version(instance, RESOLVED, key)
            assert version == fingerprint != first[key][0], key
            assert _data_version(instance, SESSIONS, key) == (version, fingerprint)
        quiet = job.execute_in_process(instance=instance, tags=tags)
        assert materialized_in(instance, quiet.run_id) == []

        instance.report_runless_asset_event(dg.AssetMaterialization(
            RESOLVED, partition=keys[1], metadata={"fingerprint": "reported by hand"}))
        repaired = job.execute_in_process(instance=instance, tags=tags)
        assert materialized_in(instance, repaired.run_id) == [
            ("resolved_series_config", keys[1])]
        assert _data_version(instance, RESOLVED, keys[1])[0] == _data_version(
            instance, SESSIONS, keys[1])[0]
