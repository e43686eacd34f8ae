"""Issue: a series put back to a value it had before is never rerun by the sensor.

Contract (SPEC §8, docs/operations.md "the fix itself triggers the rerun"): the
``class_series_changes`` sensor requests a run for every change of a series,
and each requested run is launched, including when the change restores a value
the series had before.

Scenario (issue 12, D1): a new series ``west-pilates`` is loaded; the sensor
adds its partition and runs it alone. It is broken by raw SQL
(``recurrence='FREQ=WEEKLY;BYDAY=XX'``); the next tick requests a run, which
fails, and the partition shows FAILED. The original value is put back by raw
SQL. The next tick requests a run — and Dagster must launch it.

Bug: the run key was the range plus a CRC of the range's fingerprints, so the
revert rebuilt the run key of the series' first run. The daemon skips a request
whose run key an earlier run of the same sensor carries ("already completed
with run keys: change:west-pilates..west-pilates:…"), the cursor moved on, and
the partition stayed FAILED until the nightly.

Here each tick's requests go through the daemon's own test (a run of this
sensor with the same ``dagster/run_key`` tag exists: skip) and are executed on a
real instance, against a real SQLite application database. After the revert, the
run is launched, succeeds, and the partition is MATERIALIZED again; a second
break/revert cycle behaves the same. A second test (slow) plays the scenario
under the real ``dagster-daemon``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    apply_partition_requests,
    migrated_engine,
    partition_status,
)
from seriesgen_pipeline_tests.deploy.support import (
    BIN,
    PROJECT,
    clean_env,
    log_tail,
    start,
    stop,
    wait_for,
)

if TYPE_CHECKING:
    from dagster._core.definitions.sensor_definition import SensorExecutionData

SENSOR = "class_series_changes"
RUN_KEY_TAG = "dagster/run_key"  # the daemon's tags on a sensor's runs
SENSOR_NAME_TAG = "dagster/sensor_name"
SESSIONS = dg.AssetKey("class_sessions")
GOOD = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH"
BROKEN = "FREQ=WEEKLY;BYDAY=XX"


@pytest.fixture(autouse=True)
def _restore_planned_events_setting() -> Iterator[None]:
    """Opening the project's instance turns the setting on in this process: undo it after."""
    before = os.environ.get("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
    yield
    if before is None:
        os.environ.pop("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", None)
    else:
        os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = before


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERIESGEN_ENV", raising=False)
    monkeypatch.delenv("ENABLE_SERIES_GENERATION", raising=False)


@pytest.fixture
def app(tmp_path) -> Iterator[tuple[sa.Engine, str]]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "east")
    seed_branch(engine, "west")
    seed_series(engine, "east-yoga", branch="east")
    yield engine, url
    engine.dispose()


class Daemon:
    """The sensor's ticks and its run launches, with the daemon's run key test."""

    def __init__(self, instance: dg.DagsterInstance, url: str) -> None:
        self.instance = instance
        self.defs = build_definitions(resource=SeriesgenResource(database_url=url, now=NOW))
        self.job = self.defs.resolve_job_def("series_generation_job")
        self.cursor: str | None = None
        self.url = url

    def tick(self) -> SensorExecutionData:
        sensor = self.defs.resolve_sensor_def(SENSOR)
        with dg.build_sensor_context(
            instance=self.instance, instance_ref=self.instance.get_ref(), cursor=self.cursor,
            repository_def=self.defs.get_repository_def(),
            resources={"seriesgen": SeriesgenResource(database_url=self.url, now=NOW)},
        ) as context:
            data = sensor.evaluate_tick(context)
        apply_partition_requests(self.instance, data.dynamic_partitions_requests or [])
        self.cursor = data.cursor
        return data

    def submit(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult | None:
        """Launch ``request`` unless an earlier run of the sensor has its run key."""
        assert request.run_key is not None
        earlier = self.instance.get_runs(filters=dg.RunsFilter(
            tags={RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: SENSOR}))
        if earlier:
            return None
        return self.job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key,
            tags={**request.tags, RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: SENSOR},
            raise_on_error=False)

    def tick_and_launch(self) -> list[dg.ExecuteInProcessResult | None]:
        return [self.submit(request) for request in self.tick().run_requests or []]


