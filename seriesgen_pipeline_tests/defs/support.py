"""Helpers shared by the Dagster tests: databases, partition status, run request coverage,
and a real ``dagster-daemon`` with the processes it starts."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.runs import RANGE_END, RANGE_START
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database

PARTITIONS = "class_series"
NOW = "2026-03-02T12:00:00Z"


def migrated_engine(url: str) -> sa.Engine:
    """An engine on ``url`` with the application schema at head."""
    engine = create_db_engine(url)
    upgrade_database(engine)
    return engine


@contextlib.contextmanager
def postgres_stack() -> Iterator[tuple[sa.Engine, str, str, dg.DagsterInstance]]:
    """A migrated PostgreSQL application database and a test instance on PostgreSQL
    storage of its own: ``(engine, its URL, the storage's database name, instance)``.
    Both databases are dropped after."""
    created: list[str] = []
    try:
        url = create_postgres_database()
        created.append(url)
        storage = create_postgres_database(prefix="sg_dagster")
        created.append(storage)
        storage_url = make_url(storage).set(drivername="postgresql+psycopg2")
        overrides = {"storage": {"postgres": {
            "postgres_url": storage_url.render_as_string(hide_password=False)}}}
        engine = migrated_engine(url)
        try:
            with dg.instance_for_test(overrides=overrides) as instance:
                assert type(instance.run_storage).__name__ == "PostgresRunStorage"
                assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
                yield engine, url, str(storage_url.database), instance
        finally:
            engine.dispose()
    finally:
        for made in created:
            drop_postgres_database(made)


def partition_status(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                     keys: Sequence[str]) -> dict[str, str | None]:
    """``key -> "MATERIALIZED" | "FAILED" | "IN_PROGRESS" | None``, as the UI shows it."""
    found = instance.get_status_by_partition(asset_key, list(keys), class_series_partitions)
    assert found is not None
    return {key: (status.value if status else None) for key, status in found.items()}


def keys_with(status: dict[str, str | None], value: str | None) -> set[str]:
    """The keys whose status is ``value``."""
    return {key for key, found in status.items() if found == value}


def request_keys(order: Sequence[str], request: dg.RunRequest) -> list[str]:
    """The partition keys a run request covers, in partition order.

    A request is either a plain partition run (``partition_key``) or a ranged run
    (the range start/end tags), resolved against the partition ``order``.
    """
    if request.partition_key is not None:
        assert RANGE_START not in request.tags and RANGE_END not in request.tags
        return [request.partition_key]
    first, last = request.tags[RANGE_START], request.tags[RANGE_END]
    start, end = order.index(first), order.index(last)
    assert start <= end, f"range {first}..{last} runs backwards in {order}"
    return list(order[start:end + 1])


def covered(order: Sequence[str], requests: Iterable[dg.RunRequest]) -> list[list[str]]:
    """The keys of each request, in request order."""
    return [request_keys(order, request) for request in requests]


def apply_partition_requests(instance: dg.DagsterInstance,
                             requests: Iterable[object]) -> None:
    """Apply a sensor's dynamic partition requests to the instance, as the daemon does."""
    for request in requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name,
                                            list(request.partition_keys))
        elif isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:  # pragma: no cover - a new request type would need handling here
            raise AssertionError(f"unexpected request {request!r}")


# ------------------------------------------------------------------ the real daemon

PROJECT = Path(__file__).resolve().parents[2]
STOP_WAIT_S = 20
_WORKER_STARTED = re.compile(r"Started process for run \(pid: (\d+)\)")


def instance_home(path: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """A ``DAGSTER_HOME`` holding the project's ``dagster.yaml``, with ``overrides`` merged in
    (a mapping replaces a mapping key by key; anything else replaces the value)."""
    path.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())

    def merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(config, overrides or {})
    (path / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def daemon_env(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a daemon (and so of its code server and run workers)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERIESGEN_", "DAGSTER_")) and k != "ENABLE_SERIES_GENERATION"}
    env.update(DAGSTER_HOME=str(home), SERIESGEN_DATABASE_URL=database_url, SERIESGEN_NOW=NOW,
               SERIESGEN_ENV="development", PYTHONUNBUFFERED="1", **extra)
    return env


def _reset_sigint() -> None:
    # A background shell leaves SIGINT ignored, and the daemon would inherit that:
    # give it the default back, so that Python installs its KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Daemon:
    """``dagster-daemon run -w workspace.yaml`` in its own session, stopped for sure."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run",
                 "-w", "workspace.yaml"],
                cwd=PROJECT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_reset_sigint,
            )

    def stop(self) -> None:
        """SIGINT to the daemon's process group, a bounded wait, then SIGKILL to the
        whole session (code servers and run workers included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_WAIT_S)
        for pid in session_members(self.popen.pid) | {self.popen.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_WAIT_S)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float,
                 every: float = 0.5) -> Any:
        """Poll ``probe`` until it returns something truthy; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"daemon log tail:\n{self.tail()}")
            time.sleep(every)


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def session_members(sid: int) -> set[int]:
    """Live processes of session ``sid`` (a daemon started with a new session)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
                found.add(int(entry))
    return found


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The PID of the run's worker, from the engine event its code server's child logs."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        found = _WORKER_STARTED.search(record.event_log_entry.message or "")
        if found:
            return int(found.group(1))
    return None


def run_status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def evaluate_failure_sensor(instance: dg.DagsterInstance, run_id: str, url: str) -> None:
    """Evaluate ``failed_run_partitions`` for the failed run ``run_id``, as the daemon
    would, with the application database at ``url``."""
    from seriesgen_pipeline.defs.recovery import failed_run_partitions
    from seriesgen_pipeline.defs.resources import SeriesgenResource

    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    event = failure.event_log_entry.dagster_event
    assert event is not None
    with dg.build_run_status_sensor_context(
            sensor_name="failed_run_partitions", dagster_event=event, dagster_instance=instance,
            dagster_run=run, resources={"seriesgen": SeriesgenResource(database_url=url)},
    ) as context:
        failed_run_partitions(context.for_run_failure())
