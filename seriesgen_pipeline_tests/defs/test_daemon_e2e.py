"""End to end under the real daemon: the sensor alone takes new series to generated sessions.

Contract: with ``dagster-daemon run -w workspace.yaml`` started on a fresh
``DAGSTER_HOME`` holding the project's ``dagster.yaml`` (queued run coordinator)
and ``SERIESGEN_DATABASE_URL`` naming a migrated SQLite file with three series,
the default-running ``class_series_changes`` sensor adds the three partitions
and requests a run; the queue launches it; sessions appear in the application
database for all three series, and the instance shows ``class_sessions``
MATERIALIZED for the three partitions, from one successful sensor run, whose
worker tagged the run and which recorded one ``generation_report`` observation
with its figures. Bounded:
the whole test takes at most about two minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.defs.monitoring import WORKER_TAG
from seriesgen_pipeline.defs.runs import RANGE_TAG
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series, session_rows
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    PARTITIONS,
    migrated_engine,
    partition_status,
    worker_pid,
)

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
KEYS = ["daemon-a", "daemon-b", "daemon-c"]
SESSIONS = dg.AssetKey("class_sessions")
DEADLINE_S = 100  # first tick within ~35 s, then queue, launch and run
STOP_WAIT_S = 20


def _reset_sigint() -> None:
    # A background shell leaves SIGINT ignored, and the daemon would inherit that:
    # give it the default back, so that Python installs its KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGINT to the daemon's process group, a bounded wait, then SIGKILL."""
    try:
        os.killpg(daemon.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=STOP_WAIT_S)
    # Whatever is left of the group (code server, run workers) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=STOP_WAIT_S)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def _wait_for(what: str, probe, deadline: float, log: Path):  # type: ignore[no-untyped-def]
    """Poll ``probe`` every second until it returns something truthy or the deadline."""
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; daemon log tail:\n{_log_tail(log)}")
        time.sleep(1)


def test_sensor_generates_new_series_under_the_daemon(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine)
    seed_branch(engine, "east", horizon_days=14)
    for number, key in enumerate(KEYS):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Teacher {number}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERIESGEN_", "DAGSTER_")) and k != "ENABLE_SERIES_GENERATION"}
    env.update(DAGSTER_HOME=str(home), SERIESGEN_DATABASE_URL=url, SERIESGEN_NOW=NOW,
               SERIESGEN_ENV="development")
    log = tmp_path / "daemon.log"
    started = time.monotonic()
    deadline = started + DEADLINE_S
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_reset_sigint,
        )
    instance: dg.DagsterInstance | None = None
    try:
        def generated() -> bool:
            keys = {row["series_key"] for row in session_rows(engine)}
            return keys == set(KEYS)

        _wait_for("sessions of the three series", generated, deadline, log)
        instance = dg.DagsterInstance.from_config(str(home))

        def finished_runs() -> list[dg.DagsterRun]:
            runs = instance.get_runs()
            return runs if runs and all(run.is_finished for run in runs) else []

        runs = _wait_for("the sensor's run to finish", finished_runs, deadline, log)
        status = _wait_for(
            "class_sessions materialized",
            lambda: (found if set((found := partition_status(instance, SESSIONS, KEYS))
                                  .values()) == {"MATERIALIZED"} else None),
            deadline, log)
        partitions = instance.get_dynamic_partitions(PARTITIONS)
        reports = instance.fetch_observations(dg.AssetKey("generation_report"), limit=10).records
        run_worker = worker_pid(instance, runs[0].run_id)
    finally:
        _stop(daemon)
        if instance is not None:
            instance.dispose()
    elapsed = time.monotonic() - started

    assert status == dict.fromkeys(KEYS, "MATERIALIZED")
    assert partitions == KEYS
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.SUCCESS, _log_tail(log)
    assert run.tags["dagster/sensor_name"] == "class_series_changes"
    assert run.tags[RANGE_TAG] == "daemon-a..daemon-c"
    # The step ran in the run worker (not in the daemon, not in a step subprocess of it),
    # which named itself on the run; the run's figures are one report observation.
    assert run_worker is not None
    assert json.loads(run.tags[WORKER_TAG])["pid"] == run_worker
    (report,) = reports
    assert report.run_id == run.run_id
    assert report.asset_observation is not None
    figures = {k: v.value for k, v in report.asset_observation.metadata.items()}
    assert (figures["series"], figures["created"], figures["failed"]) == (3, 12, 0)
    per_series = Counter(row["series_key"] for row in session_rows(engine))
    assert per_series == dict.fromkeys(KEYS, 4)
    with engine.connect() as conn:
        logged = conn.execute(sa.text(
            "SELECT series_key, status, created FROM generation_log ORDER BY series_key")).all()
    assert [tuple(row) for row in logged] == [(key, "success", 4) for key in KEYS]
    assert elapsed < 120
    engine.dispose()
