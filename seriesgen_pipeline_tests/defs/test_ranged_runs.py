"""One ranged run over many series: each series succeeds or fails on its own partition.

Contract (SPEC §8): a single run of ``series_generation_job`` over the range of
all 50 partitions, two of whose series are broken (``FREQ=YEARLY``, an unknown
branch), fails; exactly those two partitions are FAILED for
``resolved_series_config`` and ``class_sessions`` and the 48 others are
MATERIALIZED, with sessions in the application database for those 48 only. The
``series_conflicts`` check fails with the two errors, ERROR severity; each failed
partition carries its error (an observation of its ``class_sessions``
partition); the run records one ``generation_report`` observation with its
figures. Once the two series are fixed by raw SQL, a run of each partition alone
materializes it, and no partition is failed any more; those two runs, launched
without ``seriesgen/partition_range`` (as the UI launches them), carry it once
they have started; a run whose only conflicts
are warnings passes the check, the warnings counted and listed in its metadata.
A partition's ``class_sessions`` materialization carries the counters, window,
duration, configuration hash, fingerprint and provenance.

Runs against a SQLite application database with the default instance storage,
and against PostgreSQL for both the application database and the instance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import RANGE_TAG, range_tags
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    session_rows,
)
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    PARTITIONS,
    keys_with,
    migrated_engine,
    partition_status,
    postgres_stack,
)

RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
REPORT = dg.AssetKey("generation_report")
KEYS = [f"s{i:03d}" for i in range(50)]
BROKEN = {"s007": "INVALID_RRULE", "s031": "UNKNOWN_BRANCH"}
GOOD = set(KEYS) - set(BROKEN)
# East's horizon is 14 days from 2026-03-02T12:00Z: Mondays 2, 9 and Wednesdays 4, 11 at 18:00.
SESSIONS_PER_SERIES = 4


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path: Any
          ) -> Iterator[tuple[sa.Engine, str, dg.DagsterInstance]]:
    """(application engine, its URL, Dagster instance) on the chosen backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/app.db"
        engine = migrated_engine(url)
        with dg.instance_for_test() as instance:
            yield engine, url, instance
        engine.dispose()
        return
    with postgres_stack() as (engine, url, _storage, instance):
        yield engine, url, instance


def seed(engine: sa.Engine) -> None:
    """50 East series, each in its own room with its own instructor; two broken."""
    seed_base(engine)
    seed_branch(engine, "east", horizon_days=14)
    for number, key in enumerate(KEYS):
        fields: dict[str, Any] = {"room": f"Room {number}", "instructor": f"Teacher {number}"}
        if key == "s007":
            fields["recurrence"] = "FREQ=YEARLY"
        if key == "s031":
            fields["branch"] = "atlantis"
        seed_series(engine, key, **fields)


def generation_job(url: str) -> dg.JobDefinition:
    resource = SeriesgenResource(database_url=url, now=NOW)
    return build_definitions(resource=resource).resolve_job_def("series_generation_job")


def latest_metadata(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                    partition: str) -> dict[str, Any]:
    """The metadata of the partition's latest materialization, as plain values."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1,
    ).records
    assert len(records) == 1, f"{asset_key.to_user_string()}[{partition}] never materialized"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {name: value.value for name, value in materialization.metadata.items()}


def latest_observation(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                       partition: str | None) -> dict[str, Any]:
    """The metadata of the latest observation of the asset (or of one partition)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=asset_key,
                              asset_partitions=[partition] if partition else None),
        limit=1).records
    assert len(records) == 1, f"{asset_key.to_user_string()}[{partition}] never observed"
    observation = records[0].asset_observation
    assert observation is not None
    return {name: value.value for name, value in observation.metadata.items()}


def only_check(result: dg.ExecuteInProcessResult) -> Any:
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.check_name) == (SESSIONS, "series_conflicts")
    return evaluation


