"""A dead run worker or code server is detected; Terminate works without the code server.

Contract (SPEC §8; issue 12 D5), ``defs/monitoring.py`` and the instance settings:

- ``MonitoredRunLauncher.check_run_worker_health`` reads the worker a run's tags
  name: a worker on this host is alive while its PID lives with the same start
  time (a reused PID is not taken for it); a worker on another host while its
  heartbeat is younger than ``STALE_S``; a run STARTED ``STALE_S`` ago that named no
  worker has failed. Checked against real processes.
- The project's ``dagster.yaml`` configures that launcher with run monitoring whose
  poll interval and staleness bound fail a crashed run within 5 minutes, and a run
  queue that waits for a restarted code server instead of failing queued runs.
- Under the real daemon (the generation limit set to 1, so the second run must wait
  for the first one's slot): the code server and the run worker of a running run
  are killed with SIGKILL; run monitoring fails the run (well within the bound),
  and the queued run then starts on the code server the daemon restarts. Its code
  server is killed in turn (its worker goes on), and Terminate — what the UI's
  button calls — returns instead of raising, and the run ends CANCELED with its
  worker gone and nothing written after.
- Dagster's own default launcher still has no health check (else ours may go).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from seriesgen_pipeline.defs import monitoring
from seriesgen_pipeline.defs.monitoring import (
    HEARTBEAT_TAG,
    STALE_S,
    WORKER_TAG,
    MonitoredRunLauncher,
    worker_health,
)
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import (
    PROJECT,
    Daemon,
    alive,
    daemon_env,
    instance_home,
    migrated_engine,
    parent_of,
    run_status,
    worker_pid,
)
from seriesgen_pipeline_tests.failure import harness as h

KEYS = [f"mon-{i}" for i in range(1, 7)]
SLOW = {"SERIESGEN_CHUNK_ROWS": "8", "SERIESGEN_BATCH_SERIES": "1",
        "SERIESGEN_FAULT": "pause_chunk_commit:1"}  # six daily series: about 45 s
RUNNING, FAILED = monitoring.WorkerStatus.RUNNING, monitoring.WorkerStatus.FAILED


# ------------------------------------------------------------------ the health check

def _sleeper() -> tuple[subprocess.Popen[str], dict[str, object]]:
    """A real process that reports its own worker identity, then sleeps."""
    code = ("import json, time\nfrom seriesgen_pipeline.defs.monitoring import worker_identity\n"
            "print(json.dumps(worker_identity()), flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def test_a_local_worker_is_alive_while_its_process_lives() -> None:
    proc, identity = _sleeper()
    try:
        tags = {WORKER_TAG: json.dumps(identity)}
        assert worker_health(tags, started_at=time.time() - 1000)[0] == RUNNING
        reused = {WORKER_TAG: json.dumps({**identity, "start": "1"})}
        assert worker_health(reused, started_at=None)[0] == FAILED
    finally:
        proc.kill()
        proc.wait()
    status, message = worker_health(tags, started_at=None)
    assert status == FAILED
    assert f"pid {identity['pid']}" in message and "gone" in message


def test_a_remote_worker_is_alive_while_its_heartbeat_is_fresh() -> None:
    now = 1_800_000_000.0
    identity = json.dumps({"host": f"not-{socket.gethostname()}", "pid": 1, "start": "5"})
    fresh = {WORKER_TAG: identity, HEARTBEAT_TAG: str(round(now - 20))}
    stale = {WORKER_TAG: identity, HEARTBEAT_TAG: str(round(now - STALE_S - 1))}
    assert worker_health(fresh, started_at=now - 3600, now=now)[0] == RUNNING
    assert worker_health(stale, started_at=now - 3600, now=now)[0] == FAILED


def test_a_run_that_never_named_its_worker_fails_after_the_staleness_bound() -> None:
    now = 1_800_000_000.0
    assert worker_health({}, started_at=None, now=now)[0] == RUNNING
    assert worker_health({}, started_at=now - 30, now=now)[0] == RUNNING
    assert worker_health({}, started_at=now - STALE_S - 1, now=now)[0] == FAILED


def test_the_project_instance_monitors_runs_within_five_minutes(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.from_config(str(instance_home(tmp_path / "home")))
    try:
        assert isinstance(instance.run_launcher, MonitoredRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        poll = instance.run_monitoring_poll_interval_seconds
        # A local worker's death is seen at the next poll, a remote one's when its
        # heartbeat is STALE_S old (plus one heartbeat interval and one poll).
        assert poll + monitoring.HEARTBEAT_S + STALE_S + poll < 300
        assert 0 < instance.run_monitoring_cancel_timeout_seconds <= 300
        assert instance.run_monitoring_max_resume_run_attempts == 0
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        # Queued runs wait for a restarted code server (the daemon reloads it every 60 s).
        assert queue.max_user_code_failure_retries * queue.user_code_failure_retry_delay >= 120
    finally:
        instance.dispose()
    deployed = yaml.safe_load((PROJECT / "deploy" / "dagster.yaml").read_text())
    project = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    for name in ("run_launcher", "run_monitoring", "run_coordinator"):
        assert deployed[name] == project[name], name


def test_the_default_launcher_still_cannot_check_its_workers() -> None:
    # Why the project has its own launcher (the internals it uses are pinned by
    # test_dagster_internals.py): should Dagster's default launcher learn to check its
    # workers, ours may be dropped.
    assert dg.DefaultRunLauncher().supports_check_run_worker_health is False
    assert MonitoredRunLauncher().supports_check_run_worker_health is True


# ------------------------------------------------------------------ under the daemon

def _new_titles(url: str) -> int:
    engine = h.plain_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM class_sessions WHERE title LIKE '%(new)'")).scalar_one())
    finally:
        engine.dispose()


def _code_server(daemon: Daemon, worker: int) -> list[int]:
    """The code server processes above a run worker (the server, and the proxy the daemon
    may start it under), up to the daemon."""
    found = []
    pid = parent_of(worker)
    while pid is not None and pid not in (daemon.popen.pid, 1, os.getpid()):
        found.append(pid)
        pid = parent_of(pid)
    assert found and pid == daemon.popen.pid, f"worker {worker} is not below the daemon"
    return found


@pytest.mark.slow
def test_dead_code_server_fails_the_run_frees_its_slot_and_terminate_still_works(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine, horizon_days=56)
    seed_branch(engine, "east")
    for number, key in enumerate(KEYS):
        seed_series(engine, key, recurrence="FREQ=DAILY", room=f"Room {number}",
                    instructor=f"Coach {number}")
    home = instance_home(tmp_path / "dagster_home", {
        "run_retries": {"enabled": False},
        "run_monitoring": {"poll_interval_seconds": 5},
        "concurrency": {"runs": {"tag_concurrency_limits": [
            {"key": "seriesgen/generation", "limit": 1}]}},
    })
    instance = dg.DagsterInstance.from_config(str(home))  # its storage, before the daemon's
    daemon = Daemon(daemon_env(home, url, **SLOW), tmp_path / "daemon.log")
    try:
        first = daemon.wait_for("the sensor's run to start", lambda: next(
            (r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED), None),
            120)
        first_worker = daemon.wait_for("its worker", lambda: worker_pid(instance, first.run_id),
                                       60)
        servers = _code_server(daemon, first_worker)
        # A change while it runs: the sensor queues a second run behind the first.
        execute(engine, "UPDATE class_series SET title = title || ' (new)' "
                        "WHERE key IN ('mon-1', 'mon-2')")
        engine.dispose()
        second = daemon.wait_for("the second run to be queued", lambda: next(
            (r for r in instance.get_runs() if r.run_id != first.run_id
             and r.status == dg.DagsterRunStatus.QUEUED), None), 60)
        assert run_status(instance, first.run_id) == dg.DagsterRunStatus.STARTED

        # The code server and the worker die together: nobody reports the run.
        for pid in [*servers, first_worker]:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        daemon.wait_for("run monitoring to fail the run", lambda: run_status(
            instance, first.run_id) == dg.DagsterRunStatus.FAILURE, 120)
        detected_s = time.monotonic() - killed_at
        failure = instance.get_records_for_run(
            first.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        # Its slot is free: the queued run starts, on the code server the daemon restarts.
        daemon.wait_for("the queued run to start", lambda: run_status(
            instance, second.run_id) == dg.DagsterRunStatus.STARTED, 240)

        # The second run's code server dies; its worker goes on. Terminate still works.
        second_worker = daemon.wait_for("its worker", lambda: worker_pid(
            instance, second.run_id), 60)
        second_servers = _code_server(daemon, second_worker)
        assert not set(second_servers) & set(servers)
        daemon.wait_for("its first writes", lambda: _new_titles(url) > 0, 60, every=0.1)
        for pid in second_servers:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        # The worker normally outlives its code server, and Terminate must reach it. On a
        # loaded machine it may already have ended by now: then there is nothing left to
        # terminate, and what is checked is that nothing of it goes on writing.
        terminated = alive(second_worker)
        if terminated and not instance.run_coordinator.cancel_run(second.run_id):
            # Refused: the launcher refuses only a finished run, so the run ended between
            # the check and the request (its worker was exiting), by itself, successfully.
            assert run_status(instance, second.run_id) == dg.DagsterRunStatus.SUCCESS
            terminated = False
        if terminated:
            daemon.wait_for("the run to be canceled", lambda: run_status(
                instance, second.run_id) == dg.DagsterRunStatus.CANCELED, 60)
            daemon.wait_for("its worker to be gone", lambda: not alive(second_worker), 30)
        written = _new_titles(url)
        time.sleep(3)
        assert _new_titles(url) == written
    finally:
        daemon.stop()
        instance.dispose()
    assert detected_s < 300
    assert failure, "the crashed run has no failure event"
    assert "is gone" in (failure[0].event_log_entry.message or ""), daemon.tail()
    if terminated:
        assert written < 2 * 56
