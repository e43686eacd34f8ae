"""Runs generation through Dagster in-process: the CLI's path onto the same assets.

The CLI keeps the instance's partitions in step with the series (as the sensor
does), then launches one ranged run per contiguous block of the wanted series.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.core.errors import SettingsError
from seriesgen_pipeline.defs.events import SUBSET_PLANNED_EVENTS
from seriesgen_pipeline.defs.internals import storage_connections_kept
from seriesgen_pipeline.defs.partitions import sync_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import contiguous_ranges, range_tags
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.settings import Settings, run_size


@dataclass
class GenerationReport:
    """What a CLI generation did, read back from ``generation_log``."""

    run_ids: list[str]
    series: list[dict[str, object]] = field(default_factory=list)
    duration_ms: int = 0
    interrupted: bool = False  # SIGINT or SIGTERM ended the generation early
    run_failures: dict[str, str] = field(default_factory=dict)  # run id -> root cause

    @property
    def failed(self) -> list[str]:
        """Keys of the series that failed."""
        return [str(s["key"]) for s in self.series if s["status"] == "failed"]

    def totals(self) -> dict[str, int]:
        """Counters summed over every series."""
        out = {"series": len(self.series), "created": 0, "updated": 0, "deleted": 0,
               "protected": 0, "failed": len(self.failed),
               "skipped": sum(1 for s in self.series if s["status"] == "skipped")}
        if self.interrupted:
            out["interrupted"] = sum(1 for s in self.series if s["status"] == "interrupted")
        for s in self.series:
            for name in ("created", "updated", "deleted", "protected"):
                out[name] += int(s[name])  # type: ignore[call-overload]
        return out


def open_instance(settings: Settings | None = None) -> dg.DagsterInstance:
    """The instance under ``DAGSTER_HOME``, or an ephemeral one when it is unset.

    Creating the instance migrates its storage; processes starting at once on a new
    ``DAGSTER_HOME`` take turns (a file lock), and a storage problem is reported as
    the instance's, not the application database's.
    """
    home = (settings or Settings.from_env()).dagster_home
    if not home:
        return dg.DagsterInstance.ephemeral()
    if not os.path.isabs(home):  # checked before anything is created under it
        raise SettingsError(f"DAGSTER_HOME={home} must be an absolute path")
    try:
        with _home_lock(home):
            return dg.DagsterInstance.get()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SettingsError(
            f"cannot open the Dagster instance at DAGSTER_HOME={home}: {first}") from exc


@contextmanager
def _home_lock(home: str) -> Iterator[None]:
    """Serialize instance set-up and partition registration among local processes."""
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / ".seriesgen.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_generation(engine: sa.Engine, settings: Settings, *, keys: Sequence[str] | None,
                   now: datetime, instance: dg.DagsterInstance | None = None
                   ) -> GenerationReport:
    """Materialize the series ``keys`` (all when None) as of ``now`` through Dagster."""
    from seriesgen_pipeline.definitions import build_definitions

    # One planned event per asset per run instead of one per series (defs/events.py).
    os.environ.setdefault(SUBSET_PLANNED_EVENTS, "1")
    started = time.perf_counter()
    with engine.connect() as conn:
        all_keys = repo.series_keys(conn)
    instance = instance or open_instance(settings)
    wanted = set(all_keys) if keys is None else set(keys)
    resource = SeriesgenResource(
        database_url=settings.database_url, environment=settings.environment,
        enable_generation=settings.enable_generation,
        notify_recipient=settings.notify_recipient, now=format_instant(now),
        retention_days=settings.retention_days,
    )
    job = build_definitions(resource=resource).resolve_job_def("series_generation_job")
    with storage_connections_kept(instance):
        home = settings.dagster_home
        if home and not instance.is_ephemeral:
            with _home_lock(home):
                order = sync_partitions(instance, all_keys)
        else:
            order = sync_partitions(instance, all_keys)
        ranges = contiguous_ranges(order, wanted, max_size=run_size(settings.run_chunk,
                                                                    len(order)))
        run_ids, failures, interrupted_run = _execute_runs(job, instance, ranges)
    report = GenerationReport(run_ids=run_ids, interrupted=interrupted_run is not None)
    # The runs may have outlived connections this process pooled before them (a server
    # restart, a terminated backend): the read below is retried on fresh ones.
    for attempt in range(3):
        engine.dispose()
        try:
            with engine.connect() as conn:
                rows = repo.generation_log_rows(conn, run_ids=run_ids)
                remaining = set(repo.series_keys(conn))
            break
        except sa.exc.OperationalError:
            if attempt == 2:
                raise
            time.sleep(0.5)
    report.series = [{
        "key": r["series_key"], "status": r["status"], "created": r["created"],
        "updated": r["updated"], "deleted": r["deleted"], "protected": r["protected"],
        "error": r["error"], "run_id": r["run_id"],
    } for r in rows]
    logged = {r["series_key"] for r in rows}
    committed: set[str] = set()
    written: dict[str, tuple[int, int]] = {}
    if interrupted_run:
        with engine.connect() as conn:
            committed = repo.series_generated_as_of(conn, keys=sorted(wanted - logged), now=now)
            written = repo.rows_written_by_run(conn, run_id=interrupted_run)
    for key in sorted(wanted - logged):
        if interrupted_run:
            done = key in committed
            created, updated = written.get(key, (0, 0))
            report.series.append({
                "key": key, "status": "committed" if done else "interrupted",
                "created": created, "updated": updated, "deleted": 0, "protected": 0,
                "run_id": interrupted_run,
                "error": ("every session of it was committed before the interruption; "
                          "its conflicts are recorded by the next run" if done else
                          "interrupted before it was complete: what was committed stays, "
                          "the next run completes it"),
            })
        elif key not in remaining:
            # Deleted or retired by another writer after this run listed it: not a failure.
            report.series.append({
                "key": key, "status": "skipped", "created": 0, "updated": 0, "deleted": 0,
                "protected": 0, "run_id": run_ids[-1] if run_ids else None,
                "error": "the series no longer exists (deleted or retired meanwhile)",
            })
        else:
            report.run_failures = failures  # the run itself failed, not (only) its series
            report.series.append({
                "key": key, "status": "failed", "created": 0, "updated": 0, "deleted": 0,
                "protected": 0, "run_id": run_ids[-1] if run_ids else None,
                "error": "the run failed before this series was generated ("
                         + "; ".join(failures.values())[:500]
                         + "); see the run's logs in the Dagster UI and rerun it",
            })
    retired = [k for k in all_keys if k not in remaining]
    if retired:
        sync_partitions(instance, [k for k in all_keys if k in remaining])
    report.duration_ms = round((time.perf_counter() - started) * 1000)
    return report


def _run_failure(result: dg.ExecuteInProcessResult) -> str:
    """What failed the run: its step failure's root cause, in one line.

    Dagster wraps the error of the step's code (``DagsterExecutionStepExecutionError:
    Error occurred while executing op …``); the cause chain holds the real one (the
    database is read-only, a connection was refused).
    """
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            lines = error.message.strip().splitlines()
            return lines[0] if lines else (error.cls_name or "step failed")
    for event in result.all_events:
        if event.is_run_failure and event.message:
            return event.message.strip().splitlines()[0]
    return "run failed"


def _execute_runs(job: dg.JobDefinition, instance: dg.DagsterInstance,
                  ranges: Iterable[tuple[str, str]]
                  ) -> tuple[list[str], dict[str, str], str | None]:
    """Execute one run per partition range, in order, until one is interrupted.

    Returns the run ids, the root cause of each run that failed as a run, and the
    run that was interrupted, if one was.
    """
    run_ids: list[str] = []
    failures: dict[str, str] = {}
    for first, last in ranges:
        run_id = str(uuid.uuid4())
        run_ids.append(run_id)
        try:
            result = job.execute_in_process(
                instance=instance, run_id=run_id,
                tags={**range_tags(first, last), "seriesgen/launched_by": "cli"},
                # Per-series results are reported from generation_log; a failure of the
                # run itself is reported below, without Dagster's stack trace on the console.
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                raise_on_error=False,
            )
        except KeyboardInterrupt:  # outside the step, where Dagster does not catch it
            return run_ids, failures, run_id
        if not result.success:
            if _interrupted(result):
                return run_ids, failures, run_id
            failures[result.run_id] = _run_failure(result)
    return run_ids, failures, None


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """True when the run ended because the process was interrupted (SIGINT, SIGTERM)."""
    if result.dagster_run.status == dg.DagsterRunStatus.CANCELED:
        return True
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error is not None:
                if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                    return True
                error = error.cause
    return False
