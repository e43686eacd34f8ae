"""The Dagster internals seriesgen relies on are where it expects them (defs/internals.py).

Contract (docs/dagster.md, "Dagster internals"): for ``dagster==1.13.27``,

- no module of ``seriesgen_pipeline`` but ``defs/internals.py`` imports a private
  ``dagster._`` module, and the installed Dagster is the pinned version (an upgrade
  fails here first and is re-checked against this file);
- each internal has the shape the project calls it with: the event constructors,
  the batch metadata, the planned-event data, the step context behind an asset's
  context, the lookup of a partition's latest planned run and of its latest
  materialization's data version, the instance's key-value store, the
  instance-class hooks;
- the two internal environment settings do what the project needs:
  ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` is read when a run is created
  (one planned event per asset for a ranged run with it, one per partition
  without), ``DAGSTER_EVENT_BATCH_SIZE`` when events are stored;
- every ``dagster.yaml`` of the project opens as ``SeriesgenInstance``, which turns
  the first setting on; and processes started **without** the variable in their
  environment — the ``dagster job launch`` CLI and the webserver launching a run
  from GraphQL, as from the UI — create runs with one planned event per asset.
  (The daemon's runs are checked the same way in ``test_parallel_runs.py``.)
"""


import ast
import inspect
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from seriesgen_pipeline.defs import internals
from seriesgen_pipeline.defs.runs import QUEUE_TAGS, range_tags
from seriesgen_pipeline_tests.deploy.support import (
    BIN,
    PROJECT,
    clean_env,
    free_port,
    graphql,
    graphql_ready,
    start,
    stop,
    wait_for,
)

PACKAGE = PROJECT / "seriesgen_pipeline"
ASSETS = [dg.AssetKey("resolved_series_config"), dg.AssetKey("class_sessions"),
          dg.AssetKey("series_cleanup")]
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
KEYS = ["x01", "x02", "x03", "x04"]
PART = dg.DynamicPartitionsDefinition(name="internals_test")


@pytest.fixture(autouse=True)
def _restore_planned_events_setting() -> Iterator[None]:
    """Opening the project's instance turns the setting on in this process: undo it after."""
    before = os.environ.get("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
    yield
    if before is None:
        os.environ.pop("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", None)
    else:
        os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = before


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name.startswith("dagster._")
                  or (name.startswith("dagster_") and "._" in name)]
    return found


def test_only_internals_imports_private_dagster() -> None:
    offenders = {str(path.relative_to(PROJECT)): names for path in sorted(PACKAGE.rglob("*.py"))
                 if (names := _private_imports(path)) and path.name != "internals.py"}
    assert offenders == {}
    assert _private_imports(PACKAGE / "defs" / "internals.py")


def test_dagster_is_the_pinned_version() -> None:
    assert dg.__version__ == internals.DAGSTER_VERSION, (
        "Dagster was upgraded: re-check every internal in defs/internals.py and "
        "docs/dagster.md, then update DAGSTER_VERSION")


def _params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_event_internals_keep_their_shape() -> None:
    event = internals.DagsterEvent
    assert _params(event.asset_materialization) == [
        "step_context", "materialization", "batch_metadata"]
    assert _params(event.build_asset_materialization_planned_event) == [
        "job_name", "step_key", "asset_materialization_planned_data"]
    from dagster._core.events import DagsterEventBatchMetadata, generate_event_batch_id

    assert DagsterEventBatchMetadata._fields == ("id", "is_end")
    assert isinstance(generate_event_batch_id(), str)
    data = internals.AssetMaterializationPlannedData(dg.AssetKey("a"), partition="p")
    assert (data.asset_key, data.partition, data.partitions_subset) == (
        dg.AssetKey("a"), "p", None)
    assert _params(dg.DagsterInstance.get_latest_storage_id_by_partition)[:5] == [
        "self", "asset_key", "event_type", "partitions", "after_cursor"]
    assert "storage_ids" in _params(dg.EventRecordsFilter)
    assert internals.DATA_VERSION_TAG == "dagster/data_version"
    with dg.instance_for_test() as instance:
        assert internals.get_instance_value(instance, "seriesgen/test") is None
        internals.set_instance_value(instance, "seriesgen/test", "one")
        internals.set_instance_value(instance, "seriesgen/test", "two")
        assert internals.get_instance_value(instance, "seriesgen/test") == "two"
    from dagster._core.storage.event_log.base import EventLogStorage

    assert _params(EventLogStorage.get_latest_tags_by_partition)[:5] == [
        "self", "asset_key", "event_type", "tag_keys", "asset_partitions"]
    assert callable(internals.InstanceRef.config_defaults)
    assert {status.name for status in internals.WorkerStatus} >= {"RUNNING", "FAILED"}
    assert _params(internals.CheckRunHealthResult)[:2] == ["status", "msg"]
    assert issubclass(internals.DagsterUserCodeUnreachableError, Exception)


