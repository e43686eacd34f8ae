"""Smoke test of ``benchmarks/nightly.py --quick``: it completes and its counts are right.

Never asserts a time: the benchmark's figures are for people to read, not for CI
to gate on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "nightly.py"


@pytest.mark.slow
def test_quick_benchmark_completes_with_right_counts(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--database-url",
         f"sqlite:///{tmp_path}/b.db", "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    steps = figures["steps"]
    assert steps["cold"]["rows_written"] > 0
    assert steps["warm"]["rows_written"] > 0
    assert steps["noop"]["rows_written"] == 0
    assert steps["raw"]["created"] == steps["cold"]["created"]
    assert all(check["ok"] for check in figures["checks"]), figures["checks"]


@pytest.mark.postgres
def test_prune_benchmark_prunes_the_same_rows_with_and_without_the_index(
        postgres_url: str, tmp_path: Path) -> None:
    """``benchmarks/retention_prune.py`` at a tiny scale: the notifications older than the
    retention of its run's series go (each has a newer one), with the index and
    without it alike, and the index is back after."""
    script = SCRIPT.parent / "retention_prune.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--series", "200", "--run-series", "100",
         "--per-night", "20", "--nights", "35", "--database-url", postgres_url],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # 20 double bookings a night on series i * 7919 % 200 for i = 1..20: 8 of them among
    # the first 100 series (23, 28, 33, 38, 61, 66, 71, 76), each notified 30 days and
    # an hour ago and on the five nights before, so six times older than 30 days.
    assert "(48 notifications deleted)" in proc.stdout, proc.stdout
    assert "without the index" in proc.stdout
    engine = create_db_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM pg_indexes WHERE indexname = "
                "'ix_notifications_series_code'")).scalar_one() == 1
    finally:
        engine.dispose()
