"""What a production-path night is measured by: the instance's ticks, runs and events.

``Watch`` polls the instance (ticks of the sensor and the schedule, run records,
partitions) and gives up when the daemon exits or a step outlasts its time;
``night_figures`` turns a night's run records, their event logs and their
``generation_log`` rows into the step's figures.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from benchmarks.common import BenchmarkError
from benchmarks.daemon_process import Daemon
from benchmarks.event_log import dagster_split, run_events
from seriesgen_pipeline.persistence import repository as repo

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
POLL_S = 0.25


@dataclass
class Watch:
    """Reads the instance: ticks, runs, partitions."""

    instance: Any
    timeout: float
    daemon: Daemon | None = None
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def check_daemon(self, what: str) -> None:
        """Fail when the daemon has exited, with the end of its log."""
        if self.daemon is not None and not self.daemon.alive():
            raise BenchmarkError(f"dagster-daemon exited ({self.daemon.proc.returncode}) while "
                                 f"waiting for {what}:\n{self.daemon.tail()}")

    def wait(self, what: str, probe: Any, *, timeout: float | None = None) -> Any:
        """Poll ``probe`` until it returns something; fail on timeout or a dead daemon."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            found = probe()
            if found:
                return found
            self.check_daemon(what)
            if time.monotonic() > deadline:
                tail = self.daemon.tail() if self.daemon else ""
                raise BenchmarkError(f"timed out waiting for {what}\n{tail}")
            time.sleep(POLL_S)

    def ticks(self, name: str, after: float) -> list[Any]:
        """Ticks of the sensor or schedule ``name`` that started after ``after``, oldest first."""
        if name not in self.origins:
            for state in self.instance.all_instigator_state():
                if state.instigator_name == name:
                    self.origins[name] = (state.instigator_origin_id, state.selector_id)
        if name not in self.origins:
            return []
        origin, selector = self.origins[name]
        ticks = self.instance.get_ticks(origin, selector, after=after)
        return sorted(ticks, key=lambda t: t.timestamp)

    def requesting_tick(self, name: str, after: float) -> Any | None:
        """The first finished tick of ``name`` after ``after`` that requested runs."""
        for tick in self.ticks(name, after):
            if tick.status.value != "STARTED" and tick.run_ids:
                return tick
            if tick.status.value == "FAILURE":
                raise BenchmarkError(f"{name} tick failed: {tick.error}")
        return None

    def runs_since(self, after: float) -> list[Any]:
        """Run records created after ``after``."""
        since = datetime.fromtimestamp(after, UTC)
        return list(self.instance.get_run_records(filters=dg.RunsFilter(created_after=since)))

    def night_done(self, tick: Any, after: float) -> list[Any] | None:
        """The step's run records once every run (the tick's and retries) has ended."""
        records = self.runs_since(after)
        ids = {r.dagster_run.run_id for r in records}
        if not set(tick.run_ids) <= ids:
            return None
        if any(r.dagster_run.status.value not in TERMINAL for r in records):
            return None
        retrying = [r for r in records if r.dagster_run.status.value == "FAILURE"
                    and r.dagster_run.tags.get("dagster/will_retry") == "true"]
        parents = {r.dagster_run.tags.get("dagster/parent_run_id") for r in records}
        if any(r.dagster_run.run_id not in parents for r in retrying):
            return None
        return records


def peak_concurrency(spans: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant."""
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = current = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


def log_totals(engine: sa.Engine, run_ids: list[str]) -> dict[str, Any]:
    """Sums of the runs' ``generation_log`` rows."""
    t = repo.log_t
    if not run_ids:
        return {"series": 0, "created": 0, "updated": 0, "deleted": 0, "protected": 0,
                "failed": 0, "log_statuses": {}, "failed_examples": [], "keys": []}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.series_key, t.c.status, t.c.created, t.c.updated,
                                      t.c.deleted, t.c.protected, t.c.error)
                            .where(t.c.run_id.in_(run_ids))).all()
    statuses = Counter(r.status for r in rows)
    return {
        "series": len(rows), "created": sum(r.created for r in rows),
        "updated": sum(r.updated for r in rows), "deleted": sum(r.deleted for r in rows),
        "protected": sum(r.protected for r in rows), "failed": statuses.get("failed", 0),
        "log_statuses": dict(statuses),
        "failed_examples": [(r.series_key, r.error) for r in rows if r.status == "failed"][:5],
        "keys": sorted({r.series_key for r in rows}),
    }


def night_figures(watch: Watch, engine: sa.Engine, tick: Any,
                  records: list[Any]) -> dict[str, Any]:
    """Everything measured about one night's runs."""
    instance = watch.instance
    runs = sorted(records, key=lambda r: r.create_timestamp.timestamp())
    run_ids = [r.dagster_run.run_id for r in runs]
    per_run = []
    spans = []
    for record in runs:
        run = record.dagster_run
        events = run_events(instance, run.run_id)
        created = record.create_timestamp.timestamp()
        started = record.start_time or events.get("RUN_START")
        ended = record.end_time
        dequeued = events.get("RUN_STARTING") or events.get("RUN_DEQUEUED")
        first_step = events.get("STEP_START")
        if started is not None and ended is not None:
            spans.append((started, ended))
        per_run.append({
            "run_id": run.run_id, "status": run.status.value,
            "origin": (f"schedule {run.tags['dagster/schedule_name']}"
                       if "dagster/schedule_name" in run.tags else
                       f"sensor {run.tags['dagster/sensor_name']}"
                       if "dagster/sensor_name" in run.tags else
                       "retry" if "dagster/parent_run_id" in run.tags else "other"),
            "range": run.tags.get("seriesgen/partition_range"),
            "created": created, "dequeued": dequeued, "started": started,
            "first_step": first_step, "ended": ended,
            "queue_s": started - created if started else None,
            "spawn_s": started - dequeued if started and dequeued else None,
            "launch_s": first_step - started if first_step and started else None,
            "run_s": ended - started if ended and started else None,
        })
    first_created = runs[0].create_timestamp.timestamp()
    last_end = max(r.end_time or 0.0 for r in runs)
    wall = last_end - first_created
    split = dagster_split(instance, run_ids, wall)
    for entry, split_run in zip(per_run, split["per_run"], strict=True):
        entry["engine_s"], entry["step_s"] = split_run["engine_s"], split_run["step_s"]
    totals = log_totals(engine, run_ids)

    def stat(key: str) -> dict[str, float | None]:
        values = [r[key] for r in per_run if r[key] is not None]
        if not values:
            return {"mean": None, "max": None}
        return {"mean": sum(values) / len(values), "max": max(values)}

    return {
        "tick_timestamp": tick.timestamp, "tick_end": tick.end_timestamp,
        "tick_s": (tick.end_timestamp - tick.timestamp) if tick.end_timestamp else None,
        "tick_to_done_s": last_end - tick.timestamp, "runs_wall_s": wall,
        "runs": len(runs), "origins": dict(Counter(r["origin"] for r in per_run)),
        "statuses": dict(Counter(r["status"] for r in per_run)),
        "peak_concurrency": peak_concurrency(spans),
        "queue_s": stat("queue_s"), "spawn_s": stat("spawn_s"), "launch_s": stat("launch_s"),
        "run_s": stat("run_s"),
        "engine_s": split["engine_s"], "step_s": split["step_s"],
        "engine_source": split["engine_source"], "dagster_events": split["dagster_events"],
        **{k: v for k, v in totals.items() if k != "keys"},
        "series_keys": totals["keys"], "per_run": per_run,
    }