def test_postgres_storage_engines_are_where_kept_connections_need_them() -> None:
    """Each PostgreSQL storage builds its engine in ``__init__`` from these attributes,
    without a pool; ``storage_connections_kept`` swaps it (behaviour:
    ``test_storage_connections.py``, on a real server)."""
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage
    from dagster_postgres.utils import create_pg_engine

    assert _params(create_pg_engine) == ["postgres_url", "token_provider", "engine_kwargs"]
    for storage in (PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage):
        source = inspect.getsource(storage.__init__)
        for needed in ("self.postgres_url = ", "self._token_provider = ",
                       "self._engine = create_pg_engine(", "poolclass=db_pool.NullPool"):
            assert needed in source, (storage.__name__, needed)
        # Every call connects through the engine it holds now.
        connect = getattr(storage, "_connect", None) or storage.connect
        assert "create_pg_connection(self._engine)" in inspect.getsource(connect)


def test_test_only_internals_are_there() -> None:
    # Used by the tests themselves (conftest.py, the sensor and schedule tick helpers).
    from dagster._core.definitions.schedule_definition import ScheduleExecutionData
    from dagster._core.definitions.sensor_definition import SensorExecutionData
    from dagster._core.storage.defs_state.base import _current_storage

    assert ScheduleExecutionData and SensorExecutionData
    assert _current_storage.name


