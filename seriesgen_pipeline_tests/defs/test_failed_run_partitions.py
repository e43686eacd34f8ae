"""The partitions a failed run did not finish show Failed; a rerun records them truthfully.

Contract (SPEC §8, ``defs/recovery.py``), on a real instance with one planned event
per asset per run (as every seriesgen process creates runs): a ranged run over
five series — four materialized before, one new — that dies before recording
anything (here: its application database has no tables) leaves the four
MATERIALIZED and the new one Missing. Meanwhile a run of one series alone
succeeds. Evaluating ``failed_run_partitions`` for the failed run then shows
every other partition of the range FAILED for the three assets, the new one
included, and leaves the one rerun since MATERIALIZED. Evaluating it again
changes nothing. A rerun of the range materializes all five, with the current
fingerprint in the metadata of each.
"""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline_tests.builders import (
    execute,
    latest_snapshots,
    seed_base,
    seed_branch,
    seed_series,
)
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    PARTITIONS,
    evaluate_failure_sensor,
    migrated_engine,
    partition_status,
)

RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
ASSETS = (RESOLVED, SESSIONS, CLEANUP)
OLD = ["f1", "f2", "f3", "f4"]
NEW = "f5"
KEYS = [*OLD, NEW]


@pytest.fixture(autouse=True)
def _subset_planned_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")


def _job(url: str) -> dg.JobDefinition:
    resource = SeriesgenResource(database_url=url, now=NOW)
    return build_definitions(resource=resource).resolve_job_def("series_generation_job")


def _statuses(instance: dg.DagsterInstance) -> dict[str, dict[str, str | None]]:
    return {asset.to_user_string(): partition_status(instance, asset, KEYS) for asset in ASSETS}


def test_a_failed_runs_unfinished_partitions_show_failed_and_a_rerun_repairs_them(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "east")
    for number, key in enumerate(OLD):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Coach {number}")
    good = _job(url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS, OLD)
        assert good.execute_in_process(instance=instance,
                                       tags=range_tags(OLD[0], OLD[-1])).success
        seed_series(engine, NEW, room="Room 5", instructor="Coach 5")
        execute(engine, "UPDATE class_series SET title = title || ' (new)'")
        instance.add_dynamic_partitions(PARTITIONS, [NEW])

        # A run over the five dies before recording anything (a database with no tables).
        failed = _job(f"sqlite:///{tmp_path}/empty.db").execute_in_process(
            instance=instance, tags=range_tags(KEYS[0], KEYS[-1]), raise_on_error=False)
        assert not failed.success
        before = _statuses(instance)
        # One series rerun alone since then.
        f2_run = good.execute_in_process(instance=instance, partition_key="f2")
        assert f2_run.success
        f2_run_id = f2_run.run_id

        evaluate_failure_sensor(instance, failed.run_id, url)
        marked = _statuses(instance)
        evaluate_failure_sensor(instance, failed.run_id, url)
        again = _statuses(instance)
        with engine.connect() as conn:
            unfinished_log = dict(conn.execute(sa.text(
                "SELECT series_key, status FROM generation_log WHERE run_id = :run"),
                {"run": failed.run_id}).all())

        rerun = good.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]))
        assert rerun.success
        repaired = _statuses(instance)
        # f2's snapshot was stored by its own rerun; the others' by this one.
        stored = latest_snapshots(engine)
        fingerprints = {key: row.fingerprint for key, row in stored.items()}
        assert {key: row.run_id for key, row in stored.items()} == {
            **dict.fromkeys(KEYS, rerun.run_id), "f2": f2_run_id}
        recorded = {}
        for key in KEYS:
            (record,) = instance.fetch_materializations(dg.AssetRecordsFilter(
                asset_key=RESOLVED, asset_partitions=[key]), limit=1).records
            assert record.asset_materialization is not None
            recorded[key] = record.asset_materialization.metadata["fingerprint"].value
    engine.dispose()

    # Without the sensor, the failed run left the partitions as they were.
    for asset in ASSETS:
        assert before[asset.to_user_string()] == {**dict.fromkeys(OLD, "MATERIALIZED"),
                                                  NEW: None}
    expected = {**dict.fromkeys(KEYS, "FAILED"), "f2": "MATERIALIZED"}
    assert marked == {asset.to_user_string(): expected for asset in ASSETS}
    assert again == marked
    # Logged once each (the second evaluation adds nothing), f2 left to its rerun.
    assert unfinished_log == dict.fromkeys(["f1", "f3", "f4", "f5"], "failed")
    assert repaired == {asset.to_user_string(): dict.fromkeys(KEYS, "MATERIALIZED")
                        for asset in ASSETS}
    assert recorded == fingerprints
