"""``deploy/serve.sh`` (``make serve``): databases, migration, two servers, clean stop.

Contract: with ``DAGSTER_PG_URL`` and ``SERIESGEN_DATABASE_URL`` naming PostgreSQL
databases that do not exist yet, the script creates both, migrates the application
database, and starts the daemon and the webserver (on 127.0.0.1 and
``SERIESGEN_SERVE_PORT``) with ``deploy/dagster.yaml`` in ``DAGSTER_HOME``; a
SIGINT to the script (Ctrl-C) stops both within the bounded wait and leaves no
process behind. A SQLite URL (the Makefile's default) is not used: serve runs on
PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import normalize_url
from seriesgen_pipeline_tests.conftest import drop_postgres_database, postgres_admin_url
from seriesgen_pipeline_tests.deploy.support import (
    PROJECT,
    clean_env,
    free_port,
    graphql,
    graphql_ready,
    group_alive,
    listening_addresses,
    log_tail,
    start,
    wait_for,
)

STARTUP_S = 60
STOP_S = 45  # the script's own wait (20 s) and SIGKILL, with margin


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _daemon_healthy(port: int, kind: str) -> bool:
    answer = graphql(port, "{ instance { daemonHealth { allDaemonStatuses {"
                           " daemonType required healthy } } } }")
    daemons = answer["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
    return any(d["daemonType"] == kind and d["required"] and d["healthy"] for d in daemons)


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_creates_the_databases_starts_both_servers_and_stops_on_sigint(
        tmp_path: Path) -> None:
    admin = make_url(normalize_url(postgres_admin_url()))
    suffix = uuid.uuid4().hex[:12]
    app = admin.set(drivername="postgresql", database=f"sg_serve_app_{suffix}")
    storage = admin.set(drivername="postgresql+psycopg2",
                        database=f"sg_serve_dagster_{suffix}")
    app_text = app.render_as_string(hide_password=False)
    storage_text = storage.render_as_string(hide_password=False)
    home = tmp_path / "home"
    port = free_port()
    log = tmp_path / "serve.log"
    env = clean_env(DAGSTER_HOME=str(home), DAGSTER_PG_URL=storage_text,
                    SERIESGEN_DATABASE_URL=app_text, SERIESGEN_SERVE_PORT=str(port))
    script = start(["bash", "deploy/serve.sh"], env=env, log=log)
    groups: list[int] = []
    try:
        deadline = time.monotonic() + STARTUP_S
        wait_for("serve.sh's webserver", lambda: graphql_ready(port), deadline, [log])
        groups = _children(script.pid)
        assert len(groups) == 2, groups  # the daemon and the webserver
        for pid in groups:
            assert os.getpgid(pid) == pid  # each leads its own process group
        assert listening_addresses(port) == {"127.0.0.1"}
        assert (home / "dagster.yaml").read_text() == (
            PROJECT / "deploy" / "dagster.yaml").read_text()
        # The daemon heartbeats into the same PostgreSQL instance the webserver reads.
        wait_for("a healthy sensor daemon", lambda: _daemon_healthy(port, "SENSOR"),
                 deadline, [log])

        stopped_at = time.monotonic()
        script.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        code = script.wait(timeout=STOP_S)
        took = time.monotonic() - stopped_at
        assert code == 130, log_tail(log)
        assert not any(group_alive(pid) for pid in groups), log_tail(log)
        assert took < STOP_S
        assert "serve: stopping dagster-daemon and dagster-webserver" in log.read_text()

        # Both databases exist now; the application one is migrated.
        for url in (storage_text, app_text):
            engine = sa.create_engine(normalize_url(url))
            try:
                tables = set(sa.inspect(engine).get_table_names())
            finally:
                engine.dispose()
            assert ("runs" in tables) if url == storage_text else ("class_series" in tables)
    finally:
        if script.poll() is None:
            script.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                script.wait(timeout=STOP_S)
        for pid in [script.pid, *groups]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            script.wait(timeout=10)
        for url in (app_text, storage_text):
            drop_postgres_database(url)


def test_serve_runs_on_postgresql_not_on_a_sqlite_url(tmp_path: Path) -> None:
    """The Makefile exports a SQLite SERIESGEN_DATABASE_URL; serve swaps in PostgreSQL.

    Checked without starting anything: an unreachable PostgreSQL (port 1) makes the
    script stop at the database step, after saying which URL it uses instead.
    """
    env = clean_env(
        DAGSTER_HOME=str(tmp_path / "home"),
        DAGSTER_PG_URL="postgresql+psycopg2://postgres:pw-not-shown@127.0.0.1:1/nowhere",
        SERIESGEN_DATABASE_URL=f"sqlite:///{tmp_path}/app.db")
    done = subprocess.run(["bash", "deploy/serve.sh"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "SERIESGEN_DATABASE_URL is a SQLite URL" in done.stderr
    assert "postgresql://postgres@127.0.0.1:5432/seriesgen" in done.stderr
    assert "cannot reach postgresql+psycopg2://postgres:***@127.0.0.1:1/nowhere" in done.stderr
    assert "pw-not-shown" not in done.stdout + done.stderr
    assert not (tmp_path / "app.db").exists()
