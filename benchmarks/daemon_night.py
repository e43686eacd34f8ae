"""Production-path benchmark of seriesgen: nights as the real ``dagster-daemon`` runs them.

Usage::

    .venv/bin/python benchmarks/daemon_night.py                       # N=10,000, D=365
    .venv/bin/python benchmarks/daemon_night.py --series 300 --horizon-days 60 \\
        --run-chunk 50 --concurrency 1,2 [--json out.json] [--keep]

``benchmarks/nightly.py`` measures the engine through in-process Dagster runs.
This script measures what operators get (docs/deployment.md): the
``class_series_changes`` sensor and the ``nightly_generation`` schedule of a
real ``dagster-daemon run`` request the runs, the run queue of the deployment's
``deploy/dagster.yaml`` (PostgreSQL instance storage, run monitoring, the
``seriesgen/generation`` tag limit) dequeues them, and the launcher starts a run
worker per run. Nothing is called in-process except the measuring.

Set-up (untimed):

* Two disposable PostgreSQL databases on ``--postgres-url``'s server, one for the
  application (``SERIESGEN_DATABASE_URL``), one for Dagster's instance storage
  (``DAGSTER_PG_URL``); both dropped at the end unless ``--keep``. Existing empty
  ones can be given instead (``--database-url``, ``--dagster-postgres-url``);
  those are never dropped.
* The application database is migrated and seeded with ``nightly.py``'s
  synthetic data (same ``--seed``, same series).
* A fresh temporary ``DAGSTER_HOME`` whose ``dagster.yaml`` is
  ``deploy/dagster.yaml`` as it is in the tree at start, with only the
  ``seriesgen/generation`` limit set to ``--concurrency`` (and
  ``max_concurrent_runs`` raised to it, should it be lower) and, with
  ``--dequeue-interval``, the run queue's ``dequeue_interval_seconds``.
* The daemon runs with ``SERIESGEN_ENV=production``,
  ``ENABLE_SERIES_GENERATION=true`` and the project's ``workspace.yaml`` (the
  code server is the daemon's own subprocess, as with ``make serve``); it leads
  its own process group and is stopped with SIGINT, then SIGKILL after
  ``--stop-wait`` seconds, always - on failure and on Ctrl-C too.

``SERIESGEN_NOW`` is fixed per night so that nights are reproducible; as it is
read when the code server starts, the daemon is restarted between nights (the
restart is not timed). The steps:

1. **register** - daemon with ``now`` = ``--now``: the sensor's first tick adds
   the N partitions. Figure: tick start -> every partition registered (polled).
2. **cold** - the same tick requests a run per range of ``SERIESGEN_RUN_CHUNK``
   series (the deployment's default, 2,500, unless ``--run-chunk``); the step
   ends when they have all finished. Then, untimed: the rows are checked
   against an expansion of the stored snapshots by the core, ~10% of the future
   sessions are marked protected by raw SQL as in ``nightly.py``, ``ANALYZE``.
3. **warm** - daemon with ``now`` + 1 day and ``SERIESGEN_SCHEDULE_CRON`` set to
   one minute of one day (``M H D MON *``), the first minute boundary at least
   ``--schedule-lead`` seconds after the daemon starts: the daemon's scheduler
   ticks ``nightly_generation`` at that minute, exactly once. (A cron of
   ``* * * * *`` would tick again during a long night and queue a second night
   behind the first.)
4. **no-op** - the same ``now`` again, the schedule ticked the same way.
5. **edit** - with the no-op's daemon still running, 10% of the series edited
   by raw SQL (``nightly.py``'s edits: a third each start time, room, rule);
   the sensor's next tick (within its 30 s interval) requests runs for the
   edited series. Measured from that tick. The sensor covers the changed
   partitions with as few ranges of at most ``--run-chunk`` partitions as it can
   (unchanged series between them included): ``--edit block`` (the default) edits
   consecutive keys; ``--edit scattered`` edits ``nightly.py``'s random sample,
   spread over every range (about N / ``--run-chunk`` runs).

Outside the warm and no-op ticks the schedule's cron names a minute that has
passed (one of yesterday during register and cold, the no-op's during edit), so
it does not fire again for a year: only each step's own trigger requests runs.
Every run created during a step is counted in it (retries too), with its origin.

The figures (per step; times from the instance's run records, event logs and
tick records, not from this script's clock):

* **tick -> done s** - the tick's start (the tick record) to the last run's end;
  the targets apply to it. **runs wall s** - first run created -> last run
  finished.
* **queue s** - per run, created -> started (``RUN_START``: the worker is up);
  mean and max. **spawn s** - the part of it after the run was dequeued
  (``RUN_STARTING`` -> ``RUN_START``: the launcher starting the run worker
  process). **launch s** - per run, ``RUN_START`` -> the first ``STEP_START``.
* **engine s** - the asset's own ``duration_ms`` (its ``run totals`` line),
  summed over the runs; **step s** - ``STEP_START`` -> ``STEP_SUCCESS`` or
  ``STEP_FAILURE``, summed (``nightly.py``'s ``dagster_split``).
* **peak** - most runs between ``RUN_START`` and their end at one instant.
* **created / updated / deleted / protected** - sums of the step's runs'
  ``generation_log`` rows; **sessions** - ``class_sessions`` rows after the step.

Targets (N = 10,000, D = 365, a 2-core machine): register <= 20 s, cold <= 240 s,
warm <= 60 s, no-op <= 45 s, tick -> done. They are printed met or missed at any
scale, but only apply at that one, and never change the exit status.

Exit status: 0 when every correctness check passes; 1 when one fails (a run not
successful, a series failed, ``class_sessions`` not equal to the running total
of ``generation_log``, cold rows not equal to the core's expansion of the
snapshots, the no-op writing a row, ...) or a step times out; 2 for bad usage or a
refused database; 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from nightly import (  # noqa: E402
    DEFAULT_NOW,
    DEFAULT_SEED,
    TARGET_SCALE,
    _edited_rule,
    _table,
    analyze,
    autovacuum_setting,
    code_version,
    count_rows,
    dagster_split,
    edit_series,
    mark_protected,
    masked_command,
    prepare_database,
    seed_data,
)

from seriesgen_pipeline.core.clock import format_instant, parse_instant  # noqa: E402
from seriesgen_pipeline.persistence import repository as repo  # noqa: E402
from seriesgen_pipeline.persistence.db import (  # noqa: E402
    create_db_engine,
    normalize_url,
    safe_url,
)

BIN = Path(sys.executable).parent
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"
WORKSPACE = ROOT / "workspace.yaml"
GENERATION_TAG = "seriesgen/generation"
SENSOR = "class_series_changes"
SCHEDULE = "nightly_generation"
PARTITIONS = "class_series"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
STEPS = ("register", "cold", "warm", "noop", "edit")
LABELS = {"register": "register (sensor)", "cold": "cold (sensor)",
          "warm": "warm +1 day (schedule)", "noop": "no-op (schedule)",
          "edit": "edit 10% (sensor)"}
TARGETS = {"register": 20.0, "cold": 240.0, "warm": 60.0, "noop": 45.0}
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
POLL_S = 0.25


class BenchmarkError(RuntimeError):
    """A step could not be measured (timeout, daemon exited, ...)."""


# ====================================================================== arguments

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=TARGET_SCALE[0], help="N (default 10000)")
    p.add_argument("--horizon-days", type=int, default=TARGET_SCALE[1], help="D (default 365)")
    p.add_argument("--concurrency", default=None, metavar="K[,K...]",
                   help="the seriesgen/generation run limit; several values (e.g. 1,2) run "
                        "the whole benchmark once per value on fresh databases and compare "
                        "(default: deploy/dagster.yaml's limit)")
    p.add_argument("--dequeue-interval", type=int, default=None, metavar="S",
                   help="the run queue's dequeue_interval_seconds (default: the file's, "
                        "else Dagster's 5)")
    p.add_argument("--run-chunk", type=int, default=None,
                   help="SERIESGEN_RUN_CHUNK: series per run of the sensor and the schedule "
                        "(default: the deployment's, 2500)")
    p.add_argument("--postgres-url", default=None,
                   help="server where the disposable databases are made (default "
                        f"SERIESGEN_TEST_POSTGRES_URL, else {DEFAULT_SERVER})")
    p.add_argument("--database-url",
                   help="an existing empty PostgreSQL application database instead")
    p.add_argument("--dagster-postgres-url",
                   help="an existing empty PostgreSQL database for the instance instead")
    p.add_argument("--reset", action="store_true",
                   help="with --database-url: drop its tables and recreate the schema first")
    p.add_argument("--keep", action="store_true",
                   help="keep the databases made here and the temporary DAGSTER_HOME "
                        "(daemon logs included)")
    p.add_argument("--now", default=DEFAULT_NOW, help="'now' of the cold night")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--json", dest="json_out", help="write every figure to this file")
    p.add_argument("--step-timeout", type=float, default=1800.0,
                   help="seconds a step may take before the benchmark gives up")
    p.add_argument("--schedule-lead", type=float, default=None,
                   help="seconds between the daemon's start and the schedule's minute at "
                        "the least (default: 1.5 x the first daemon's start-up, >= 10)")
    p.add_argument("--edit", choices=("block", "scattered"), default="block",
                   help="which 10%% of the series the edit step edits: a block of consecutive "
                        "keys (the default), or a random sample as nightly.py edits (spread "
                        "over about N / --run-chunk runs)")
    p.add_argument("--stop-wait", type=float, default=20.0,
                   help="seconds after SIGINT before the daemon's group gets SIGKILL")
    p.add_argument("--workdir-parent", metavar="DIR",
                   help="where the temporary DAGSTER_HOME is made (default: the system's)")
    args = p.parse_args(argv)
    try:
        values = [int(v) for v in (args.concurrency or "").split(",") if v.strip()]
    except ValueError:
        p.error("--concurrency takes integers, e.g. 2 or 1,2")
    if any(v < 1 for v in values):
        p.error("--concurrency values must be at least 1")
    args.concurrency_values = values or [None]
    if len(args.concurrency_values) > 1 and (args.database_url or args.dagster_postgres_url):
        p.error("several --concurrency values need databases made here: "
                "leave out --database-url and --dagster-postgres-url")
    if args.series < 10:
        p.error("--series must be at least 10")
    if not 1 <= args.horizon_days <= 730:
        p.error("--horizon-days must be 1..730")
    if args.dequeue_interval is not None and args.dequeue_interval < 1:
        p.error("--dequeue-interval must be at least 1")
    if args.run_chunk is not None and args.run_chunk < 1:
        p.error("--run-chunk must be at least 1")
    for name in ("database_url", "dagster_postgres_url"):
        value = getattr(args, name)
        if value and make_url(normalize_url(value)).get_backend_name() != "postgresql":
            p.error(f"--{name.replace('_', '-')} must be a PostgreSQL URL")
    args.postgres_url = (args.postgres_url or os.environ.get("SERIESGEN_TEST_POSTGRES_URL")
                         or DEFAULT_SERVER)
    return args


# ====================================================================== databases

def _admin(server_url: str) -> sa.Engine:
    url = make_url(normalize_url(server_url)).set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(server_url: str, prefix: str) -> str:
    """A new empty database on the server; its URL (``postgresql://``, password kept)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin(server_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    url = make_url(normalize_url(server_url)).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database`` (its sessions terminated)."""
    parsed = make_url(normalize_url(url))
    admin = _admin(url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        admin.dispose()


def dagster_url(url: str) -> str:
    """The same database for dagster-postgres (its own driver, psycopg2)."""
    return make_url(normalize_url(url)).set(drivername="postgresql+psycopg2").render_as_string(
        hide_password=False)


# ====================================================================== instance file

def instance_yaml(concurrency: int | None,
                  dequeue_interval: int | None = None) -> tuple[str, dict[str, Any]]:
    """deploy/dagster.yaml with the generation limit (and the run queue's dequeue
    interval) set; the text and what it sets."""
    text = DEPLOY_YAML.read_text()
    config = yaml.safe_load(text)
    runs = config.setdefault("concurrency", {}).setdefault("runs", {})
    limits = runs.setdefault("tag_concurrency_limits", [])
    entry = next((e for e in limits if e.get("key") == GENERATION_TAG), None)
    if concurrency is not None:
        if entry is None:
            entry = {"key": GENERATION_TAG, "limit": concurrency}
            limits.append(entry)
        entry["limit"] = concurrency
        if runs.get("max_concurrent_runs", -1) not in (-1, None) and \
                runs["max_concurrent_runs"] < concurrency:
            runs["max_concurrent_runs"] = concurrency
    if dequeue_interval is not None:
        if "run_coordinator" in config:
            config["run_coordinator"].setdefault("config", {})[
                "dequeue_interval_seconds"] = dequeue_interval
        else:
            config.setdefault("run_queue", {})["dequeue_interval_seconds"] = dequeue_interval
    if concurrency is not None or dequeue_interval is not None:
        text = ("# deploy/dagster.yaml with the run queue settings of "
                "benchmarks/daemon_night.py\n" + yaml.safe_dump(config, sort_keys=False))
    coordinator = (config.get("run_coordinator", {}).get("config")
                   or config.get("run_queue") or {})
    monitoring = config.get("run_monitoring", {})
    launcher = config.get("run_launcher", {})
    return text, {
        "generation_limit": entry["limit"] if entry else None,
        "max_concurrent_runs": runs.get("max_concurrent_runs"),
        "dequeue_interval_seconds": coordinator.get("dequeue_interval_seconds", 5),
        "run_monitoring": bool(monitoring.get("enabled")),
        "monitoring_poll_seconds": monitoring.get("poll_interval_seconds"),
        "run_launcher": (f"{launcher.get('module')}.{launcher.get('class')}" if launcher
                         else "DefaultRunLauncher"),
        "run_retries": bool(config.get("run_retries", {}).get("enabled")),
        "storage": next(iter(config.get("storage", {"sqlite": None}))),
    }


# ====================================================================== daemon

def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - the id was reused by someone else
        return False
    return True


@dataclass
class Daemon:
    """A ``dagster-daemon run`` leading its own process group."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # time.time()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


def start_daemon(env: dict[str, str], log: Path) -> Daemon:
    with log.open("ab") as out:
        proc = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_default_sigint)
    return Daemon(proc=proc, log=log, started=time.time())


def stop_daemon(daemon: Daemon, wait_s: float) -> float:
    """SIGINT to the daemon's group, a bounded wait, SIGKILL to what is left; seconds taken."""
    started = time.monotonic()
    pgid = daemon.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGINT)
    deadline = started + wait_s
    while time.monotonic() < deadline and _group_alive(pgid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(timeout=0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # code server and run workers, if any are left
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.proc.wait(timeout=wait_s)
    return time.monotonic() - started


def one_shot_cron(at: datetime) -> str:
    """A cron that fires at ``at``'s minute (UTC) and then not for a year."""
    return f"{at.minute} {at.hour} {at.day} {at.month} *"


def next_minute(after: float) -> datetime:
    """The first whole minute at or after the Unix time ``after``."""
    moment = datetime.fromtimestamp(after, UTC)
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


# ====================================================================== measuring

@dataclass
class Watch:
    """Reads the instance: ticks, runs, partitions."""

    instance: Any
    timeout: float
    daemon: Daemon | None = None
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def check_daemon(self, what: str) -> None:
        if self.daemon is not None and not self.daemon.alive():
            raise BenchmarkError(f"dagster-daemon exited ({self.daemon.proc.returncode}) while "
                                 f"waiting for {what}:\n{self.daemon.tail()}")

    def wait(self, what: str, probe: Any, *, timeout: float | None = None) -> Any:
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
        import dagster as dg

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


def run_events(instance: Any, run_id: str) -> dict[str, float]:
    """First timestamp of the lifecycle events of a run that the figures use."""
    import dagster as dg

    t = dg.DagsterEventType
    wanted = {t.RUN_DEQUEUED, t.RUN_STARTING, t.RUN_START, t.STEP_START}
    out: dict[str, float] = {}
    for record in instance.all_logs(run_id, of_type=wanted):
        out.setdefault(record.dagster_event.event_type.name, record.timestamp)
    return out


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


def expected_cold_rows(engine: sa.Engine, run_ids: list[str], now: datetime) -> tuple[int, int]:
    """(sessions, snapshots): the core's expansion of the snapshots the cold runs stored."""
    from seriesgen_pipeline.core.generation import desired_sessions
    from seriesgen_pipeline.core.occurrences import window_for
    from seriesgen_pipeline.core.snapshot import SeriesSnapshot

    t = repo.snapshots_t
    with engine.connect() as conn:
        payloads = conn.execute(sa.select(t.c.payload).where(t.c.run_id.in_(run_ids))).scalars()
        sessions = snapshots = 0
        for payload in payloads:
            snapshots += 1
            snap = SeriesSnapshot.from_payload(payload)
            if snap.error is not None or snap.config is None or \
                    not snap.config.generation_enabled:
                continue
            window = window_for(now, snap.config.horizon_days)
            sessions += len(desired_sessions(snap.valid(), window).sessions)
    return sessions, snapshots


def edit_block(engine: sa.Engine, *, seed: int, fraction: float = 0.10) -> dict[str, Any]:
    """``nightly.edit_series``' edits on a block of consecutive keys instead of a sample."""
    rng = random.Random(seed + 1)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, recurrence, start_time, room FROM class_series ORDER BY key")).all()
    size = max(3, round(len(rows) * fraction))
    first = rng.randrange(0, len(rows) - size + 1)
    params: dict[str, list[dict[str, Any]]] = {"start_time": [], "room": [], "recurrence": []}
    for n, (sid, rule, start_time, room) in enumerate(rows[first:first + size]):
        if n % 3 == 0:
            hour, minute = start_time.split(":")
            new_hour = int(hour) + 1 if int(hour) < 21 else int(hour) - 1
            params["start_time"].append({"id": sid, "v": f"{new_hour:02d}:{minute}"})
        elif n % 3 == 1:
            params["room"].append({"id": sid, "v": f"{room} (moved)"})
        else:
            params["recurrence"].append({"id": sid, "v": _edited_rule(rule)})
    with engine.begin() as conn:
        for column, values in params.items():
            if values:
                conn.execute(sa.text(f"UPDATE class_series SET {column} = :v WHERE id = :id"),
                             values)
    return {"series": size, "block": f"{first}..{first + size - 1}",
            "start_time": len(params["start_time"]), "room": len(params["room"]),
            "rule": len(params["recurrence"])}


# ====================================================================== one round

@dataclass
class Round:
    """One benchmark at one generation limit."""

    args: argparse.Namespace
    concurrency: int | None
    made: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        if not ok:
            print(f"  !! check failed: {name} ({detail})", file=sys.stderr, flush=True)


def progress(text: str) -> None:
    sys.stdout.flush()
    print(f"  ... {text}", file=sys.stderr, flush=True)


def run_round(args: argparse.Namespace, rnd: Round) -> None:
    """Set up, run the five steps, check; fills ``rnd.figures`` and ``rnd.checks``."""
    import dagster as dg

    now = parse_instant(args.now)
    warm_now = now + timedelta(days=1)
    app_url = args.database_url
    if not app_url:
        app_url = create_database(args.postgres_url, "sg_daemon_bench_app")
        rnd.made.append(app_url)
    storage_url = args.dagster_postgres_url
    if not storage_url:
        storage_url = create_database(args.postgres_url, "sg_daemon_bench_dagster")
        rnd.made.append(storage_url)
    engine = create_db_engine(app_url)
    workdir = Path(tempfile.mkdtemp(prefix="seriesgen-daemon-bench-", dir=args.workdir_parent))
    home = workdir / "dagster_home"
    home.mkdir()
    text, settings = instance_yaml(rnd.concurrency, args.dequeue_interval)
    (home / "dagster.yaml").write_text(text)
    fig = rnd.figures
    fig.update({
        "concurrency": settings["generation_limit"], "instance": settings,
        "application_database": safe_url(app_url), "instance_database": safe_url(storage_url),
        "dagster_home": str(home), "steps": {}, "autovacuum": autovacuum_setting(engine),
    })
    steps: dict[str, Any] = fig["steps"]
    print(f"# round: seriesgen/generation limit {settings['generation_limit']}, "
          f"max_concurrent_runs {settings['max_concurrent_runs']}, "
          f"dequeue every {settings['dequeue_interval_seconds']} s, "
          f"launcher {settings['run_launcher']}, run monitoring "
          f"{'on' if settings['run_monitoring'] else 'off'}, storage {settings['storage']}")
    print(f"#   application {safe_url(app_url)}; instance {safe_url(storage_url)}; "
          f"DAGSTER_HOME {home}")
    instance = None
    daemon: Daemon | None = None
    try:
        refusal = prepare_database(engine, reset=args.reset)
        if refusal:
            raise BenchmarkError(f"refused: {refusal}")
        progress(f"seeding {args.series} series")
        fig["seed_data"] = seed_data(engine, n_series=args.series, horizon=args.horizon_days,
                                     now=now, seed=args.seed)
        os.environ["DAGSTER_PG_URL"] = dagster_url(storage_url)
        instance = dg.DagsterInstance.from_config(str(home))
        if instance.get_run_records(limit=1) or instance.get_dynamic_partitions(PARTITIONS):
            raise BenchmarkError("refused: the instance database is not empty: give an "
                                 "empty one")
        watch = Watch(instance=instance, timeout=args.step_timeout)

        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SERIESGEN_", "DAGSTER_"))
                    and k not in ("ENABLE_SERIES_GENERATION", "ADMIN_NOTIFY_RECIPIENT")}
        base_env.update({
            "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_url(storage_url),
            "SERIESGEN_DATABASE_URL": app_url, "SERIESGEN_ENV": "production",
            "ENABLE_SERIES_GENERATION": "true", "SERIESGEN_SCHEDULE_TIMEZONE": "UTC",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1", "PYTHONUNBUFFERED": "1",
        })
        if args.run_chunk:
            base_env["SERIESGEN_RUN_CHUNK"] = str(args.run_chunk)
        # The schedule stays quiet unless a step sets its minute: one minute of yesterday.
        quiet_cron = one_shot_cron(datetime.now(UTC) - timedelta(days=1))

        def launch(step: str, step_now: datetime, cron: str) -> Daemon:
            env = {**base_env, "SERIESGEN_NOW": format_instant(step_now),
                   "SERIESGEN_SCHEDULE_CRON": cron}
            started = start_daemon(env, workdir / f"daemon-{step}.log")
            watch.daemon = started
            return started

        def finish(step: str, tick: Any, records: list[Any], expected: int) -> int:
            night = night_figures(watch, engine, tick, records)
            night["sessions"] = count_rows(engine, "class_sessions")
            night["load_average"] = round(os.getloadavg()[0], 2)
            steps[step] = night
            expected += night["created"] - night["deleted"]
            rnd.check(f"{step}: every run succeeded", night["statuses"] == {
                "SUCCESS": night["runs"]}, str(night["statuses"]))
            rnd.check(f"{step}: no series failed", night["failed"] == 0,
                      f"{night['failed']} failed {night['failed_examples']}")
            rnd.check(f"{step}: class_sessions = running created - deleted of generation_log",
                      night["sessions"] == expected,
                      f"{night['sessions']} rows, expected {expected}")
            return expected

        # ---- register + cold: the sensor's first tick
        progress("register + cold: starting dagster-daemon (sensor)")
        daemon = launch("cold", now, quiet_cron)
        t0 = daemon.started
        last_key = f"bench-{args.series - 1:06d}"
        registered_at = watch.wait(
            "the sensor to register the partitions",
            lambda: time.time() if instance.has_dynamic_partition(PARTITIONS, last_key)
            else None)
        registered = len(instance.get_dynamic_partitions(PARTITIONS))
        tick = watch.wait("the sensor's tick that requests the cold runs",
                          lambda: watch.requesting_tick(SENSOR, t0 - 1))
        first_tick = watch.ticks(SENSOR, t0 - 1)[0]
        fig["daemon_start_to_first_tick_s"] = first_tick.timestamp - t0
        steps["register"] = {
            "tick_timestamp": tick.timestamp, "tick_to_done_s": registered_at - tick.timestamp,
            "tick_s": tick.end_timestamp - tick.timestamp if tick.end_timestamp else None,
            "partitions": registered, "runs_requested": len(tick.run_ids),
        }
        rnd.check("register: one partition per series", registered == args.series,
                  f"{registered} partitions for {args.series} series")
        progress(f"cold: {len(tick.run_ids)} run(s) requested; waiting for them")
        records = watch.wait("the cold runs", lambda: watch.night_done(tick, t0 - 1))
        expected = finish("cold", tick, records, 0)
        cold = steps["cold"]
        stop_daemon(daemon, args.stop_wait)
        daemon = None
        want, snapshots = expected_cold_rows(engine, [r["run_id"] for r in cold["per_run"]],
                                             now)
        rnd.check("cold: every series generated", cold["statuses"] == {"SUCCESS": cold["runs"]}
                  and cold["series"] == args.series and cold["failed"] == 0,
                  f"{cold['series']} generation_log rows for {args.series} series")
        rnd.check("cold: class_sessions = the core's expansion of the stored snapshots",
                  cold["sessions"] == want and snapshots == args.series,
                  f"{cold['sessions']} rows, expected {want} from {snapshots} snapshots")
        rnd.check("cold: sessions = generation_log created", cold["sessions"] == cold["created"],
                  f"{cold['sessions']} vs {cold['created']}")
        fig["protected_marked"] = mark_protected(engine, since=warm_now)
        analyze(engine)
        lead = args.schedule_lead or max(10.0, 1.5 * fig["daemon_start_to_first_tick_s"])
        fig["schedule_lead_s"] = lead

        # ---- warm and no-op: the schedule, ticked once at a chosen minute
        for step in ("warm", "noop"):
            minute = next_minute(time.time() + lead)
            cron = one_shot_cron(minute)
            progress(f"{step}: dagster-daemon with SERIESGEN_SCHEDULE_CRON='{cron}' "
                     f"(ticks at {minute:%H:%M} UTC)")
            daemon = launch(step, warm_now, cron)
            t0 = daemon.started
            tick = watch.wait(f"the {step} schedule tick",
                              lambda t0=t0: watch.requesting_tick(SCHEDULE, t0 - 1),
                              timeout=args.step_timeout + lead + 60)
            progress(f"{step}: {len(tick.run_ids)} run(s) requested; waiting for them")
            records = watch.wait(f"the {step} runs",
                                 lambda tick=tick, t0=t0: watch.night_done(tick, t0 - 1))
            expected = finish(step, tick, records, expected)
            steps[step]["tick_lag_s"] = (min(r["created"] for r in steps[step]["per_run"])
                                         - tick.timestamp)
            rnd.check(f"{step}: every partition in the schedule's runs",
                      steps[step]["series"] == registered,
                      f"{steps[step]['series']} series for {registered} partitions")
            if step == "warm":
                stop_daemon(daemon, args.stop_wait)
                daemon = None
                analyze(engine)
        warm, noop = steps["warm"], steps["noop"]
        rnd.check("warm: new day of sessions created", warm["created"] > 0, str(warm["created"]))
        written = noop["created"] + noop["updated"] + noop["deleted"]
        rnd.check("no-op: zero rows written", written == 0, f"{written} rows")

        # ---- edit: raw SQL while the no-op's daemon runs; the sensor notices
        analyze(engine)
        noop_started = t0  # the sensor ticks of this daemon requested nothing before the edit
        before_edit = time.time()
        fig["edited"] = (edit_block(engine, seed=args.seed) if args.edit == "block"
                         else edit_series(engine, seed=args.seed))
        progress(f"edit: {fig['edited']['series']} series edited by raw SQL; waiting for the "
                 "sensor")
        tick = watch.wait("the sensor's tick after the edit",
                          lambda: watch.requesting_tick(SENSOR, noop_started - 1))
        records = watch.wait("the edit runs",
                             lambda: watch.night_done(tick, min(before_edit, tick.timestamp)))
        expected = finish("edit", tick, records, expected)
        edit = steps["edit"]
        edit["edit_to_tick_s"] = tick.timestamp - before_edit
        rnd.check("edit: updates or deletes written", edit["updated"] + edit["deleted"] > 0,
                  f"updated {edit['updated']}, deleted {edit['deleted']}")
        rnd.check("edit: every edited series rerun", edit["series"] >= fig["edited"]["series"],
                  f"{edit['series']} series in the runs, {fig['edited']['series']} edited")
        stop_daemon(daemon, args.stop_wait)
        daemon = None
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        previous = {sig: signal.signal(sig, signal.SIG_IGN)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        if daemon is not None:
            progress("stopping dagster-daemon")
            stop_daemon(daemon, args.stop_wait)
        if instance is not None:
            instance.dispose()
        engine.dispose()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
            for url in rnd.made:
                with contextlib.suppress(Exception):
                    drop_database(url)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        fig["kept"] = [safe_url(u) for u in rnd.made] if args.keep else []
        for step in STEPS:
            if step in TARGETS and step in steps:
                value = steps[step]["tick_to_done_s"]
                steps[step]["target_s"] = TARGETS[step]
                steps[step]["target_met"] = value <= TARGETS[step]


# ====================================================================== output

def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_round(rnd: Round, at_scale: bool) -> None:
    fig, steps = rnd.figures, rnd.figures.get("steps", {})
    seeded = fig.get("seed_data")
    if seeded:
        print(f"# seeded {seeded['series']} series in {seeded['seconds']:.1f} s "
              f"({seeded['branches']} branches, {seeded['zones']} zones)")
    if "protected_marked" in fig:
        print(f"# after cold, marked protected by raw SQL: {fig['protected_marked']}")
    if "edited" in fig:
        print(f"# edited by raw SQL before the edit night: {fig['edited']}")
    rows = []
    for step in STEPS:
        if step not in steps:
            continue
        s = steps[step]
        target = (f"{TARGETS[step]:.0f} {'met' if s['target_met'] else 'MISSED'}"
                  if step in TARGETS else "-")
        if step == "register":
            rows.append([LABELS[step], "-", "-", _f(s["tick_to_done_s"]), target, "-", "-", "-",
                         "-", "-", "-", "-", "-", "-", "-", f"{s['partitions']} partitions"])
            continue
        rows.append([
            LABELS[step], str(s["runs"]), str(s["peak_concurrency"]),
            _f(s["tick_to_done_s"]), target, _f(s["runs_wall_s"]),
            f"{_f(s['queue_s']['mean'])} / {_f(s['queue_s']['max'])}",
            _f(s["spawn_s"]["mean"]), _f(s["launch_s"]["mean"]), _f(s["engine_s"]),
            _f(s["step_s"]), str(s["created"]), str(s["updated"]), str(s["deleted"]),
            str(s["protected"]), str(s["sessions"]),
        ])
    if rows:
        print()
        print(_table(["step", "runs", "peak", "tick->done s", "target s", "runs wall s",
                      "queue s mean/max", "spawn s", "launch s", "engine s", "step s",
                      "created", "updated", "deleted", "protected", "sessions"], rows))
        print("  tick->done: tick start -> last run ended (register: -> every partition "
              "registered); runs wall: first run created -> last ended")
        print("  queue: created -> RUN_START per run (spawn: the part after dequeue); launch: "
              "RUN_START -> first STEP_START; engine / step: sums over the runs")
        print("  peak: most runs in progress at once; created..protected: generation_log of "
              "the step's runs; sessions: class_sessions rows after the step")
    if "daemon_start_to_first_tick_s" in fig:
        print(f"  daemon start -> first sensor tick {fig['daemon_start_to_first_tick_s']:.1f} s; "
              f"sensor tick that registered and requested: "
              f"{_f(steps.get('register', {}).get('tick_s'))} s; schedule tick lag (tick -> "
              f"first run created): warm {_f(steps.get('warm', {}).get('tick_lag_s'))} s, "
              f"no-op {_f(steps.get('noop', {}).get('tick_lag_s'))} s; edit -> sensor tick "
              f"{_f(steps.get('edit', {}).get('edit_to_tick_s'))} s")
    targets = [s for s in STEPS if s in steps and s in TARGETS]
    if targets:
        print("\n  targets (N=10,000, D=365, this 2-core machine; tick -> done)"
              + ("" if at_scale else " - informative only at this scale") + ":")
        for step in targets:
            s = steps[step]
            print(f"    {'met   ' if s['target_met'] else 'MISSED'}  {LABELS[step]} <= "
                  f"{TARGETS[step]:.0f} s: {s['tick_to_done_s']:.1f} s")
    if rnd.checks:
        print("\n  checks:")
        for c in rnd.checks:
            print(f"    {'ok  ' if c['ok'] else 'FAIL'}  {c['check']} ({c['detail']})")
    if fig.get("kept"):
        print(f"\n  kept: {', '.join(fig['kept'])}; DAGSTER_HOME {fig['dagster_home']}")


def print_comparison(rounds: list[Round]) -> None:
    rows = []
    for step in STEPS:
        row = [LABELS[step]]
        for rnd in rounds:
            s = rnd.figures.get("steps", {}).get(step)
            if s is None:
                row += ["-", "-"]
            elif step == "register":
                row += [_f(s["tick_to_done_s"]), "-"]
            else:
                row += [_f(s["tick_to_done_s"]), str(s["peak_concurrency"])]
        rows.append(row)
    headers = ["step"]
    for rnd in rounds:
        headers += [f"limit {rnd.figures.get('concurrency')}: tick->done s", "peak"]
    print("\n# comparison of the seriesgen/generation limit")
    print(_table(headers, rows))


# ====================================================================== main

def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Both interrupt the benchmark (its daemons stopped, its databases dropped), also
    # when it was started in the background with SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    command = masked_command([sys.executable, __file__,
                              *(sys.argv[1:] if argv is None else argv)])
    print(f"$ {command}")
    print(f"# seriesgen production-path benchmark: N={args.series} series, "
          f"D={args.horizon_days} days, now={args.now}, seed={args.seed}, "
          f"run chunk {args.run_chunk or 'default (2500)'}")
    print(f"# seriesgen {code_version()}; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    at_scale = (args.series, args.horizon_days) == TARGET_SCALE
    rounds: list[Round] = []
    status = 0
    try:
        for value in args.concurrency_values:
            rnd = Round(args=args, concurrency=value)
            rounds.append(rnd)
            try:
                run_round(args, rnd)
            except BenchmarkError as exc:
                print(f"error: {exc}", file=sys.stderr)
                status = 2 if str(exc).startswith("refused") else 1
            except sa.exc.OperationalError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                print(f"error: PostgreSQL: {reason}", file=sys.stderr)
                status = 2
            print()
            print_round(rnd, at_scale)
            if status:
                break
    except KeyboardInterrupt:
        print("interrupted: the daemon was stopped and the databases made here dropped",
              file=sys.stderr)
        return 130
    if len(rounds) > 1:
        print_comparison(rounds)
    if args.json_out:
        out = {"command": command, "n_series": args.series, "horizon_days": args.horizon_days,
               "now": args.now, "seed": args.seed, "run_chunk": args.run_chunk,
               "cpus": os.cpu_count(), "code_version": code_version(),
               "targets": TARGETS, "targets_apply": at_scale,
               "rounds": [{**r.figures, "checks": r.checks} for r in rounds]}
        Path(args.json_out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    if status == 0 and not all(c["ok"] for r in rounds for c in r.checks):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
