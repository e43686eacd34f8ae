"""Operating seriesgen (FR-005, FR-006): the safeguard, structured logs, secrets.

Contract: in production without ``ENABLE_SERIES_GENERATION=true`` every entry point
refuses (CLI exit 2, demo refuses, materialization fails naming the variable,
schedule and sensor skip) and nothing is written; with
``SERIESGEN_LOG_FORMAT=json`` every log line is JSON with one line per series
and one per run; a database password never appears in any output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline_tests.cli.helpers import NOW, prepared, run_cli

PRODUCTION = {"SERIESGEN_ENV": "production"}


def count(url: str, table: sa.Table) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return int(value)


def test_safeguard_cli_generate_load_and_demo(sqlite_url, tmp_path):
    data = prepared(sqlite_url, tmp_path)
    load = run_cli("load", str(data), "--database-url", sqlite_url, env=PRODUCTION)
    assert load.returncode == 2
    assert "ENABLE_SERIES_GENERATION" in load.stderr
    done = run_cli("generate", "--all", "--now", NOW, "--database-url", sqlite_url,
                   env=PRODUCTION)
    assert done.returncode == 2
    assert "ENABLE_SERIES_GENERATION" in done.stderr
    assert count(sqlite_url, repo.sessions_t) == 0
    assert count(sqlite_url, repo.log_t) == 0
    demo = run_cli("demo", "--database-url", f"sqlite:///{tmp_path}/demo.db", env=PRODUCTION)
    assert demo.returncode == 2
    assert "production" in demo.stderr
    assert not (tmp_path / "demo.db").exists()
    allowed = run_cli("generate", "--all", "--now", NOW, "--database-url", sqlite_url,
                      env={**PRODUCTION, "ENABLE_SERIES_GENERATION": "true"})
    assert allowed.returncode == 0, allowed.stderr
    assert count(sqlite_url, repo.sessions_t) == 6


def test_safeguard_asset_schedule_and_sensor(sqlite_url, tmp_path, monkeypatch):
    prepared(sqlite_url, tmp_path)
    monkeypatch.setenv("SERIESGEN_ENV", "production")
    monkeypatch.delenv("ENABLE_SERIES_GENERATION", raising=False)
    defs = build_definitions(resource=SeriesgenResource(database_url=sqlite_url, now=NOW))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("class_series", ["east-yoga"])
        result = defs.resolve_job_def("series_generation_job").execute_in_process(
            instance=instance, partition_key="east-yoga", raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "ENABLE_SERIES_GENERATION" in str(failure.event_specific_data)
        schedule = defs.resolve_schedule_def("nightly_generation")
        with dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime(2026, 3, 2, 2, tzinfo=UTC),
                resources={"seriesgen": SeriesgenResource(database_url=sqlite_url)}) as ctx:
            skipped = schedule.evaluate_tick(ctx)
        assert not skipped.run_requests
        assert "ENABLE_SERIES_GENERATION" in (skipped.skip_message or "")
        sensor = defs.get_sensor_def("class_series_changes")
        # instance_ref, not the instance itself: the sensor context enters its own
        # instance, so this test's instance is not entered twice.
        with dg.build_sensor_context(
                instance_ref=instance.get_ref(),
                resources={"seriesgen": SeriesgenResource(database_url=sqlite_url)}) as sctx:
            tick = sensor.evaluate_tick(sctx)
        assert not tick.run_requests
        assert "ENABLE_SERIES_GENERATION" in (tick.skip_message or "")
    assert count(sqlite_url, repo.sessions_t) == 0
    assert count(sqlite_url, repo.snapshots_t) == 0


def test_json_logs_one_line_per_series_and_per_run(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    done = run_cli("generate", "--all", "--now", NOW, "--format", "json",
                   "--database-url", sqlite_url, env={"SERIESGEN_LOG_FORMAT": "json"})
    assert done.returncode == 0, done.stderr
    ours = []
    for line in done.stderr.splitlines():
        if line.startswith("{"):
            ours.append(json.loads(line))
    series_lines = [r for r in ours if r.get("event") == "series_generated"]
    run_lines = [r for r in ours if r.get("event") == "run_finished"]
    assert sorted(r["series"] for r in series_lines) == ["east-early", "east-yoga"]
    yoga = next(r for r in series_lines if r["series"] == "east-yoga")
    assert yoga["window_start"] == "2026-03-02T12:00:00Z"
    assert yoga["window_end"] == "2026-03-16T12:00:00Z"
    assert (yoga["created"], yoga["updated"], yoga["deleted"], yoga["protected"]) == (4, 0, 0, 0)
    assert yoga["provenance"]["timezone"] == "branch"
    assert yoga["provenance"]["horizon_days"] == "base"
    assert isinstance(yoga["duration_ms"], int)
    assert len(run_lines) == 1
    assert run_lines[0]["created"] == 6 and run_lines[0]["failed_series"] == []


@pytest.mark.postgres
def test_password_never_appears(postgres_url, tmp_path):
    # The test server trusts local connections, so any password is accepted: a real run.
    secret = "s3cr3t-Pa55word"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in url
    outputs = []
    data = prepared(url, tmp_path)
    for args in (("generate", "--all", "--now", NOW, "--format", "json"),
                 ("sessions", "--format", "json"), ("conflicts",), ("load", str(data)),
                 ("db", "upgrade")):
        done = run_cli(*args, "--database-url", url, env={"SERIESGEN_LOG_FORMAT": "json"})
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    # An unreachable server: the error names the URL, masked.
    down = url.replace("127.0.0.1:5432", "127.0.0.1:1", 1)
    failed = run_cli("sessions", "--database-url", down)
    assert failed.returncode == 2
    assert "***" in failed.stderr
    outputs += [failed.stdout, failed.stderr]
    env_url = run_cli("sessions", env={"SERIESGEN_DATABASE_URL": down})
    outputs += [env_url.stdout, env_url.stderr]
    assert all(secret not in text for text in outputs)
    # Nor in what the run stored: snapshots, logs and conflicts.
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        for table in (repo.snapshots_t, repo.log_t, repo.conflicts_t):
            for row in conn.execute(sa.select(table)):
                assert secret not in str(row)
    engine.dispose()