def test_ranged_run_fails_only_broken_series_and_reruns_fix_them(
        stack: tuple[sa.Engine, str, dg.DagsterInstance]) -> None:
    engine, url, instance = stack
    seed(engine)
    instance.add_dynamic_partitions(PARTITIONS, KEYS)
    job = generation_job(url)

    result = job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                    raise_on_error=False)

    # The run failed, naming exactly the broken series.
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert run.tags[RANGE_TAG] == "s000..s049"
    failure = result.failure_data_for_node("series_generation")
    assert failure is not None and failure.user_failure_data is not None
    assert failure.user_failure_data.description is not None
    assert failure.user_failure_data.description.startswith("2 of 50 series failed: ")
    failed_series = failure.user_failure_data.metadata["failed_series"].value
    assert isinstance(failed_series, dict)
    assert set(failed_series) == set(BROKEN)
    assert "FREQ=YEARLY" in failed_series["s007"]
    assert "'atlantis' does not exist" in failed_series["s031"]

    # Exactly the broken partitions are failed; the others materialized.
    for asset_key in (RESOLVED, SESSIONS):
        status = partition_status(instance, asset_key, KEYS)
        assert keys_with(status, "FAILED") == set(BROKEN), asset_key
        assert keys_with(status, "MATERIALIZED") == GOOD, asset_key
    # A broken series is not generated, so its cleanup is not recorded either.
    assert keys_with(partition_status(instance, CLEANUP, KEYS), "MATERIALIZED") == GOOD
    assert keys_with(partition_status(instance, CLEANUP, KEYS), "FAILED") == set(BROKEN)

    # Sessions for the good series only.
    per_series = Counter(row["series_key"] for row in session_rows(engine))
    assert per_series == dict.fromkeys(sorted(GOOD), SESSIONS_PER_SERIES)

    # The conflicts check: the two errors, ERROR severity.
    check = only_check(result)
    assert check.passed is False
    assert check.severity == dg.AssetCheckSeverity.ERROR
    meta = {name: value.value for name, value in check.metadata.items()}
    assert (meta["errors"], meta["warnings"]) == (2, 0)
    assert set(meta["conflicts"]) == set(BROKEN)
    assert meta["series_with_errors"] == sorted(BROKEN)
    for key, code in BROKEN.items():
        (line,) = meta["conflicts"][key]
        assert line.startswith(f"ERROR {code}: ")

    # Each failed partition carries its error; the run's figures are one observation.
    for key in BROKEN:
        observed = latest_observation(instance, SESSIONS, key)
        assert observed["status"] == "failed"
        assert observed["error"] == failed_series[key]
        assert observed["run_id"] == result.run_id
    report = latest_observation(instance, REPORT, None)
    assert {name: report[name] for name in ("series", "created", "updated", "deleted",
                                            "failed", "missing")} == {
        "series": 50, "created": 48 * SESSIONS_PER_SERIES, "updated": 0, "deleted": 0,
        "failed": 2, "missing": 0}
    assert report["partition_range"] == "s000..s049"
    assert isinstance(report["duration_ms"], int)

    # A partition's materialization metadata.
    sessions = latest_metadata(instance, SESSIONS, "s010")
    assert {name: sessions[name] for name in ("status", "created", "updated", "deleted",
                                              "protected")} == {
        "status": "success", "created": 4, "updated": 0, "deleted": 0, "protected": 0}
    assert sessions["window_start"] == "2026-03-02T12:00:00Z"
    assert sessions["window_end"] == "2026-03-16T12:00:00Z"
    assert isinstance(sessions["duration_ms"], int) and sessions["duration_ms"] >= 0
    assert sessions["provenance"]["horizon_days"] == "branch"
    assert sessions["provenance"]["timezone"] == "base"
    assert sessions["conflicts"] == []
    resolved = latest_metadata(instance, RESOLVED, "s010")
    assert sessions["config_hash"] == resolved["config_hash"] != ""
    assert sessions["fingerprint"] == resolved["fingerprint"] != ""
    assert resolved["series_version"] == 1
    assert resolved["config"]["horizon_days"] == 14
    assert resolved["provenance"] == sessions["provenance"]

    # Fix both by raw SQL; s007 now shares s008's room at the same times (a warning).
    execute(engine, "UPDATE class_series SET recurrence = 'FREQ=WEEKLY;BYDAY=MO,WE', "
                    "room = 'Room 8' WHERE key = 's007'")
    execute(engine, "UPDATE class_series SET branch_id = 'east' WHERE key = 's031'")

    first = job.execute_in_process(instance=instance, partition_key="s007",
                                   raise_on_error=False)
    second = job.execute_in_process(instance=instance, partition_key="s031",
                                    raise_on_error=False)

    assert first.success and second.success
    # Runs launched without seriesgen's range tag (the UI's, a backfill's) get it at start.
    for rerun_result, key in ((first, "s007"), (second, "s031")):
        tags = instance.get_run_by_id(rerun_result.run_id).tags  # type: ignore[union-attr]
        assert tags[RANGE_TAG] == f"{key}..{key}"
    for asset_key in (RESOLVED, SESSIONS, CLEANUP):
        status = partition_status(instance, asset_key, KEYS)
        assert keys_with(status, "MATERIALIZED") == set(KEYS), asset_key
        assert keys_with(status, "FAILED") == set(), asset_key
    per_series = Counter(row["series_key"] for row in session_rows(engine))
    assert per_series == dict.fromkeys(KEYS, SESSIONS_PER_SERIES)
    rerun = latest_metadata(instance, SESSIONS, "s007")
    assert (rerun["status"], rerun["created"], rerun["deleted"]) == ("success", 4, 0)

    # Only warnings: the check passes and lists them.
    check = only_check(first)
    assert check.passed is True
    meta = {name: value.value for name, value in check.metadata.items()}
    assert (meta["errors"], meta["warnings"], meta["series_with_warnings"]) == (0, 1, 1)
    (line,) = meta["conflicts"]["s007"]
    assert line.startswith("WARN ROOM_DOUBLE_BOOKED: room 'Room 8' is also booked by series 's008'")
    assert set(meta["conflicts"]) == {"s007"}

    # No conflicts at all: passed.
    check = only_check(second)
    assert check.passed is True
    assert {name: value.value for name, value in check.metadata.items()}["errors"] == 0
