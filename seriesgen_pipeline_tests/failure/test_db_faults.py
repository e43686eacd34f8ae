"""Database faults: the connection dropped mid-run (PostgreSQL).

Contract: connections the server terminates while the run is not using them
(after the snapshot, before generation) are replaced: the run succeeds.
When the server terminates a run's connection
(``pg_terminate_backend``) in the middle of a chunk transaction, the run fails
cleanly for the series that connection was writing: the chunk in flight is
rolled back whole (nothing half-written, no watermark ahead of the rows), those
series are reported ``failed`` with an error that says the database connection
was lost and to rerun, the other series are generated, ``seriesgen generate``
exits 1 with a pure JSON report, and a rerun converges to the rows of one
uninterrupted run.

The run is held inside its chunk transactions with
``SERIESGEN_FAULT=pause_chunk_write:<seconds>``; the moment the run's
connection is ``idle in transaction`` with a chunk written but not committed,
one SQL statement terminates every session of the database (detecting and
terminating in one statement, so the chunk cannot commit in between).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seriesgen_pipeline_tests.failure import harness as h
from seriesgen_pipeline_tests.failure.conftest import Reference

pytestmark = pytest.mark.postgres

CHUNK = 292  # 2 series per chunk, 4 chunks per batch of 8 series


# The last statements of a chunk transaction: the watermark UPDATE and the
# generation_state upsert. A transaction idle after one of them is a chunk
# written but not committed.
CHUNK_STATEMENT = r"last_generated_through|generation_state"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connection_terminated_inside_a_chunk(backend: str, make_db: Any,
                                              references: dict[str, Reference],
                                              tmp_path: Path) -> None:
    ref = references["fleet"]
    url = make_db("fleet")
    env = h.child_env(None, SERIESGEN_CHUNK_ROWS=str(CHUNK), SERIESGEN_BATCH_SERIES="8",
                      SERIESGEN_FAULT="pause_chunk_write:0.3")
    proc = h.start(h.generate_args(url), env=env, workdir=tmp_path)
    assert h.terminate_backends_inside(url, CHUNK_STATEMENT,
                                       is_running=lambda: proc.returncode is None) >= 1, (
        proc.stderr()[-2000:])

    code = proc.wait()
    report = proc.json()  # stdout still holds the JSON document alone
    assert code == 1, f"exit {code}, expected 1 (some series failed):\n{proc.stderr()[-3000:]}"
    failed = [s for s in report["series"] if s["status"] == "failed"]
    assert failed, report
    for s in failed:
        error = (s["error"] or "").lower()
        assert "database connection lost" in error and "rerun" in error, (
            f"{s['key']}: the error does not say the connection was lost and to rerun: "
            f"{s['error']!r}\n{proc.stderr()[-3000:]}")
        assert (s["created"], s["updated"], s["deleted"]) == (0, 0, 0), s
    assert len(failed) < len(report["series"]), "the other series were not generated"

    state = h.read_state(url)
    done = h.check_crash_state(state, ref.before, ref.state)
    for s in failed:
        assert done.get(s["key"], 0) == 0, f"{s['key']}: rows of the rolled-back chunk remain"
    for s in report["series"]:
        if s["status"] == "success":
            want = {k: v for k, v in ref.state.sessions.items() if k[0] == s["key"]}
            got = {k: v for k, v in state.sessions.items() if k[0] == s["key"]}
            assert got == want, f"{s['key']}: " + h.diff_sessions(got, want)

    rerun = h.run(h.generate_args(url), env=h.child_env(None), workdir=tmp_path).json()
    assert rerun["totals"]["failed"] == 0, rerun
    missing = sum(1 for k in ref.state.sessions if k[0] in {s["key"] for s in failed})
    assert rerun["totals"]["created"] == missing, rerun["totals"]  # the failed series, no more
    h.check_converged(h.read_state(url), ref.state)
    assert h.sessions_json(url, env=h.child_env(None), workdir=tmp_path) == ref.sessions_json


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connections_terminated_between_steps_are_replaced(backend: str, make_db: Any,
                                                           references: dict[str, Reference],
                                                           tmp_path: Path) -> None:
    ref = references["fleet"]
    url = make_db("fleet")
    env = h.scenario_env("fleet", SERIESGEN_FAULT="pause_after_snapshot:2")
    records = h.run_records(url)
    proc = h.start(h.generate_args(url), env=env, workdir=tmp_path)
    assert h.wait_for_snapshot(proc, url, records) is not None, proc.stderr()[-2000:]
    assert h.terminate_backends(url) >= 1, "the run kept no connection open"
    assert proc.wait() == 0, proc.stderr()[-3000:]
    assert proc.json()["totals"]["failed"] == 0
    h.check_converged(h.read_state(url), ref.state)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connection_terminated_while_recording_the_run(backend: str, make_db: Any,
                                                      references: dict[str, Reference],
                                                      tmp_path: Path) -> None:
    """Every session is committed; the connection drops inside the transaction that
    writes ``generation_log``: that transaction is retried, the run succeeds, and
    each series has exactly one ``generation_log`` row for the run."""
    ref = references["fleet"]
    url = make_db("fleet")
    env = h.scenario_env("fleet", SERIESGEN_FAULT="pause_record:0.5")
    proc = h.start(h.generate_args(url), env=env, workdir=tmp_path)
    assert h.terminate_backends_inside(url, r"generation_log|series_conflicts|notifications",
                                       is_running=lambda: proc.returncode is None) >= 1, (
        proc.stderr()[-2000:])
    assert proc.wait() == 0, proc.stderr()[-3000:]
    report = proc.json()
    assert report["totals"]["failed"] == 0, report
    assert report["totals"] == ref.report["totals"], (report["totals"], ref.report["totals"])
    assert "retrying" in proc.stderr(), proc.stderr()[-2000:]
    h.check_converged(h.read_state(url), ref.state)
    engine = h.plain_engine(url)
    try:
        with engine.connect() as conn:
            per_series = conn.execute(sa.text(
                "SELECT series_key, count(*) FROM generation_log WHERE run_id = :run "
                "GROUP BY series_key"), {"run": report["run_id"]}).all()
    finally:
        engine.dispose()
    assert sorted(per_series) == sorted((s["key"], 1) for s in report["series"]), per_series
