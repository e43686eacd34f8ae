"""One round of ``daemon_night.py``: five nights through a real ``dagster-daemon``.

A round sets up its databases and ``DAGSTER_HOME``, seeds the application database,
then runs the nights (register and cold through the sensor, warm and no-op through
the schedule ticked at a chosen minute, edit through the sensor), checking each as
it ends, and always cleans up: the daemon stopped, the instance closed, the
databases made here dropped and the temporary ``DAGSTER_HOME`` removed unless
``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from benchmarks.common import BenchmarkError, progress
from benchmarks.daemon_process import (
    Daemon,
    instance_yaml,
    next_minute,
    one_shot_cron,
    start_daemon,
    stop_daemon,
)
from benchmarks.databases import (
    analyze,
    autovacuum_setting,
    count_rows,
    create_database,
    dagster_url,
    drop_database,
    prepare_database,
)
from benchmarks.night_figures import Watch, night_figures
from benchmarks.raw_baseline import expected_cold_rows
from benchmarks.seeding import edit_block, edit_series, mark_protected, seed_data
from seriesgen_pipeline.core.clock import format_instant, parse_instant
from seriesgen_pipeline.persistence.db import create_db_engine, safe_url

SENSOR = "class_series_changes"
SCHEDULE = "nightly_generation"
PARTITIONS = "class_series"
STEPS = ("register", "cold", "warm", "noop", "edit")
LABELS = {"register": "register (sensor)", "cold": "cold (sensor)",
          "warm": "warm +1 day (schedule)", "noop": "no-op (schedule)",
          "edit": "edit 10% (sensor)"}
TARGETS = {"register": 20.0, "cold": 240.0, "warm": 60.0, "noop": 45.0}


@dataclass
class Round:
    """One benchmark at one generation limit."""

    args: argparse.Namespace
    concurrency: int | None
    made: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record a correctness check; say at once when it fails."""
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        if not ok:
            print(f"  !! check failed: {name} ({detail})", file=sys.stderr, flush=True)


def run_round(args: argparse.Namespace, rnd: Round) -> None:
    """Set up, run the five steps, check; fills ``rnd.figures`` and ``rnd.checks``."""
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
    rnd.figures.update({
        "concurrency": settings["generation_limit"], "instance": settings,
        "application_database": safe_url(app_url), "instance_database": safe_url(storage_url),
        "dagster_home": str(home), "steps": {}, "autovacuum": autovacuum_setting(engine),
    })
    print(f"# round: seriesgen/generation limit {settings['generation_limit']}, "
          f"max_concurrent_runs {settings['max_concurrent_runs']}, "
          f"dequeue every {settings['dequeue_interval_seconds']} s, "
          f"launcher {settings['run_launcher']}, run monitoring "
          f"{'on' if settings['run_monitoring'] else 'off'}, storage {settings['storage']}")
    print(f"#   application {safe_url(app_url)}; instance {safe_url(storage_url)}; "
          f"DAGSTER_HOME {home}")
    nights = _Nights(args, rnd, engine, workdir)
    try:
        nights.set_up(app_url, storage_url)
        nights.register_and_cold()
        nights.scheduled()
        nights.edit()
    finally:
        nights.clean_up()


