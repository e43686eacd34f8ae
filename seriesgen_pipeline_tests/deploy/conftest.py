"""One production-like deployment, started once for the tests of this package.

``deployment`` creates fresh PostgreSQL databases for the Dagster instance and the
application, a temporary ``DAGSTER_HOME`` holding ``deploy/dagster.yaml``, loads a
data file with the seriesgen CLI (three good series, then one broken by raw SQL),
and starts real ``dagster-daemon run`` and ``dagster-webserver -h 127.0.0.1``
processes, each leading its own process group. It returns once the change sensor's
run has finished. Both URLs carry a password (PostgreSQL's trust authentication
accepts any), so the tests can look for it where it must not be. The processes
are always stopped (SIGINT to each group, a bounded wait, then SIGKILL) and the
databases dropped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import create_db_engine
from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database
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

SECRET = "s3cret-pw"
NOW = "2026-03-02T12:00:00Z"
GOOD = ["deploy-yoga", "deploy-spin", "deploy-pilates"]
BROKEN = "deploy-broken"
KEYS = [*GOOD, BROKEN]
DEADLINE_S = 110  # servers up, first sensor tick, queue, launch and run

DATA = """\
base:
  horizon_days: 14
  timezone: UTC
  default_duration_minutes: 60
  default_capacity: 20
  open_time: "06:00"
  close_time: "22:00"
  closed_dates: []
  generation_enabled: true
  cleanup_grace_days: 0
branches:
  - id: north
    name: North
series:
  - key: deploy-yoga
    branch: north
    title: Yoga
    instructor: Ana
    room: Studio 1
    recurrence: "FREQ=WEEKLY;BYDAY=MO,WE"
    start_time: "18:00"
    start_date: 2026-01-05
  - key: deploy-spin
    branch: north
    title: Spin
    instructor: Ben
    room: Bike Room
    recurrence: "FREQ=WEEKLY;BYDAY=TU,TH"
    start_time: "07:00"
    start_date: 2026-01-06
  - key: deploy-pilates
    branch: north
    title: Pilates
    instructor: Cleo
    room: Studio 2
    recurrence: "FREQ=DAILY"
    start_time: "12:30"
    duration_minutes: 45
    start_date: 2026-02-01
  - key: deploy-broken
    branch: north
    title: Broken
    instructor: Dev
    room: Studio 3
    recurrence: "FREQ=WEEKLY;BYDAY=FR"
    start_time: "10:00"
    start_date: 2026-01-09
"""


@dataclass
class Deployment:
    """What the tests need from the running deployment."""

    root: Path
    home: Path
    port: int
    app_url: str
    dagster_url: str
    env: dict[str, str]
    engine: sa.Engine
    logs: list[Path]
    cli_output: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        result = graphql(self.port, query, variables)
        assert "errors" not in result, result
        return result

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The deployment's instance, opened here (DAGSTER_PG_URL only while it is open)."""
        with mock.patch.dict(os.environ, {"DAGSTER_PG_URL": self.dagster_url}):
            instance = dg.DagsterInstance.from_config(str(self.home))
            try:
                yield instance
            finally:
                instance.dispose()


def _runs_finished(port: int) -> list[dict[str, Any]] | None:
    try:
        result = graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")
    except OSError:
        return None
    runs = result.get("data", {}).get("runsOrError", {}).get("results") or []
    done = {"SUCCESS", "FAILURE", "CANCELED"}
    return runs if runs and all(run["status"] in done for run in runs) else None


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    made: list[str] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    engine: sa.Engine | None = None
    try:
        app = create_postgres_database(prefix="sg_deploy_app")
        made.append(app)
        storage = create_postgres_database(prefix="sg_deploy_dagster")
        made.append(storage)
        app_url = make_url(app).set(drivername="postgresql", password=SECRET)
        dagster_url = make_url(storage).set(drivername="postgresql+psycopg2", password=SECRET)
        app_text = app_url.render_as_string(hide_password=False)
        dagster_text = dagster_url.render_as_string(hide_password=False)

        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = clean_env(
            DAGSTER_HOME=str(home), DAGSTER_PG_URL=dagster_text,
            SERIESGEN_DATABASE_URL=app_text, SERIESGEN_NOW=NOW,
            SERIESGEN_ENV="production", ENABLE_SERIES_GENERATION="true",
        )

        # The application database, through the CLI: migrate, load, then break one series.
        data = root / "series.yaml"
        data.write_text(DATA)
        outputs = []
        for args in (["db", "upgrade"], ["load", str(data)]):
            done = subprocess.run([str(BIN / "seriesgen"), *args], cwd=PROJECT, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            outputs.append(done.stdout + done.stderr)
            assert done.returncode == 0, outputs[-1]
        engine = create_db_engine(app_text)
        with engine.begin() as conn:
            changed = conn.execute(sa.text(
                "UPDATE class_series SET recurrence = 'FREQ=YEARLY' WHERE key = :key"),
                {"key": BROKEN}).rowcount
        assert changed == 1

        port = free_port()
        logs = [root / "daemon.log", root / "webserver.log"]
        started = time.monotonic()
        procs["daemon"] = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                env=env, log=logs[0])
        procs["webserver"] = start(
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)], env=env, log=logs[1])
        deadline = started + DEADLINE_S
        wait_for("the webserver", lambda: graphql_ready(port), deadline, logs)
        wait_for("the sensor's run to finish", lambda: _runs_finished(port), deadline, logs)
        yield Deployment(root=root, home=home, port=port, app_url=app_text,
                         dagster_url=dagster_text, env=env, engine=engine, logs=logs,
                         cli_output="\n".join(outputs), procs=procs)
    finally:
        for proc in procs.values():
            stop(proc)
        if engine is not None:
            engine.dispose()
        for url in made:
            drop_postgres_database(url)
