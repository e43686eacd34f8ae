"""Smoke test of ``benchmarks/daemon_night.py`` at a tiny scale, with the real daemon.

The script starts ``dagster-daemon run`` on PostgreSQL instance storage with the
deployment's ``dagster.yaml``; the sensor registers the series and runs the cold
night, the schedule ticks the warm and the no-op nights, the sensor reruns the
edited series. The test asserts that it exits 0 (every correctness check
passed), prints a table row for each step and JSON figures that add up, and that
it stopped the daemon and left no process behind. It never asserts a time: the
figures are for people to read. Two runs per night (25 series each) under a
generation limit of 2. About 2.5 minutes: the schedule ticks twice, each time at
a whole minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "daemon_night.py"
SERIES = 50
CHUNK = 25
TIMEOUT_S = 420
ROW_LABELS = ("register (sensor)", "cold (sensor)", "warm +1 day (schedule)",
              "no-op (schedule)", "edit 10% (sensor)")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _daemons_of(home: str) -> list[str]:
    """Command lines of live processes whose environment names ``home`` as DAGSTER_HOME."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"DAGSTER_HOME={home}".encode() in environ.split(b"\0"):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_daemon_benchmark_runs_every_night_through_the_daemon(
        postgres_url: str, tmp_path: Path) -> None:
    storage = create_postgres_database(prefix="sg_test_dagster")
    out = tmp_path / "figures.json"
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SERIESGEN_", "DAGSTER_"))}
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--series", str(SERIES), "--horizon-days", "14",
             "--run-chunk", str(CHUNK), "--concurrency", "2", "--database-url", postgres_url,
             "--dagster-postgres-url", storage, "--workdir-parent", str(tmp_path),
             "--json", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the script stops its daemon and cleans up
            try:
                stdout, stderr = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            pytest.fail(f"no result within {TIMEOUT_S} s\n{stdout[-4000:]}{stderr[-4000:]}")
        assert proc.returncode == 0, stdout[-6000:] + stderr[-4000:]
    finally:
        drop_postgres_database(storage)

    lines = stdout.splitlines()
    for label in ROW_LABELS:
        assert any(line.startswith(label) for line in lines), (label, stdout)
    figures = json.loads(out.read_text())
    (rnd,) = figures["rounds"]
    assert rnd["concurrency"] == 2
    assert rnd["instance"]["storage"] == "postgres"
    assert rnd["checks"] and all(check["ok"] for check in rnd["checks"]), rnd["checks"]
    steps = rnd["steps"]
    assert steps["register"]["partitions"] == SERIES
    for step, origin in (("cold", "sensor class_series_changes"),
                         ("warm", "schedule nightly_generation"),
                         ("noop", "schedule nightly_generation"),
                         ("edit", "sensor class_series_changes")):
        night = steps[step]
        assert night["origins"] == {origin: night["runs"]}, (step, night["origins"])
        assert night["statuses"] == {"SUCCESS": night["runs"]}, (step, night["statuses"])
        for run in night["per_run"]:  # created <= started <= first step <= ended
            assert run["created"] <= run["started"] <= run["first_step"] <= run["ended"], run
        assert night["tick_to_done_s"] >= night["runs_wall_s"] > 0
        assert night["engine_s"] > 0
    # The schedule covers every partition, in ranges of CHUNK series.
    assert steps["warm"]["runs"] == steps["noop"]["runs"] == SERIES // CHUNK
    assert steps["cold"]["series"] == steps["warm"]["series"] == SERIES
    assert steps["cold"]["sessions"] == steps["cold"]["created"] > 0
    assert steps["warm"]["created"] > 0
    assert steps["noop"]["created"] + steps["noop"]["updated"] + steps["noop"]["deleted"] == 0
    assert steps["edit"]["series"] >= rnd["edited"]["series"] > 0
    assert steps["edit"]["updated"] + steps["edit"]["deleted"] > 0
    # Everything it started is gone, its temporary DAGSTER_HOME too.
    assert _daemons_of(rnd["dagster_home"]) == []
    assert not Path(rnd["dagster_home"]).exists()