@dg.asset(partitions_def=PART)
def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Exercises the step-level internals as the generation step does."""
    assert isinstance(internals.step_context(context), internals.StepExecutionContext)
    others = [key for key in context.partition_keys if key != context.partition_keys[0]]
    internals.report_planned(context, dg.AssetKey("shadow"), others)
    internals.log_materializations(
        context, [dg.AssetMaterialization(
            "shadow", partition=key,
            tags={internals.DATA_VERSION_TAG: f"v-{key}"} if key != others[0] else None)
            for key in others], batch_size=100)
    assert os.environ.get(internals.EVENT_BATCH_SIZE) is None  # restored
    return dg.MaterializeResult()


def test_step_internals_record_planned_events_and_batches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(internals.EVENT_BATCH_SIZE, raising=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PART.name, KEYS)
        result = dg.materialize([probe], instance=instance, tags=range_tags(KEYS[0], KEYS[-1]))
        assert result.success
        run_id = result.run_id
        shadow = dg.AssetKey("shadow")
        assert instance.get_materialized_partitions(shadow) == set(KEYS[1:])
        assert internals.latest_planned_runs(instance, shadow, KEYS) == dict.fromkeys(
            KEYS[1:], run_id)
        # Tagged materializations' data versions, read back; untagged ones have none.
        assert internals.latest_data_versions(instance, shadow, KEYS) == {
            key: f"v-{key}" for key in KEYS[2:]}


def test_batch_size_setting_is_read_when_events_are_stored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        monkeypatch.delenv(internals.EVENT_BATCH_SIZE, raising=False)
        assert not instance._is_batch_writing_enabled()
        monkeypatch.setenv(internals.EVENT_BATCH_SIZE, "1000")
        assert instance._get_event_batch_size() == 1000


def _planned(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str | None, int]]:
    """``(asset, partition, partitions in its subset)`` of each planned event of a run."""
    out = []
    for record in instance.get_records_for_run(run_id, of_type=PLANNED, limit=10_000).records:
        data = record.event_log_entry.dagster_event.asset_materialization_planned_data
        subset = data.partitions_subset
        out.append((data.asset_key.to_user_string(), data.partition,
                    len(subset.get_partition_keys()) if subset is not None else 0))
    return sorted(out)


ONE_PER_ASSET = [(key.to_user_string(), None, len(KEYS)) for key in sorted(ASSETS)]


@pytest.mark.parametrize("flag", [None, "1"])
def test_subset_setting_is_read_when_a_run_is_created(
        monkeypatch: pytest.MonkeyPatch, flag: str | None) -> None:
    if flag is None:
        monkeypatch.delenv(internals.SUBSET_PLANNED_EVENTS, raising=False)
    else:
        monkeypatch.setenv(internals.SUBSET_PLANNED_EVENTS, flag)
    from seriesgen_pipeline.definitions import build_definitions

    job = build_definitions().resolve_job_def("series_generation_job")
    with dg.instance_for_test() as instance:
        assert instance.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events is (flag == "1")  # noqa: E501 - Dagster's name
        instance.add_dynamic_partitions("class_series", KEYS)
        run = instance.create_run_for_job(job, tags=range_tags(KEYS[0], KEYS[-1]))
        planned = _planned(instance, run.run_id)
    if flag:
        assert planned == ONE_PER_ASSET
    else:
        assert planned == sorted((key.to_user_string(), partition, 0)
                                 for key in ASSETS for partition in KEYS)


@pytest.mark.parametrize("name", ["dagster.yaml", "deploy/dagster.yaml",
                                  "deploy/dagster.postgres.yaml"])
def test_every_instance_file_names_the_instance_class(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Set to "0" (and so restored after the test): the instance must turn it on anyway.
    monkeypatch.setenv(internals.SUBSET_PLANNED_EVENTS, "0")
    config = yaml.safe_load((PROJECT / name).read_text())
    # PostgreSQL storage replaced by SQLite: only the instance class is under test here.
    config.pop("storage", None)
    text = yaml.safe_dump(config)
    (tmp_path / "dagster.yaml").write_text(text)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance) is internals.SeriesgenInstance
        assert os.environ[internals.SUBSET_PLANNED_EVENTS] == "1"
        assert type(dg.DagsterInstance.from_ref(instance.get_ref())) is internals.SeriesgenInstance
    finally:
        instance.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A DAGSTER_HOME with the project's dagster.yaml and the partitions; an environment
    without the subset setting."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    # Its storage is created here, before another process opens it.
    instance = dg.DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions("class_series", KEYS)
    instance.dispose()
    env = clean_env(DAGSTER_HOME=str(home), SERIESGEN_DATABASE_URL=f"sqlite:///{tmp_path}/a.db")
    assert internals.SUBSET_PLANNED_EVENTS not in env
    yield home, env


def _only_run(home: Path) -> tuple[str, list[tuple[str, str | None, int]]]:
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        (run,) = instance.get_runs()
        return run.run_id, _planned(instance, run.run_id)
    finally:
        instance.dispose()


def test_a_cli_process_without_the_setting_plans_one_event_per_asset(
        home: tuple[Path, dict[str, str]]) -> None:
    path, env = home
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml",
         "-j", "series_generation_job",
         "--tags", json.dumps({**range_tags(KEYS[0], KEYS[-1]), **QUEUE_TAGS})],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    _, planned = _only_run(path)  # queued; no daemon runs it
    assert planned == ONE_PER_ASSET


LAUNCH = """mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def test_the_webserver_without_the_setting_plans_one_event_per_asset(
        tmp_path: Path, home: tuple[Path, dict[str, str]]) -> None:
    path, env = home
    port = free_port()
    log = tmp_path / "webserver.log"
    server = start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml",
                    "-h", "127.0.0.1", "-p", str(port)], env=env, log=log)
    try:
        wait_for("the webserver", lambda: graphql_ready(port), _deadline(120), [log])
        tags = {**range_tags(KEYS[0], KEYS[-1]), **QUEUE_TAGS}
        answer = graphql(port, LAUNCH, {"params": {
            "selector": {"repositoryLocationName": "seriesgen_pipeline.definitions",
                         "repositoryName": "__repository__",
                         "jobName": "series_generation_job"},
            "runConfigData": "{}",
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }})
    finally:
        stop(server)
    launched = answer["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", answer

    run_id, planned = _only_run(path)
    assert run_id == launched["run"]["runId"]
    assert planned == ONE_PER_ASSET


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds
