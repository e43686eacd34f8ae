"""Concurrent runs (FR-011, SPEC §5 "Concurrency").

Contract: several ``seriesgen generate --all`` processes started at the same
moment against one database (a PostgreSQL database; a SQLite file), sharing one
Dagster instance, all succeed — waiting for each other where they must — within
a bound (no deadlock), write no duplicate, leave exactly the rows of one
uninterrupted run, and their reports add up: the ``created`` counts of all
runs sum to the rows that exist, series by series, and the ``updated`` and
``deleted`` counts of racing reconciliations sum to the writes one run makes.

The soak variant also SIGKILLs some of the racing processes at random instants:
a dead run's locks (PostgreSQL advisory locks, SQLite byte-range locks) die
with it, the survivors finish, and a last run converges.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from seriesgen_pipeline_tests.failure import harness as h
from seriesgen_pipeline_tests.failure.conftest import Reference

SEED = os.environ.get("SERIESGEN_FAILURE_SEED", "20260302")
RACE_TIMEOUT = 180.0  # far above the time 3 runs take one after the other

def _check_exit(proc: h.Proc, code: int) -> None:
    assert code == 0, f"a racing run exited {code}:\n{proc.stderr()[-3000:]}"


def _race(url: str, n: int, env: dict[str, str], work: Path) -> list[h.Proc]:
    return [h.start(h.generate_args(url), env=env, workdir=work / f"run{i}") for i in range(n)]


def _series_counts(reports: list[dict[str, Any]], field: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for report in reports:
        for s in report["series"]:
            out[s["key"]] += int(s[field])
    return out


@pytest.mark.parametrize(("backend", "kind"), [
    ("sqlite", "fleet"),
    pytest.param("postgresql", "fleet", marks=pytest.mark.postgres),
    # Racing reconciliations on SQLite: in the soak variant.
    pytest.param("postgresql", "edited", marks=pytest.mark.postgres),
])
def test_simultaneous_runs_all_succeed_and_add_up(kind: str, backend: str, make_db: Any,
                                                  references: dict[str, Reference],
                                                  dagster_home: Path, tmp_path: Path,
                                                  record_property: Any) -> None:
    ref = references[kind]
    url = make_db(kind)
    env = h.scenario_env(kind, dagster_home)
    procs = _race(url, 3, env, tmp_path)
    codes = [p.wait(RACE_TIMEOUT) for p in procs]
    for p, code in zip(procs, codes, strict=True):
        _check_exit(p, code)
    reports = [p.json() for p in procs]
    shares = [{k: r["totals"][k] for k in ("created", "updated", "deleted")} for r in reports]
    record_property("writes_per_run", shares)
    print(f"{kind}/{backend} writes per racing run: {shares}")
    state = h.read_state(url)
    h.check_converged(state, ref.state)

    want = h.writes_by_series(ref.before, ref.state)
    for field in ("created", "updated", "deleted"):
        got = _series_counts(reports, field)
        for series, counts in want.items():
            assert got[series] == counts[field], (
                f"{series}: the racing runs reported {got[series]} {field} in all, "
                f"but {counts[field]} rows were {field}")
    for r in reports:
        failed = [s["key"] for s in r["series"] if s["status"] == "failed"]
        assert not failed, r


@pytest.mark.soak
@pytest.mark.parametrize("round_", range(4))
def test_soak_racing_runs_some_killed(round_: int, backend: str, make_db: Any,
                                      references: dict[str, Reference], dagster_home: Path,
                                      tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}/race/{backend}/{round_}")
    kind = "fleet" if round_ % 2 == 0 else "edited"
    ref = references[kind]
    url = make_db(kind)
    env = h.scenario_env(kind, dagster_home)
    procs = _race(url, 5, env, tmp_path)
    victims = rng.sample(range(5), 2)
    for i in victims:
        deadline = procs[i].started + rng.uniform(ref.snapshot_at, ref.seconds * 2.5)
        while time.monotonic() < deadline and procs[i].returncode is None:
            time.sleep(0.01)
        procs[i].kill()
    for i, p in enumerate(procs):
        if i not in victims:
            _check_exit(p, p.wait(RACE_TIMEOUT))
    h.check_crash_state(h.read_state(url), ref.before, ref.state)
    h.run(h.generate_args(url), env=env, workdir=tmp_path)
    h.check_converged(h.read_state(url), ref.state)
