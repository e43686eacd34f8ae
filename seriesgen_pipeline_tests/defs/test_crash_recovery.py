"""A run worker killed with SIGKILL under the real daemon: nothing left writing, the
partitions it did not finish show Failed, and "backfill failed and missing" repairs them.

Contract (SPEC §5 "Resumption", §8; issue 12 D3, D4): with ``dagster-daemon`` on
the project's ``dagster.yaml`` (run retries off here, so that the test is the one
to rerun), the sensor generates six series; then every series is edited (a new
title) and a seventh is added, and the sensor's run over the seven is killed
with SIGKILL in its run worker while it writes (``SERIESGEN_FAULT`` slows the
chunks down so the kill lands mid-generation). Then:

- the run is FAILURE, no process the worker started is alive, and no session is
  written after the kill (with the multiprocess executor the step's child process
  went on writing, and recorded materializations into the failed run);
- every partition of the killed run — the new series' included — shows FAILED for
  the three assets (not Missing, not the old Materialized);
- a backfill of the failed and missing partitions, as the UI launches it, runs
  through the queue; the run carries its ``seriesgen/partition_range`` tag; then
  every partition is MATERIALIZED as after a clean run, the sessions equal those
  of one uninterrupted run on a copy of the edited database, and the latest
  materialization of every partition carries the fingerprint and configuration
  hash of the rerun's snapshot, not the pre-edit ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.runs import RANGE_TAG
from seriesgen_pipeline_tests.builders import (
    execute,
    latest_snapshots,
    seed_base,
    seed_branch,
    seed_series,
)
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    Daemon,
    alive,
    daemon_env,
    descendants,
    instance_home,
    migrated_engine,
    partition_status,
    run_status,
    worker_pid,
)
from seriesgen_pipeline_tests.failure import harness as h

pytestmark = pytest.mark.slow

RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
ASSETS = (RESOLVED, SESSIONS, CLEANUP)
FIRST = [f"crash-{i}" for i in range(1, 7)]
ADDED = "crash-7"
KEYS = [*FIRST, ADDED]
HORIZON = 56  # daily series: 56 sessions each
SLOW = {"SERIESGEN_CHUNK_ROWS": "8", "SERIESGEN_BATCH_SERIES": "1",
        "SERIESGEN_FAULT": "pause_chunk_commit:0.25"}  # about 12 s for the edit run
NO_RETRIES = {"run_retries": {"enabled": False}}


def _seed(url: str) -> sa.Engine:
    engine = migrated_engine(url)
    seed_base(engine, horizon_days=HORIZON)
    seed_branch(engine, "east")
    for number, key in enumerate(FIRST):
        seed_series(engine, key, recurrence="FREQ=DAILY", room=f"Room {number}",
                    instructor=f"Coach {number}")
    return engine


def _new_titles(url: str) -> int:
    """Sessions with an edited title, read as another application would (no write lock)."""
    engine = h.plain_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM class_sessions WHERE title LIKE '%(new)'")).scalar_one())
    finally:
        engine.dispose()


def _latest(instance: dg.DagsterInstance, asset: dg.AssetKey, key: str) -> dict[str, object]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[key]), limit=1).records
    assert records, f"{asset.to_user_string()}[{key}] never materialized"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {"run_id": records[0].run_id,
            **{name: value.value for name, value in materialization.metadata.items()}}


def _statuses(instance: dg.DagsterInstance) -> dict[str, dict[str, str | None]]:
    return {asset.to_user_string(): partition_status(instance, asset, KEYS) for asset in ASSETS}


def _backfill_failed_and_missing(instance: dg.DagsterInstance) -> str:
    """What the UI's "Backfill failed and missing" submits for the three assets."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    status = partition_status(instance, SESSIONS, KEYS)
    wanted = [key for key in KEYS if status[key] in ("FAILED", None)]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=build_definitions().resolve_asset_graph(), partition_names=wanted,
        asset_selection=list(ASSETS), backfill_timestamp=time.time(), tags={},
        dynamic_partitions_store=instance, all_partitions=False, title=None,
        description=None, run_config=None)
    instance.add_backfill(backfill)
    return backfill.backfill_id


