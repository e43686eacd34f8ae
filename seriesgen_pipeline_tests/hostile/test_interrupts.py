"""Ctrl-C or SIGTERM during `seriesgen generate` ends with a truthful report (SPEC §9).

The process exits 130, prints no traceback, says which series were committed
(each of those has all its sessions) and which were interrupted; the next run
completes the work and leaves exactly the rows of an uninterrupted run (SPEC §5).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine

SERIES = 300
HORIZON = 365  # daily series: 365 sessions each in the window
NOW = "2026-03-01T12:00:00Z"
# Two series per chunk and a short pause after each commit: 150 chunks take at
# least 3 s, so the signal, sent once the first chunk is in, lands while chunks
# are still being written however fast the machine writes them.
SLOW = {"SERIESGEN_CHUNK_ROWS": str(2 * HORIZON), "SERIESGEN_FAULT": "pause_chunk_commit:0.02"}


def _data_file(path: Path) -> Path:
    lines = ["base:", f"  horizon_days: {HORIZON}", "  timezone: UTC",
             "  default_duration_minutes: 60", "  default_capacity: 20",
             '  open_time: "00:00"', '  close_time: "23:59"', "  closed_dates: []",
             "  generation_enabled: true", "  cleanup_grace_days: 0",
             "branches:", "  - id: b", "    name: B", "series:"]
    for i in range(SERIES):
        lines += [f"  - key: s{i:04d}", "    branch: b", f"    title: Class {i}",
                  f"    room: Room {i}", '    recurrence: "FREQ=DAILY"',
                  '    start_time: "10:00"', "    start_date: 2026-01-01"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERIESGEN_", "DAGSTER_"))}
    env.update(SERIESGEN_DATABASE_URL=url, DAGSTER_HOME=str(tmp_path / "dagster"))
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "seriesgen_pipeline.cli", *args]


def _rows_per_series(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(  # type: ignore[arg-type]
            "SELECT series_key, count(*) FROM class_sessions GROUP BY series_key")).all())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_generate_reports_the_truth_and_the_next_run_completes(
        signum: int, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    env = _env(tmp_path, url)
    for args in (("db", "upgrade"), ("load", str(_data_file(tmp_path / "data.yaml")))):
        subprocess.run(_cli(*args), env=env, check=True, capture_output=True)
    engine = create_db_engine(url)

    proc = subprocess.Popen(_cli("generate", "--all", "--now", NOW, "--format", "json"),
                            env={**env, **SLOW}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while sum(_rows_per_series(engine).values()) == 0:  # some chunk committed
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    document = json.loads(out)
    assert document["interrupted"] is True
    statuses = {s["key"]: s["status"] for s in document["series"]}
    assert len(statuses) == SERIES
    assert set(statuses.values()) <= {"success", "committed", "interrupted"}
    assert "interrupted" in statuses.values()
    rows = _rows_per_series(engine)
    committed = [k for k, status in statuses.items() if status in ("success", "committed")]
    assert committed, "the test interrupted the run before any series was complete"
    for key in committed:
        assert rows[key] == HORIZON, key
    reported = {s["key"]: s["created"] for s in document["series"]}
    assert sum(reported.values()) == sum(rows.values())
    assert f"{len(committed)} of {SERIES} series were committed" in err

    again = subprocess.run(_cli("generate", "--all", "--now", NOW, "--format", "json"),
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert _rows_per_series(engine) == {f"s{i:04d}": HORIZON for i in range(SERIES)}
    engine.dispose()