def test_reverted_fix_is_rerun_and_materialized(app: tuple[sa.Engine, str]) -> None:
    engine, url = app
    with dg.instance_for_test() as instance:
        daemon = Daemon(instance, url)
        (first,) = daemon.tick_and_launch()
        assert first is not None and first.success

        seed_series(engine, "west-pilates", branch="west", recurrence=GOOD, start_time="01:30")
        (added,) = daemon.tick_and_launch()
        assert added is not None and added.success
        assert partition_status(instance, SESSIONS, ["west-pilates"]) == {
            "west-pilates": "MATERIALIZED"}

        for cycle in range(2):
            execute(engine, f"UPDATE class_series SET recurrence = '{BROKEN}' "
                            "WHERE key = 'west-pilates'")
            (broken,) = daemon.tick_and_launch()
            assert broken is not None, f"cycle {cycle}: the breaking change was not launched"
            assert not broken.success
            assert partition_status(instance, SESSIONS, ["west-pilates"]) == {
                "west-pilates": "FAILED"}

            execute(engine, f"UPDATE class_series SET recurrence = '{GOOD}' "
                            "WHERE key = 'west-pilates'")
            (reverted,) = daemon.tick_and_launch()
            assert reverted is not None, (
                f"cycle {cycle}: the revert's run key was already used; Dagster skips it")
            assert reverted.success
            assert partition_status(instance, SESSIONS, ["west-pilates", "east-yoga"]) == {
                "west-pilates": "MATERIALIZED", "east-yoga": "MATERIALIZED"}

        assert daemon.tick().skip_message == "no series changed"
        with engine.connect() as conn:
            sessions = conn.execute(sa.text(
                "SELECT count(*) FROM class_sessions WHERE series_key = 'west-pilates'")
            ).scalar_one()
        assert sessions > 0


DAEMON_DEADLINE_S = 240


@pytest.mark.slow
def test_under_the_daemon_the_revert_is_rerun_and_its_page_shows_no_failure(
        tmp_path: Path, app: tuple[sa.Engine, str]) -> None:
    """The same scenario end to end: ``dagster-daemon`` ticks the sensor and runs the queue.

    The daemon has neither ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` nor
    anything else of seriesgen's in its environment but the database URL and the
    instant; after the revert the partition is materialized by the revert's run,
    which is also the partition's latest run, so its page shows no failure (D2).
    """
    engine, url = app
    # The series alone, so that its first run's key under the old scheme (the range and
    # the fingerprint) is the one the revert would rebuild.
    execute(engine, "DELETE FROM class_series WHERE key = 'east-yoga'")
    seed_series(engine, "west-pilates", branch="west", recurrence=GOOD, start_time="01:30")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(home))  # storage made before the daemon
    env = clean_env(DAGSTER_HOME=str(home), SERIESGEN_DATABASE_URL=url, SERIESGEN_NOW=NOW,
                    SERIESGEN_ENV="development")
    log = tmp_path / "daemon.log"
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env=env, log=log)
    deadline = time.monotonic() + DAEMON_DEADLINE_S

    def finished(count: int) -> list[dg.DagsterRun] | None:
        runs = instance.get_runs()  # newest first
        return runs if len(runs) == count and all(r.is_finished for r in runs) else None

    try:
        first = wait_for("the first sensor run", lambda: finished(1), deadline, [log])[0]
        assert first.status == dg.DagsterRunStatus.SUCCESS
        execute(engine, f"UPDATE class_series SET recurrence = '{BROKEN}' "
                        "WHERE key = 'west-pilates'")
        broken = wait_for("the run of the breaking change", lambda: finished(2),
                          deadline, [log])[0]
        assert broken.status == dg.DagsterRunStatus.FAILURE
        assert partition_status(instance, SESSIONS, ["west-pilates"]) == {
            "west-pilates": "FAILED"}
        execute(engine, f"UPDATE class_series SET recurrence = '{GOOD}' "
                        "WHERE key = 'west-pilates'")
        reverted = wait_for("the run of the revert", lambda: finished(3), deadline, [log])[0]
    finally:
        stop(daemon)
    try:
        assert reverted.status == dg.DagsterRunStatus.SUCCESS, log_tail(log)
        assert reverted.tags[RUN_KEY_TAG] not in {first.tags[RUN_KEY_TAG],
                                                  broken.tags[RUN_KEY_TAG]}
        assert partition_status(instance, SESSIONS, ["west-pilates"]) == {
            "west-pilates": "MATERIALIZED"}
        for asset in ("resolved_series_config", "class_sessions", "series_cleanup"):
            latest = instance.get_latest_planned_materialization_info(
                dg.AssetKey(asset), partition="west-pilates")
            assert latest is not None and latest.run_id == reverted.run_id, asset
    finally:
        instance.dispose()