def test_killed_worker_leaves_no_writer_and_failed_partitions_that_a_backfill_repairs(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    engine = _seed(url)
    home = instance_home(tmp_path / "dagster_home", NO_RETRIES)
    instance = dg.DagsterInstance.from_config(str(home))  # its storage, before the daemon's
    daemon = Daemon(daemon_env(home, url, **SLOW), tmp_path / "daemon.log")
    try:
        # A clean first run by the sensor.
        first = daemon.wait_for("the sensor's first run to succeed", lambda: [
            r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.SUCCESS], 120)
        assert len(instance.get_runs()) == 1
        clean = _statuses(instance)
        assert {status for by_key in clean.values() for key, status in by_key.items()
                if key != ADDED} == {"MATERIALIZED"}
        before = {key: _latest(instance, RESOLVED, key)["fingerprint"] for key in FIRST}

        # Edit every series and add one; keep a copy of the edited database.
        execute(engine, "UPDATE class_series SET title = title || ' (new)'")
        seed_series(engine, ADDED, recurrence="FREQ=DAILY", room="Room 7",
                    instructor="Coach 7", title="Crash-7 (new)")
        # (No connection of this process may stay open on the file while it is copied:
        # closing the copy's file descriptor would drop that connection's POSIX locks.)
        engine.dispose()
        reference_url = h.copy_sqlite(url, tmp_path / "reference.db")
        reference = h.start(h.generate_args(reference_url, NOW), env=h.child_env(None),
                            workdir=tmp_path / "reference")

        # The sensor's run over the seven series: kill its worker mid-generation.
        run = daemon.wait_for("the edit run", lambda: next(
            (r for r in instance.get_runs() if r.run_id != first[0].run_id), None), 90)
        pid = daemon.wait_for("the edit run's worker", lambda: worker_pid(instance, run.run_id),
                              60)
        daemon.wait_for("sessions written by the edit run", lambda: _new_titles(url) >= 16,
                        60, every=0.05)
        below = descendants(pid)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        written = _new_titles(url)

        daemon.wait_for("the killed run to fail", lambda: run_status(
            instance, run.run_id) == dg.DagsterRunStatus.FAILURE, 60)
        daemon.wait_for("the worker's processes to be gone",
                        lambda: not any(alive(p) for p in below | {pid}), 10)
        time.sleep(max(0.0, killed_at + 5 - time.monotonic()))
        assert _new_titles(url) == written, "sessions were written after the worker was killed"
        after_kill = instance.get_records_for_run(run.run_id, of_type={
            dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_SUCCESS}).records
        assert after_kill == [], "the killed run recorded materializations or a step success"
        assert 16 <= written < HORIZON * len(KEYS)

        # Every partition the run did not finish shows Failed, the new one included.
        all_failed = {asset.to_user_string(): dict.fromkeys(KEYS, "FAILED") for asset in ASSETS}
        daemon.wait_for("the killed run's partitions to show FAILED",
                        lambda: _statuses(instance) == all_failed, 90)

        # "Backfill failed and missing", as the UI does it.
        backfill_id = _backfill_failed_and_missing(instance)
        reruns = daemon.wait_for("the backfill's runs to finish", lambda: (
            found if (found := instance.get_runs(filters=dg.RunsFilter(
                tags={"dagster/backfill": backfill_id})))
            and all(r.is_finished for r in found) else None), 180)
        assert reference.wait() == 0, reference.stderr()[-2000:]
    finally:
        daemon.stop()
    try:
        assert [r.status for r in reruns] == [dg.DagsterRunStatus.SUCCESS], daemon.tail()
        (rerun,) = reruns
        assert rerun.tags[RANGE_TAG] == f"{KEYS[0]}..{KEYS[-1]}"
        assert _statuses(instance) == {asset.to_user_string(): dict.fromkeys(KEYS, "MATERIALIZED")
                                       for asset in ASSETS}
        h.check_converged(h.read_state(url), h.read_state(reference_url))
        # What the rerun generated from: each series' latest snapshot (stored by the
        # killed run, which took the edited series first).
        snapshots = latest_snapshots(engine)
        assert set(snapshots) == set(KEYS)
        for key in KEYS:
            resolved = _latest(instance, RESOLVED, key)
            sessions = _latest(instance, SESSIONS, key)
            assert resolved["run_id"] == sessions["run_id"] == rerun.run_id, key
            assert resolved["fingerprint"] == sessions["fingerprint"] == snapshots[
                key].fingerprint, key
            assert resolved["config_hash"] == sessions["config_hash"] == snapshots[
                key].config_hash, key
            assert resolved["fingerprint"] != before.get(key), key
    finally:
        instance.dispose()
        engine.dispose()
        shutil.rmtree(home, ignore_errors=True)
