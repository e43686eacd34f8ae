"""Run worker crashes: a launcher whose workers run monitoring can check, the worker's side,
and what a failed run leaves.

Dagster's ``DefaultRunLauncher`` starts each run worker as a child of the code
server. The code server notices a worker that died and fails its run; but when
the code server dies too (or alone, and the worker with it), nothing does: the
run stays STARTED for ever and holds its queue slot, and Terminate fails
because it asks the dead code server. ``MonitoredRunLauncher`` is the default
launcher plus what the daemon's run monitoring asks of a launcher:

- **Worker identity.** The generation step runs in the run worker itself (the
  job uses the in-process executor) and, first thing, tags its run with
  ``seriesgen/run_worker`` (host, PID, the process's start time) and keeps
  ``seriesgen/worker_heartbeat`` fresh (every ``HEARTBEAT_S``) while it works.
- **Health** (``check_run_worker_health``, polled by the daemon every
  ``run_monitoring.poll_interval_seconds``): a worker on this host is alive when
  its PID exists with the same start time; a worker on another host when its
  heartbeat is younger than ``STALE_S``. A run STARTED ``STALE_S`` ago that has
  tagged no worker is failed too. A failed check makes the daemon fail the run
  (freeing its slot); ``run_retries`` then relaunches it.
- **Terminate** asks the code server, as the default launcher does; when the
  code server cannot be reached or no longer knows the run (it was restarted), a
  worker on this host is sent SIGTERM (Dagster's worker turns it into a clean
  cancellation), and a run whose worker is gone is marked canceled at once. A
  worker elsewhere is left to the monitoring's ``cancel_timeout_seconds``.
- **Afterwards** (``mark_unfinished``, called by the ``failed_run_partitions``
  sensor of ``defs/recovery.py``): the partitions a failed run did not record get a
  per-partition planned event of that run, so they show as failed.

The Dagster internals used here (``CheckRunHealthResult``, ``WorkerStatus``,
``DagsterUserCodeUnreachableError``, ``DagsterEvent`` and
``AssetMaterializationPlannedData``) come from ``internals.py``, which pins them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

from seriesgen_pipeline.defs.internals import (
    AssetMaterializationPlannedData,
    CheckRunHealthResult,
    DagsterEvent,
    DagsterUserCodeUnreachableError,
    WorkerStatus,
)

WORKER_TAG = "seriesgen/run_worker"
HEARTBEAT_TAG = "seriesgen/worker_heartbeat"
HEARTBEAT_S = 15.0
STALE_S = 120.0


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces, so count after its ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def worker_identity() -> dict[str, Any]:
    """Where this process runs: host, PID and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_ticks(pid)}


def _alive(identity: Mapping[str, Any]) -> bool:
    pid = int(identity["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: the PID was reused
        return False
    start = str(identity.get("start") or "")
    return not start or _start_ticks(pid) == start


@contextlib.contextmanager
def worker_heartbeat(instance: dg.DagsterInstance, run_id: str,
                     tags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Tag the run with this worker (and ``tags``) and keep its heartbeat fresh meanwhile."""
    instance.add_run_tags(run_id, {**(tags or {}), WORKER_TAG: json.dumps(worker_identity()),
                                   HEARTBEAT_TAG: str(round(time.time()))})
    if instance.is_ephemeral:  # no daemon watches it, and its storage is one connection
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            # A storage hiccup must not kill the worker; the next beat tries again.
            with contextlib.suppress(Exception):
                instance.add_run_tags(run_id, {HEARTBEAT_TAG: str(round(time.time()))})

    thread = threading.Thread(target=beat, name="seriesgen-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def worker_health(tags: Mapping[str, str], *, started_at: float | None,
                  now: float | None = None) -> tuple[WorkerStatus, str]:
    """Whether the worker a run's tags name is alive, and why (see the module doc)."""
    now = time.time() if now is None else now
    raw = tags.get(WORKER_TAG)
    if raw is None:
        if started_at is not None and now - started_at > STALE_S:
            return WorkerStatus.FAILED, (
                f"the run started {now - started_at:.0f} s ago and no run worker reported")
        return WorkerStatus.RUNNING, "the run worker has not reported yet"
    identity = json.loads(raw)
    where = f"pid {identity['pid']} on {identity['host']}"
    if identity["host"] == socket.gethostname():
        if _alive(identity):
            return WorkerStatus.RUNNING, f"run worker {where} is alive"
        return WorkerStatus.FAILED, f"run worker {where} is gone (crashed or killed)"
    beat = float(tags.get(HEARTBEAT_TAG) or 0)
    if now - beat > STALE_S:
        return WorkerStatus.FAILED, (
            f"run worker {where} sent no heartbeat for {now - beat:.0f} s")
    return WorkerStatus.RUNNING, f"run worker {where} sent a heartbeat {now - beat:.0f} s ago"


class MonitoredRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` with worker health checks and a Terminate that needs no code
    server (see the module doc). Configured in ``dagster.yaml`` as ``run_launcher``."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        record = self._instance.get_run_record_by_id(run.run_id)
        started_at = record.start_time if record is not None else None
        status, message = worker_health(run.tags, started_at=started_at)
        return CheckRunHealthResult(status, message)

    def terminate(self, run_id: str) -> bool:
        try:
            if super().terminate(run_id):
                return True
        except DagsterUserCodeUnreachableError:
            pass
        # The code server could not stop the run: it is gone, or it was restarted and
        # no longer knows the run's worker.
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        raw = run.tags.get(WORKER_TAG)
        identity = json.loads(raw) if raw else None
        if identity is not None and identity["host"] != socket.gethostname():
            self._instance.report_engine_event(
                f"The code server cannot stop the run and the run worker runs on "
                f"{identity['host']}: the run is marked canceled by run monitoring after "
                "cancel_timeout_seconds.", run, cls=self.__class__)
            return False
        if identity is not None and _alive(identity):
            os.kill(int(identity["pid"]), signal.SIGTERM)
            self._instance.report_engine_event(
                f"The code server cannot stop the run: sent SIGTERM to run worker pid "
                f"{identity['pid']}.", run, cls=self.__class__)
            return True
        self._instance.report_run_canceled(
            run, "The code server cannot stop the run and its run worker is gone: run canceled.")
        return True


def mark_unfinished(instance: dg.DagsterInstance, run: dg.DagsterRun, step_key: str,
                    unfinished: Iterable[tuple[dg.AssetKey, str]]) -> int:
    """Report a planned event of ``run`` for each (asset, partition) it did not record.

    Dagster shows a partition as failed when its latest planned event belongs to a
    failed run that did not materialize it; runs planned with one event per asset
    (``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``) leave no such event.
    """
    count = 0
    for asset_key, partition in unfinished:
        event = DagsterEvent.build_asset_materialization_planned_event(
            job_name=run.job_name, step_key=step_key,
            asset_materialization_planned_data=AssetMaterializationPlannedData(
                asset_key, partition=partition))
        instance.report_dagster_event(event, run.run_id)
        count += 1
    return count
