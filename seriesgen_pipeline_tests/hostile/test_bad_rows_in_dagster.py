"""Through Dagster, a corrupted row fails only its own series' partition (SPEC §6, §8).

A ranged run over three series, one of whose rows another writer corrupted: the
run fails naming that series and the table, row and column; exactly its partition
shows as failed; the others are materialized with their sessions; once the value
is corrected, a rerun of that partition alone fixes it. A corrupted session row
leaves the series' snapshot good (``resolved_series_config`` materializes) and
fails its ``class_sessions`` partition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.assets import RESOLVED, SESSIONS
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
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
)

KEYS = ["a-yoga", "b-spin", "c-pilates"]
PER_SERIES = 4  # Mondays and Wednesdays, 2026-03-02T12:00Z .. 2026-03-16T12:00Z


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[sa.Engine, str, dg.DagsterInstance]]:
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine)
    seed_branch(engine, "east", horizon_days=14)
    for number, key in enumerate(KEYS):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Teacher {number}")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS, KEYS)
        yield engine, url, instance
    engine.dispose()


def _job(url: str) -> dg.JobDefinition:
    resource = SeriesgenResource(database_url=url, now=NOW)
    return build_definitions(resource=resource).resolve_job_def("series_generation_job")


def _failed_series(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    failure = result.failure_data_for_node("series_generation")
    assert failure is not None and failure.user_failure_data is not None
    value = failure.user_failure_data.metadata["failed_series"].value
    assert isinstance(value, dict)
    return value


def test_a_corrupted_series_row_fails_its_partition_alone_and_a_rerun_fixes_it(
        stack: tuple[sa.Engine, str, dg.DagsterInstance]) -> None:
    engine, url, instance = stack
    execute(engine, "UPDATE class_series SET start_date = '2026-02-30' WHERE key = 'b-spin'")
    job = _job(url)

    result = job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                    raise_on_error=False)

    assert not result.success
    failed = _failed_series(result)
    assert list(failed) == ["b-spin"]
    assert failed["b-spin"].startswith(
        "class_series 'b-spin': start_date '2026-02-30' is not a date")
    for asset_key in (RESOLVED, SESSIONS):
        status = partition_status(instance, asset_key, KEYS)
        assert keys_with(status, "FAILED") == {"b-spin"}, asset_key
        assert keys_with(status, "MATERIALIZED") == {"a-yoga", "c-pilates"}, asset_key
    assert Counter(r["series_key"] for r in session_rows(engine)) == {
        "a-yoga": PER_SERIES, "c-pilates": PER_SERIES}

    execute(engine, "UPDATE class_series SET start_date = '2026-01-05' WHERE key = 'b-spin'")
    rerun = job.execute_in_process(instance=instance, partition_key="b-spin",
                                   raise_on_error=False)

    assert rerun.success
    for asset_key in (RESOLVED, SESSIONS):
        assert keys_with(partition_status(instance, asset_key, KEYS),
                         "MATERIALIZED") == set(KEYS)
    assert Counter(r["series_key"] for r in session_rows(engine)) == dict.fromkeys(
        KEYS, PER_SERIES)


def test_a_corrupted_session_row_fails_only_its_series_sessions(
        stack: tuple[sa.Engine, str, dg.DagsterInstance]) -> None:
    engine, url, instance = stack
    job = _job(url)
    assert job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                  raise_on_error=False).success
    execute(engine, "UPDATE class_sessions SET starts_at = 'garbage' WHERE id = (SELECT min(id) "
                    "FROM class_sessions WHERE series_key = 'c-pilates')")
    execute(engine, "UPDATE class_series SET title = 'Renamed' WHERE key IN ('a-yoga', "
                    "'c-pilates')")

    result = job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                    raise_on_error=False)

    failed = _failed_series(result)
    assert list(failed) == ["c-pilates"]
    assert "starts_at 'garbage' is not an instant" in failed["c-pilates"]
    assert failed["c-pilates"].startswith("class_sessions id ")
    assert keys_with(partition_status(instance, SESSIONS, KEYS), "FAILED") == {"c-pilates"}
    assert keys_with(partition_status(instance, RESOLVED, KEYS), "FAILED") == set()
    with engine.connect() as conn:  # raw: one row's start cannot be read
        titles = dict(conn.execute(sa.text(
            "SELECT series_key || ':' || title, count(*) FROM class_sessions GROUP BY 1")).all())
    assert titles["a-yoga:Renamed"] == PER_SERIES  # the edit reached the good series
    assert "c-pilates:Renamed" not in titles  # the failed one was left as it was
