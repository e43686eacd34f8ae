"""The Dagster definitions of seriesgen, snapshotted so an accidental rename fails CI.

Contract: the root ``Definitions`` load; they hold exactly the three per-series
assets ``resolved_series_config -> class_sessions -> series_cleanup`` on the
``class_series`` dynamic partitions and the unpartitioned ``generation_report``,
the ``class_sessions/series_conflicts`` check, the ``series_generation_job`` (every
job with the in-process executor), the ``nightly_generation`` schedule
(``0 2 * * *`` in UTC unless ``build_definitions`` is given another cron and
time zone), the ``class_series_changes`` and ``failed_run_partitions`` sensors; and
``dagster definitions validate`` accepts ``workspace.yaml`` with the project's
``dagster.yaml``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from seriesgen_pipeline.definitions import build_definitions

PROJECT = Path(__file__).resolve().parents[2]
RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
REPORT = dg.AssetKey("generation_report")
SENSORS = {"class_series_changes", "failed_run_partitions"}


def test_asset_keys_and_lineage() -> None:
    defs = build_definitions()
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    report = specs.pop(REPORT)
    assert report.partitions_def is None and report.group_name == "seriesgen"
    assert set(specs) == {RESOLVED, SESSIONS, CLEANUP}
    lineage = {key: {dep.asset_key for dep in spec.deps} for key, spec in specs.items()}
    assert lineage == {RESOLVED: set(), SESSIONS: {RESOLVED}, CLEANUP: {SESSIONS}}
    assert {spec.group_name for spec in specs.values()} == {"seriesgen"}
    for spec in specs.values():
        assert isinstance(spec.partitions_def, dg.DynamicPartitionsDefinition)
        assert spec.partitions_def.name == "class_series"


def test_asset_check_key() -> None:
    graph = build_definitions().resolve_asset_graph()
    assert set(graph.asset_check_keys) == {
        dg.AssetCheckKey(asset_key=SESSIONS, name="series_conflicts")}


def test_jobs() -> None:
    defs = build_definitions()
    names = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert names == {"series_generation_job"}
    job = defs.resolve_job_def("series_generation_job")
    assert isinstance(job.partitions_def, dg.DynamicPartitionsDefinition)
    assert job.partitions_def.name == "class_series"
    assert job.asset_layer.executable_asset_keys == {RESOLVED, SESSIONS, CLEANUP}
    # A run worker killed with SIGKILL must leave no step process writing behind it.
    for each in defs.resolve_all_job_defs():
        assert each.executor_def is dg.in_process_executor, each.name


def test_schedule_defaults() -> None:
    schedule = build_definitions().resolve_schedule_def("nightly_generation")
    assert schedule.name == "nightly_generation"
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "series_generation_job"
    # On by default: the production safeguard, not a stopped schedule, keeps it quiet.
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_schedule_cron_and_timezone_are_configurable() -> None:
    schedule = build_definitions(cron="30 4 * * 1-5", timezone="Europe/London"
                                 ).resolve_schedule_def("nightly_generation")
    assert schedule.cron_schedule == "30 4 * * 1-5"
    assert schedule.execution_timezone == "Europe/London"
    assert schedule.job_name == "series_generation_job"


def test_sensor() -> None:
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("class_series_changes")
    assert sensor.name == "class_series_changes"
    assert sensor.job_name == "series_generation_job"
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    names = {s.name for s in defs.get_repository_def().sensor_defs}
    assert names == SENSORS


def test_root_module_definitions_load() -> None:
    from seriesgen_pipeline.definitions import defs

    assert set(defs.resolve_all_asset_keys()) == {RESOLVED, SESSIONS, CLEANUP, REPORT}
    repository = defs.get_repository_def()
    assert {s.name for s in repository.schedule_defs} == {"nightly_generation"}
    assert {s.name for s in repository.sensor_defs} == SENSORS
    assert "seriesgen" in repository.get_top_level_resources()


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERIESGEN_SCHEDULE_")}
    env["DAGSTER_HOME"] = str(home)
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All code locations passed validation." in output
