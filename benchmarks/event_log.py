"""Figures read back from the Dagster instance's event log of a benchmark's runs.

Every figure comes from structured records, never from printed text:

* a run's **step span** is ``STEP_START`` -> ``STEP_SUCCESS`` / ``STEP_FAILURE``;
* its **engine time** is the ``duration_ms`` the asset measures itself (``perf_counter``
  from its first line through snapshots, generation, retirement and the generation
  log) and records in the run's ``generation_report`` observation; should the run hold
  none, the span from ``STEP_START`` to the first recorded materialization or check
  event stands in for it;
* the lifecycle instants of a run (``RUN_DEQUEUED``, ``RUN_STARTING``, ``RUN_START``,
  the first ``STEP_START``) for the production path's queue and launch times.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import dagster as dg

from seriesgen_pipeline.defs.assets import REPORT

_T = dg.DagsterEventType
_RECORDED = {_T.ASSET_MATERIALIZATION, _T.ASSET_CHECK_EVALUATION, _T.STEP_OUTPUT,
             _T.ASSET_MATERIALIZATION_PLANNED}
_STEP_ENDS = {_T.STEP_SUCCESS, _T.STEP_FAILURE}
_LIFECYCLE = {_T.RUN_DEQUEUED, _T.RUN_STARTING, _T.RUN_START, _T.STEP_START}


def reported_duration_s(records: list[dg.EventLogEntry]) -> float | None:
    """The asset's own ``duration_ms`` (seconds) from the run's ``generation_report``."""
    for record in reversed(records):
        observation = record.asset_observation
        if observation is not None and observation.asset_key == REPORT:
            duration = observation.metadata.get("duration_ms")
            if duration is not None and isinstance(duration.value, int):
                return duration.value / 1000
    return None


def dagster_split(instance: dg.DagsterInstance, run_ids: list[str],
                  wall: float) -> dict[str, Any]:
    """Split ``wall`` into engine, in-step Dagster and launch time from the runs' event logs.

    Per run, the step span less the engine time is Dagster work in the step (partition
    status reads, materialization and check events); ``wall`` less the step spans is
    the launching (partition sync, run creation, run start and end). The JSON keeps, per
    run, the span up to the first recorded event as a cross-check of the engine time.
    """
    counted = Counter[str]()
    step_s = engine_s = 0.0
    per_run = []
    sources = set()
    for run_id in run_ids:
        records = sorted(instance.all_logs(run_id), key=lambda r: r.timestamp)
        kinds = [r.dagster_event.event_type if r.dagster_event else None for r in records]
        for k in kinds:
            counted[k.value if k is not None else "LOG"] += 1
        starts = [r.timestamp for r, k in zip(records, kinds, strict=True) if k == _T.STEP_START]
        ends = [r.timestamp for r, k in zip(records, kinds, strict=True) if k in _STEP_ENDS]
        if not starts or not ends:
            per_run.append({"run_id": run_id, "step_s": 0.0, "engine_s": 0.0})
            continue
        lo, hi = min(starts), max(ends)
        first_event = min((r.timestamp for r, k in zip(records, kinds, strict=True)
                           if k in _RECORDED and lo <= r.timestamp <= hi), default=hi)
        engine = reported_duration_s(records)
        if engine is not None:
            sources.add("asset duration_ms")
        else:
            engine = first_event - lo
            sources.add("step start to first recorded event")
        step_s += hi - lo
        engine_s += engine
        per_run.append({"run_id": run_id, "step_s": round(hi - lo, 3),
                        "engine_s": round(engine, 3),
                        "until_first_event_s": round(first_event - lo, 3)})
    return {
        "engine_s": engine_s, "dagster_step_s": max(0.0, step_s - engine_s),
        "launch_s": max(0.0, wall - step_s), "step_s": step_s,
        "event_counts": dict(sorted(counted.items())), "dagster_events": sum(counted.values()),
        "engine_source": " + ".join(sorted(sources)), "per_run": per_run,
    }


def run_events(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """First timestamp of the lifecycle events of a run that the figures use."""
    out: dict[str, float] = {}
    for record in instance.all_logs(run_id, of_type=_LIFECYCLE):
        if record.dagster_event is not None:
            out.setdefault(record.dagster_event.event_type.name, record.timestamp)
    return out
