"""Running the real ``seriesgen`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO_LIKE = """\
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
  - id: east
    name: East
    config: {timezone: America/New_York, open_time: "07:00"}
series:
  - key: east-yoga
    branch: east
    title: Yoga Basics
    instructor: Ana
    room: Studio 2
    recurrence: "FREQ=WEEKLY;BYDAY=MO,WE"
    start_time: "18:00"
    duration_minutes: 60
    start_date: 2026-01-05
    end_date: 2026-06-30
  - key: east-early
    branch: east
    title: Early Spin
    room: Bike Room
    recurrence: "FREQ=WEEKLY;BYDAY=SU"
    start_time: "06:30"
    duration_minutes: 45
    start_date: 2026-01-04
"""

BROKEN_SERIES = """\
  - key: east-broken
    branch: east
    title: Broken
    recurrence: "FREQ=WEEKLY;BYDAY=TU"
    start_time: "09:00"
    start_date: 2026-01-05
"""

NOW = "2026-03-02T12:00:00Z"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``seriesgen ARGS`` with a clean seriesgen environment plus ``env``."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SERIESGEN_", "ENABLE_SERIES", "ADMIN_NOTIFY", "DAGSTER_HOME"))}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "seriesgen_pipeline.cli", *args],
                          capture_output=True, text=True, env=base, cwd=cwd, timeout=timeout)


def prepared(url: str, tmp_path: Path, extra: str = "") -> Path:
    """Migrate ``url`` and load the small data file (plus ``extra`` series)."""
    data = tmp_path / "data.yaml"
    data.write_text(DEMO_LIKE + extra)
    for args in (("db", "upgrade"), ("load", str(data))):
        done = run_cli(*args, "--database-url", url)
        assert done.returncode == 0, done.stderr
    return data
