"""Crash anywhere (FR-010, SPEC §5 "Resumption").

Contract: a ``seriesgen generate`` process killed with SIGKILL at any instant —
while taking the snapshot, inside a chunk transaction, between chunks, inside
the retirement transaction, or at a random moment — leaves

- no partial chunk: the rows a killed run committed are whole chunks
  (``SERIESGEN_CHUNK_ROWS`` writes each), and every row is entirely as before or
  entirely as after the run;
- no duplicate occurrence;
- progress that is a prefix in occurrence order, and a ``last_generated_through``
  that never claims an occurrence that is not committed;
- a retirement that either happened whole or not at all;

and the next, uninterrupted run ends with exactly the rows (every column a user
sees, through the tables and through ``seriesgen sessions --format json``), the
series and the watermarks of one uninterrupted run on a fresh database. Its
report counts exactly the writes that were still missing.

Three scenarios: ``fleet`` (a first run that creates 16 x 146 sessions and
retires an ended series), ``edited`` (a run that reconciles edits: every
session is updated or deleted) and ``nightly`` (three days later, an
incremental night that only extends each series' window). All run on SQLite and
PostgreSQL. The random instants are seeded (``SERIESGEN_FAILURE_SEED``
overrides the seed); the soak variant (``make soak``) runs many more, over all
three scenarios.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seriesgen_pipeline_tests.failure import harness as h
from seriesgen_pipeline_tests.failure.conftest import Reference

SEED = os.environ.get("SERIESGEN_FAILURE_SEED", "20260302")
KINDS = list(h.SCENARIOS)

# Deterministic fault points, applied one after the other to the same database:
# every run is killed at a later point than the last, then one run finishes.
LADDERS = {
    "fleet": ["snapshot", "chunk_write:3", "chunk_commit:5", "retirement"],
    "edited": ["after_snapshot", "chunk_write:4", "chunk_commit:3"],
    "nightly": ["chunk_write:4", "chunk_commit:5"],
}


def _total_ops(ref: Reference) -> int:
    keys = set(ref.before.sessions) | set(ref.state.sessions)
    return sum(1 for k in keys if ref.before.sessions.get(k) != ref.state.sessions.get(k))


def _env(kind: str, **extra: str) -> dict[str, str]:
    return h.scenario_env(kind, **extra)


def _generate(kind: str, url: str) -> list[str]:
    return h.generate_args(url, h.SCENARIOS[kind][0])


def _finish_and_compare(kind: str, url: str, ref: Reference, work: Path, done: int, *,
                        cli_listing: bool = False) -> dict[str, Any]:
    """One uninterrupted run; the database must equal the reference (and so must
    ``seriesgen sessions --format json``, when asked), and the run's report must
    count exactly the writes that were still missing."""
    report = h.run(_generate(kind, url), env=_env(kind), workdir=work).json()
    h.check_converged(h.read_state(url), ref.state)
    if cli_listing:
        assert h.sessions_json(url, env=_env(kind), workdir=work) == ref.sessions_json
    totals = report["totals"]
    assert totals["failed"] == 0, report
    assert totals["created"] + totals["updated"] + totals["deleted"] == _total_ops(ref) - done, (
        f"the resuming run reported {totals}, but {_total_ops(ref) - done} writes were missing")
    return report


@pytest.mark.parametrize("kind", KINDS)
def test_kill_at_each_fault_point_then_converge(kind: str, backend: str, make_db: Any,
                                                references: dict[str, Reference],
                                                tmp_path: Path) -> None:
    ref = references[kind]
    url = make_db(kind)
    total = _total_ops(ref)
    chunk = h.SCENARIOS[kind][1]
    done = 0
    for point in LADDERS[kind]:
        records = h.run_records(url)
        proc = h.run(_generate(kind, url), env=_env(kind, SERIESGEN_FAULT=point),
                     workdir=tmp_path, expect=None)
        assert proc.returncode == -9, (
            f"SERIESGEN_FAULT={point} did not kill the run (exit {proc.returncode}); "
            f"stderr:\n{proc.stderr()[-2000:]}")
        state = h.read_state(url)
        now_done = sum(h.check_crash_state(state, ref.before, ref.state).values())
        delta = now_done - done
        name, _, nth = point.partition(":")
        n = int(nth or 1)
        where = f"after SERIESGEN_FAULT={point} ({done} writes committed before)"
        if name == "snapshot":  # died before storing its snapshots
            assert delta == 0, where
            assert h.run_records(url) == records, f"{where}: snapshots stored"
        elif name == "after_snapshot":  # died with its snapshots stored, nothing written
            assert delta == 0, where
            assert h.run_records(url)[0] == records[0] + 1, where
        elif name == "chunk_write":  # died inside chunk n: n - 1 chunks of this run committed
            assert delta <= (n - 1) * chunk, f"{where}: {delta} writes"
            if kind in h.FULL_CHUNKS:
                assert delta % chunk == 0, f"{where}: {delta} writes: a partial chunk"
                if done == 0:
                    assert delta == (n - 1) * chunk, f"{where}: {delta} writes"
        elif name == "chunk_commit":  # died right after chunk n committed
            assert 0 < delta <= n * chunk, f"{where}: {delta} writes"
            if kind in h.FULL_CHUNKS:
                assert delta % chunk == 0, f"{where}: {delta} writes: a partial chunk"
                if done == 0:
                    assert delta == n * chunk, f"{where}: {delta} writes"
        elif name == "retirement":  # generation complete, retirement rolled back
            assert now_done == total, where
            assert "zz-ended" in state.series, f"{where}: the retirement was not rolled back"
            assert not any(k[0] == "zz-ended" for k in state.orphans), where
        done = now_done
    _finish_and_compare(kind, url, ref, tmp_path, done, cli_listing=True)


class _Progress:
    """A cheap reading of how many of the run's writes are committed: rows created
    or deleted so far plus rows already carrying an edited title (" (new)")."""

    _QUERY = sa.text("SELECT count(*), coalesce(sum(CASE WHEN title LIKE '%(new)' "
                     "THEN 1 ELSE 0 END), 0) FROM class_sessions")

    def __init__(self, url: str, ref: Reference) -> None:
        self.engine = h.plain_engine(url)
        self.before = len(ref.before.sessions)

    def __call__(self) -> int:
        with self.engine.connect() as conn:
            rows, renamed = conn.execute(self._QUERY).one()
        return abs(int(rows) - self.before) + int(renamed)


def _random_kills(kind: str, backend: str, make_db: Any, ref: Reference, work: Path,
                  trials: int, seed: str, early: float = 0.0) -> list[str]:
    """Kill ``trials`` runs at seeded random instants; check the state after each.

    The runs resume one another on one database; once one of them has committed
    every write, an uninterrupted run must converge there, and the next trials
    go on with a fresh database.

    With probability ``early`` the kill is drawn over the start-up
    (interpreter, Dagster, snapshot read; the ``snapshot`` fault point covers it
    too). Otherwise a point ``u`` is drawn in the run's progress, stratified
    (trial ``i`` of ``n`` draws in the ``i``-th ``n``-th, so a few trials still
    spread): below 0.85 the run is killed a random 0..50 ms after a fraction
    ``u / 0.85`` of the writes still missing are committed — in a chunk
    transaction or between two —, above it a random 0..100 ms after its last
    write: retirement, recording, exit. Progress is read from the tables, so the
    instants do not depend on the speed of the machine.
    """
    rng = random.Random(f"{seed}/{kind}/{backend}")
    total = _total_ops(ref)
    url = make_db(kind)
    probe = _Progress(url, ref)
    phases: list[str] = []
    done = 0
    try:
        for trial in range(trials):
            if done == total and phases:  # nothing left to kill: check, then start over
                probe.engine.dispose()
                _finish_and_compare(kind, url, ref, work, done)
                url = make_db(kind)
                probe = _Progress(url, ref)
                done = 0
            is_early = rng.random() < early
            u = rng.uniform(trial / trials, (trial + 1) / trials)
            # Over the writes still missing (earlier trials committed ``done``).
            target = total if u >= 0.85 else done + max(1, round(u / 0.85 * (total - done)))
            jitter = rng.uniform(0, 0.1 if u >= 0.85 else 0.05)
            records = h.run_records(url)
            proc = h.start(_generate(kind, url), env=_env(kind), workdir=work)
            if is_early:
                deadline = proc.started + rng.uniform(0.3, ref.snapshot_at)
            else:
                while proc.returncode is None and probe() < target:
                    time.sleep(0.003)
                deadline = time.monotonic() + jitter
            while time.monotonic() < deadline and proc.returncode is None:
                time.sleep(0.002)
            if proc.returncode is None:
                proc.kill()
            else:
                assert proc.returncode == 0, proc.stderr()[-2000:]
            at = time.monotonic() - proc.started
            state = h.read_state(url)
            context = f"seed={seed!r} trial {trial} killed at {at:.2f}s"
            try:
                now_done = sum(h.check_crash_state(state, ref.before, ref.state).values())
            except AssertionError as exc:
                raise AssertionError(f"{context}: {exc}") from None
            if kind == "fleet":  # every chunk full (see harness.FULL_CHUNKS)
                new_rows = state.count_from(h.NOW_DT)
                assert new_rows % h.CHUNK_ROWS == 0, f"{context}: {new_rows} rows: partial chunk"
            retired = None if kind != "fleet" else "zz-ended" not in state.series
            phase = h.phase_of(records, h.run_records(url), now_done, total, retired)
            phases.append(f"{at:.2f}s:{now_done}/{total}:{phase}")
            done = now_done
    finally:
        probe.engine.dispose()
    _finish_and_compare(kind, url, ref, work, done)
    return phases


def test_kill_at_random_instants_then_converge(backend: str, make_db: Any,
                                               references: dict[str, Reference],
                                               tmp_path: Path, record_property: Any) -> None:
    kind = "fleet"
    phases = _random_kills(kind, backend, make_db, references[kind], tmp_path,
                           trials=2, seed=SEED)
    record_property("kill_phases", phases)
    print(f"{kind}/{backend} kills: {phases}")


@pytest.mark.soak
@pytest.mark.parametrize("round_", range(4))
@pytest.mark.parametrize("kind", KINDS)
def test_soak_kill_at_random_instants(kind: str, round_: int, backend: str, make_db: Any,
                                      references: dict[str, Reference], tmp_path: Path,
                                      record_property: Any) -> None:
    phases = _random_kills(kind, backend, make_db, references[kind], tmp_path,
                           trials=6, seed=f"{SEED}/soak/{round_}", early=0.15)
    record_property("kill_phases", phases)
    print(f"{kind}/{backend} round {round_} kills: {phases}")
