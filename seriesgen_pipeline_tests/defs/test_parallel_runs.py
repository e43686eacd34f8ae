"""Generation runs run in parallel under the real daemon, and overlapping ranges stay exact.

Contract (SPEC §8, dagster.yaml): the ``seriesgen/generation`` tag limit of the
project's ``dagster.yaml`` lets two queued generation runs be in progress at
once, and runs over overlapping ranges leave exactly the rows of one clean run,
because the engine locks each series (docs/guarantees.md).

Set-up: a fresh ``DAGSTER_HOME`` with the project's ``dagster.yaml``, a migrated
PostgreSQL application database with six series, and ``dagster-daemon run -w
workspace.yaml`` with ``SERIESGEN_RUN_CHUNK=3`` and a pause of a few seconds in
every run after its snapshot (``SERIESGEN_FAULT=pause_after_snapshot``), so that
a run takes long enough to be seen in progress.

1. The change sensor's first tick requests two disjoint ranged runs (s01..s03,
   s04..s06); the queue launches both; each starts before the other ends (from
   the run records' start and end times): they were in progress together. With a
   limit of 1 the second would start only after the first ended.
2. Two overlapping ranges (s01..s05 and s02..s06, both queued with the
   generation tag, at a later ``now`` given in their run configuration) are
   submitted at once with ``dagster job launch``; they too are in progress
   together, both succeed, and the sessions then equal, row for row, those of a
   second database taken through the same two nights by one run per night.

Neither the daemon nor the CLI has ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``
in its environment: every run still gets one planned event per asset (the project's
instance class sets it).

Bounded: about two minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import QUEUE_TAGS, RANGE_TAG, range_tags
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series, session_rows
from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database
from seriesgen_pipeline_tests.defs.support import NOW, migrated_engine
from seriesgen_pipeline_tests.deploy.support import BIN, PROJECT, clean_env, start, stop, wait_for

pytestmark = pytest.mark.slow

KEYS = [f"s{i:02d}" for i in range(1, 7)]
LATER = "2026-03-09T12:00:00Z"
PAUSE_S = 8
DEADLINE_S = 150


@pytest.fixture(autouse=True)
def _restore_planned_events_setting() -> Iterator[None]:
    """Opening the project's instance turns the setting on in this process: undo it after."""
    before = os.environ.get("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
    yield
    if before is None:
        os.environ.pop("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", None)
    else:
        os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = before


def seed(engine: sa.Engine) -> None:
    seed_base(engine, horizon_days=28)
    seed_branch(engine, "east")
    for number, key in enumerate(KEYS):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Coach {number}",
                    recurrence="FREQ=DAILY")


@pytest.fixture
def app() -> Iterator[tuple[sa.Engine, str]]:
    url = create_postgres_database("sg_parallel")
    engine = migrated_engine(url)
    yield engine, url
    engine.dispose()
    drop_postgres_database(url)


def reference_rows() -> list[dict[str, object]]:
    """The sessions after one clean run at ``NOW`` and one at ``LATER``, on a fresh database."""
    url = create_postgres_database("sg_parallel_ref")
    engine = migrated_engine(url)
    try:
        seed(engine)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("class_series", KEYS)
            for now in (NOW, LATER):
                job = build_definitions(resource=SeriesgenResource(database_url=url, now=now)
                                        ).resolve_job_def("series_generation_job")
                result = job.execute_in_process(instance=instance,
                                                tags=range_tags(KEYS[0], KEYS[-1]))
                assert result.success
        return session_rows(engine)
    finally:
        engine.dispose()
        drop_postgres_database(url)


def planned_per_asset(instance: dg.DagsterInstance, run_id: str) -> list[int]:
    """How many planned events each of the three assets got in the run."""
    found = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000).records
    keys = [r.event_log_entry.dagster_event.asset_key for r in found]
    return [keys.count(dg.AssetKey(name)) for name in (
        "resolved_series_config", "class_sessions", "series_cleanup")]


def in_progress_together(records: list[dg.RunRecord]) -> bool:
    """Whether every run started before every other one ended."""
    return all(a.start_time is not None and b.end_time is not None
               and a.start_time < b.end_time
               for a in records for b in records if a is not b)


def test_disjoint_runs_in_parallel_and_overlapping_runs_exact(
        tmp_path: Path, app: tuple[sa.Engine, str]) -> None:
    engine, url = app
    seed(engine)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = clean_env(DAGSTER_HOME=str(home), SERIESGEN_DATABASE_URL=url, SERIESGEN_NOW=NOW,
                    SERIESGEN_ENV="development", SERIESGEN_RUN_CHUNK="3",
                    SERIESGEN_FAULT=f"pause_after_snapshot:{PAUSE_S}")
    log = tmp_path / "daemon.log"
    # Storage created before the daemon starts: processes creating a fresh SQLite
    # instance at once can both stamp its schema version.
    instance = dg.DagsterInstance.from_config(str(home))
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env=env, log=log)
    deadline = time.monotonic() + DEADLINE_S
    try:
        def finished(count: int) -> list[dg.RunRecord] | None:
            records = list(instance.get_run_records())
            done = [r for r in records if r.dagster_run.is_finished]
            return records if len(records) == count and len(done) == count else None

        sensor_runs = wait_for("the sensor's two runs", lambda: finished(2), deadline, [log])
        assert sorted(r.dagster_run.tags[RANGE_TAG] for r in sensor_runs) == [
            "s01..s03", "s04..s06"]
        assert {r.dagster_run.status for r in sensor_runs} == {dg.DagsterRunStatus.SUCCESS}
        assert in_progress_together(sensor_runs), [
            (r.start_time, r.end_time) for r in sensor_runs]

        config = json.dumps({"resources": {"seriesgen": {"config": {"now": LATER}}}})
        launches = [
            subprocess.Popen(
                [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml",
                 "-j", "series_generation_job", "--config-json", config,
                 "--tags", json.dumps({**range_tags(first, last), **QUEUE_TAGS})],
                cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for first, last in (("s01", "s05"), ("s02", "s06"))]
        for launch in launches:
            output, _ = launch.communicate(timeout=120)
            assert launch.returncode == 0, output.decode(errors="replace")[-3000:]

        records = wait_for("the two overlapping runs", lambda: finished(4), deadline, [log])
        overlapping = [r for r in records if "dagster/sensor_name" not in r.dagster_run.tags]
        assert sorted(r.dagster_run.tags[RANGE_TAG] for r in overlapping) == [
            "s01..s05", "s02..s06"]
        assert {r.dagster_run.status for r in overlapping} == {dg.DagsterRunStatus.SUCCESS}
        assert in_progress_together(overlapping), [
            (r.start_time, r.end_time) for r in overlapping]
        # Created by the daemon and by the CLI, neither with the setting in its
        # environment: one planned event per asset (defs/internals.py).
        for record in records:
            assert planned_per_asset(instance, record.dagster_run.run_id) == [1, 1, 1]
    finally:
        stop(daemon)
        instance.dispose()

    assert session_rows(engine) == reference_rows()
    with engine.connect() as conn:
        twice = conn.execute(sa.text(
            "SELECT series_key, count(*) FROM generation_log GROUP BY series_key "
            "ORDER BY series_key")).all()
    # Every series once by the sensor, then once or twice by the overlapping runs.
    assert [tuple(row) for row in twice] == [
        ("s01", 2), ("s02", 3), ("s03", 3), ("s04", 3), ("s05", 3), ("s06", 2)]