class _Nights:
    """A round's nights in progress: the instance, the daemon, the running session total."""

    def __init__(self, args: argparse.Namespace, rnd: Round, engine: sa.Engine,
                 workdir: Path) -> None:
        self.args, self.rnd, self.engine, self.workdir = args, rnd, engine, workdir
        self.fig = rnd.figures
        self.steps: dict[str, Any] = rnd.figures["steps"]
        self.now = parse_instant(args.now)
        self.warm_now = self.now + timedelta(days=1)
        self.instance: dg.DagsterInstance | None = None
        self.watch = Watch(instance=None, timeout=args.step_timeout)
        self.daemon: Daemon | None = None
        self.env: dict[str, str] = {}
        self.expected = 0  # class_sessions rows: the running created - deleted
        self.registered = 0

    def set_up(self, app_url: str, storage_url: str) -> None:
        """Seed the application database; open the (empty) instance; the daemon's env."""
        args, home = self.args, self.workdir / "dagster_home"
        refusal = prepare_database(self.engine, reset=args.reset)
        if refusal:
            raise BenchmarkError(f"refused: {refusal}")
        progress(f"seeding {args.series} series")
        self.fig["seed_data"] = seed_data(self.engine, n_series=args.series,
                                          horizon=args.horizon_days, now=self.now,
                                          seed=args.seed)
        os.environ["DAGSTER_PG_URL"] = dagster_url(storage_url)
        self.instance = instance = dg.DagsterInstance.from_config(str(home))
        if instance.get_run_records(limit=1) or instance.get_dynamic_partitions(PARTITIONS):
            raise BenchmarkError("refused: the instance database is not empty: give an "
                                 "empty one")
        self.watch.instance = instance
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SERIESGEN_", "DAGSTER_"))
                    and k not in ("ENABLE_SERIES_GENERATION", "ADMIN_NOTIFY_RECIPIENT")}
        self.env.update({
            "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_url(storage_url),
            "SERIESGEN_DATABASE_URL": app_url, "SERIESGEN_ENV": "production",
            "ENABLE_SERIES_GENERATION": "true", "SERIESGEN_SCHEDULE_TIMEZONE": "UTC",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1", "PYTHONUNBUFFERED": "1",
        })
        if args.run_chunk:
            self.env["SERIESGEN_RUN_CHUNK"] = str(args.run_chunk)

    def launch(self, step: str, step_now: datetime, cron: str) -> Daemon:
        """A daemon whose code server sees ``now`` = ``step_now`` and the schedule ``cron``."""
        env = {**self.env, "SERIESGEN_NOW": format_instant(step_now),
               "SERIESGEN_SCHEDULE_CRON": cron}
        self.daemon = start_daemon(env, self.workdir / f"daemon-{step}.log")
        self.watch.daemon = self.daemon
        return self.daemon

    def stop(self) -> None:
        """Stop the running daemon (its code server and run workers too)."""
        if self.daemon is not None:
            stop_daemon(self.daemon, self.args.stop_wait)
            self.daemon = None

    def finish(self, step: str, tick: Any, records: list[Any]) -> dict[str, Any]:
        """The step's figures, and the checks every night must pass."""
        night = night_figures(self.watch, self.engine, tick, records)
        night["sessions"] = count_rows(self.engine, "class_sessions")
        night["load_average"] = round(os.getloadavg()[0], 2)
        self.steps[step] = night
        self.expected += night["created"] - night["deleted"]
        check = self.rnd.check
        check(f"{step}: every run succeeded", night["statuses"] == {"SUCCESS": night["runs"]},
              str(night["statuses"]))
        check(f"{step}: no series failed", night["failed"] == 0,
              f"{night['failed']} failed {night['failed_examples']}")
        check(f"{step}: class_sessions = running created - deleted of generation_log",
              night["sessions"] == self.expected,
              f"{night['sessions']} rows, expected {self.expected}")
        return night

    def register_and_cold(self) -> None:
        """The sensor's first tick: the partitions registered, then the cold runs."""
        args, watch, check = self.args, self.watch, self.rnd.check
        instance = watch.instance
        progress("register + cold: starting dagster-daemon (sensor)")
        # The schedule stays quiet unless a step sets its minute: one minute of yesterday.
        t0 = self.launch("cold", self.now,
                         one_shot_cron(datetime.now(UTC) - timedelta(days=1))).started
        last_key = f"bench-{args.series - 1:06d}"
        registered_at = watch.wait(
            "the sensor to register the partitions",
            lambda: time.time() if instance.has_dynamic_partition(PARTITIONS, last_key)
            else None)
        self.registered = registered = len(instance.get_dynamic_partitions(PARTITIONS))
        tick = watch.wait("the sensor's tick that requests the cold runs",
                          lambda: watch.requesting_tick(SENSOR, t0 - 1))
        first_tick = watch.ticks(SENSOR, t0 - 1)[0]
        self.fig["daemon_start_to_first_tick_s"] = first_tick.timestamp - t0
        self.steps["register"] = {
            "tick_timestamp": tick.timestamp, "tick_to_done_s": registered_at - tick.timestamp,
            "tick_s": tick.end_timestamp - tick.timestamp if tick.end_timestamp else None,
            "partitions": registered, "runs_requested": len(tick.run_ids),
        }
        check("register: one partition per series", registered == args.series,
              f"{registered} partitions for {args.series} series")
        progress(f"cold: {len(tick.run_ids)} run(s) requested; waiting for them")
        records = watch.wait("the cold runs", lambda: watch.night_done(tick, t0 - 1))
        cold = self.finish("cold", tick, records)
        self.stop()
        want, snapshots = expected_cold_rows(
            self.engine, [r["run_id"] for r in cold["per_run"]], self.now)
        check("cold: every series generated", cold["statuses"] == {"SUCCESS": cold["runs"]}
              and cold["series"] == args.series and cold["failed"] == 0,
              f"{cold['series']} generation_log rows for {args.series} series")
        check("cold: class_sessions = the core's expansion of the stored snapshots",
              cold["sessions"] == want and snapshots == args.series,
              f"{cold['sessions']} rows, expected {want} from {snapshots} snapshots")
        check("cold: sessions = generation_log created", cold["sessions"] == cold["created"],
              f"{cold['sessions']} vs {cold['created']}")
        self.fig["protected_marked"] = mark_protected(self.engine, since=self.warm_now)
        analyze(self.engine)
        start_to_tick = self.fig["daemon_start_to_first_tick_s"]
        self.fig["schedule_lead_s"] = args.schedule_lead or max(10.0, 1.5 * start_to_tick)

    def scheduled(self) -> None:
        """Warm and no-op: the schedule, ticked once at a chosen minute; the no-op's daemon
        is left running for the edit."""
        watch, lead = self.watch, self.fig["schedule_lead_s"]
        for step in ("warm", "noop"):
            minute = next_minute(time.time() + lead)
            cron = one_shot_cron(minute)
            progress(f"{step}: dagster-daemon with SERIESGEN_SCHEDULE_CRON='{cron}' "
                     f"(ticks at {minute:%H:%M} UTC)")
            t0 = self.launch(step, self.warm_now, cron).started
            tick = watch.wait(f"the {step} schedule tick",
                              lambda t0=t0: watch.requesting_tick(SCHEDULE, t0 - 1),
                              timeout=self.args.step_timeout + lead + 60)
            progress(f"{step}: {len(tick.run_ids)} run(s) requested; waiting for them")
            records = watch.wait(f"the {step} runs",
                                 lambda tick=tick, t0=t0: watch.night_done(tick, t0 - 1))
            night = self.finish(step, tick, records)
            night["tick_lag_s"] = min(r["created"] for r in night["per_run"]) - tick.timestamp
            self.rnd.check(f"{step}: every partition in the schedule's runs",
                           night["series"] == self.registered,
                           f"{night['series']} series for {self.registered} partitions")
            if step == "warm":
                self.stop()
                analyze(self.engine)
        warm, noop = self.steps["warm"], self.steps["noop"]
        self.rnd.check("warm: new day of sessions created", warm["created"] > 0,
                       str(warm["created"]))
        written = noop["created"] + noop["updated"] + noop["deleted"]
        self.rnd.check("no-op: zero rows written", written == 0, f"{written} rows")

    def edit(self) -> None:
        """Raw SQL edits while the no-op's daemon runs; the sensor's next tick reruns them."""
        args, watch, fig = self.args, self.watch, self.fig
        assert self.daemon is not None
        analyze(self.engine)
        noop_started = self.daemon.started  # its sensor ticks requested nothing before the edit
        before_edit = time.time()
        fig["edited"] = (edit_block(self.engine, seed=args.seed) if args.edit == "block"
                         else edit_series(self.engine, seed=args.seed))
        progress(f"edit: {fig['edited']['series']} series edited by raw SQL; waiting for the "
                 "sensor")
        tick = watch.wait("the sensor's tick after the edit",
                          lambda: watch.requesting_tick(SENSOR, noop_started - 1))
        records = watch.wait("the edit runs",
                             lambda: watch.night_done(tick, min(before_edit, tick.timestamp)))
        edit = self.finish("edit", tick, records)
        edit["edit_to_tick_s"] = tick.timestamp - before_edit
        self.rnd.check("edit: updates or deletes written", edit["updated"] + edit["deleted"] > 0,
                       f"updated {edit['updated']}, deleted {edit['deleted']}")
        self.rnd.check("edit: every edited series rerun",
                       edit["series"] >= fig["edited"]["series"],
                       f"{edit['series']} series in the runs, {fig['edited']['series']} edited")
        self.stop()

    def clean_up(self) -> None:
        """Stop what runs, drop what was made here (unless ``--keep``), mark the targets."""
        # A second Ctrl-C must not cut the clean-up short.
        previous = {sig: signal.signal(sig, signal.SIG_IGN)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        if self.daemon is not None:
            progress("stopping dagster-daemon")
            self.stop()
        if self.instance is not None:
            self.instance.dispose()
        self.engine.dispose()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            for url in self.rnd.made:
                with contextlib.suppress(Exception):  # the other databases are dropped still
                    drop_database(url)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self.fig["kept"] = [safe_url(u) for u in self.rnd.made] if self.args.keep else []
        for step in STEPS:
            if step in TARGETS and step in self.steps:
                value = self.steps[step]["tick_to_done_s"]
                self.steps[step]["target_s"] = TARGETS[step]
                self.steps[step]["target_met"] = value <= TARGETS[step]
