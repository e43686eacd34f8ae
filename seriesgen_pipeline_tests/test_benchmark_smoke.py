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
