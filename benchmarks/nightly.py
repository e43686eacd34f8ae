"""Nightly-generation benchmark of seriesgen (SPEC §11, NFR-001).

Usage::

    .venv/bin/python benchmarks/nightly.py --series 10000 --horizon-days 365 \\
        --database-url postgresql://postgres@127.0.0.1/sg_bench [--reset] [--json out.json]
    .venv/bin/python benchmarks/nightly.py --quick --database-url sqlite:////tmp/b.db

It is a plain script that prints a table, not a timed test. In one invocation it

0. seeds synthetic data with bulk SQLAlchemy Core inserts straight into
   ``branches``, ``scheduling_configs`` and ``class_series`` (not via the
   loader); deterministic (``--seed``): daily, weekly (with ``INTERVAL``, one
   with ``COUNT``) and monthly ordinal / month-day rules; branches in 9 zones, 8
   of them with DST (Lord Howe's 30-minute shift included); branch- and
   series-scope overrides; closed dates at every scope, exdates; a few series in
   the DST gap or fold; a few 90-minute series that double-book a room;
1. **cold** - empty ``class_sessions``, full horizon, ``now`` = ``--now``;
   afterwards ~10% of the future sessions are marked protected by raw SQL
   (7% booked, 2% detached, 1% cancelled), so later steps meet protected rows;
2. **warm** - ``now`` + 1 day: one new day of sessions per series;
3. **no-op** - the same ``now`` again: must write no session row;
4. **edit** - 10% of the series edited by raw SQL (a third each: start time,
   room, rule), then a run at the same ``now``;
5. **raw baseline** - the very snapshots the cold run stored, expanded by the
   core (``desired_sessions``) and written into an empty copy of
   ``class_sessions`` (``CREATE TABLE bench_raw (LIKE class_sessions INCLUDING
   ALL)``) with one psycopg 3 binary ``COPY``; no Dagster, no locks, no
   reconciliation. On SQLite the copy table is made from ``class_sessions``' own
   DDL (same indexes) and the rows go in with one ``executemany`` on the raw
   sqlite3 connection, in one transaction.

Steps 1-4 call ``seriesgen_pipeline.defs.launch.run_generation(keys=None,
now=...)``: partition sync, then ranged in-process runs of
``series_generation_job`` - the same job, asset step and range tags the nightly
schedule launches (its ranges hold ``CLI_RUN_CHUNK`` keys; ``--run-chunk 500``
gives the schedule's default size).

How the figures are measured
----------------------------

* **Each step runs in its own child process** (this script re-invoked with a
  hidden ``--child`` flag), as a nightly run would. ``peak RSS`` is that
  child's ``getrusage(RUSAGE_SELF).ru_maxrss`` - a per-step high-water mark
  that includes the interpreter and the Dagster import (~90 MiB before any
  work; ``rss at start`` in the JSON).
* **wall s** is ``time.perf_counter()`` around ``run_generation`` in the child
  (imports, engine creation and the analysis below are outside it).
* **rows written** = created + updated + deleted session rows, as the run
  reports them (read back from ``generation_log``); ``rows/s`` = rows written
  / wall. ``protected`` is the run's protected count.
* **engine vs Dagster.** Nothing is monkeypatched. After the step, the child
  reads every run's event log from the instance. A run's step span is
  ``STEP_START`` -> ``STEP_SUCCESS``/``STEP_FAILURE``. **engine s** is the
  asset's own ``duration_ms``, which it measures with ``perf_counter`` from its
  first line through snapshots, generation (expansion, planning, writes,
  conflicts, notifications), retirement and the generation log, and reports in
  its ``run totals`` log line (read back from the event log); should that line
  be missing, the span up to the first recorded event is used instead.
  **in-step s** = step span - engine s: Dagster work inside the step (the
  per-series log lines, which Dagster captures as events when ``seriesgen`` is
  a managed logger, partition status reads, materialization and check events,
  failed-partition marks).
  **launch s** = wall - step spans: partition sync, job build, run creation
  (planned events), run start/end, resource set-up and the report read-back.
  dagster % = (launch s + in-step s) / wall s. The JSON has the event counts by
  type and, per run, the span up to the first recorded event as a cross-check.
* **planner statistics.** Steps run back to back, where production has a day
  between nights for autovacuum's autoanalyze. So on PostgreSQL the script runs
  ``ANALYZE`` (untimed) before every step after cold; ``--no-analyze`` turns it
  off (without statistics after the cold bulk load, the planner scans all of
  ``class_sessions`` for every batch of series). The header shows the server's
  ``autovacuum`` setting.
* **raw baseline**: wall = expansion + COPY (+ commit); ``expand s`` is
  measured around the core calls inside the row stream, ``write s`` is the rest.
  ``cold / raw`` compares walls; ``engine cold / raw`` compares the cold
  run's engine s with the baseline wall (target <= 2x).

The Dagster instance (``--dagster-storage``):

* ``sqlite`` (the default): a temporary ``DAGSTER_HOME`` (a fresh directory on
  disk, removed at the end unless ``--keep-dagster-home``) holding the
  project's ``dagster.yaml``, so Dagster's default SQLite storage, shared by
  the steps;
* ``postgres``: the same, with dagster-postgres storage in the database named
  by ``--dagster-postgres-url postgresql+psycopg2://...`` (passed through
  ``DAGSTER_PG_URL`` as in ``deploy/dagster.postgres.yaml``; its Dagster runs,
  asset events and ``class_series`` partitions are wiped first);
* ``ephemeral`` (the ``--quick`` default, to keep CI smoke under a minute): an
  in-memory instance per step process, passed to ``run_generation``; the
  partitions are re-added by every step, and as no partition is materialized
  yet in a fresh instance, every step records every series. Dagster's CPU cost
  without its storage I/O.

The database must be empty or disposable: the script refuses to run when
``class_series`` or ``class_sessions`` hold rows, unless ``--reset`` is given,
which drops every table and recreates the schema with ``upgrade_database``.
Correctness checks (counts, a zero-row no-op, no failed series) make the exit
status 1 when they fail; time targets never do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from seriesgen_pipeline.core.clock import format_instant, parse_instant  # noqa: E402
from seriesgen_pipeline.persistence import repository as repo  # noqa: E402
from seriesgen_pipeline.persistence.db import (  # noqa: E402
    create_db_engine,
    safe_url,
    upgrade_database,
)

DEFAULT_NOW = "2026-03-02T06:00:00Z"
DEFAULT_SEED = 20260302
QUICK_SERIES = 500
QUICK_HORIZON = 90
STEPS = ("cold", "warm", "noop", "edit")
LABELS = {"cold": "cold", "warm": "warm (+1 day)", "noop": "no-op", "edit": "edit 10%",
          "raw": "raw baseline"}
TARGET_SCALE = (10_000, 365)
TARGETS = {  # step -> wall seconds, at N=10,000 and D=365 on PostgreSQL
    "cold": 180.0, "warm": 60.0, "noop": 30.0, "edit": 60.0,
}
ENGINE_OVER_RAW_TARGET = 2.0
PEAK_RSS_TARGET_MIB = 2048.0

ZONES = (  # all but Tokyo observe DST; Lord Howe shifts by 30 minutes
    "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney",
    "America/Los_Angeles", "Australia/Lord_Howe", "America/Chicago", "Pacific/Auckland",
    "Asia/Tokyo",
)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MONTHLY_RULES = (
    "FREQ=MONTHLY;BYDAY=1MO", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=2TU,4TH",
    "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=MONTHLY;BYMONTHDAY=1,-1",
    "FREQ=MONTHLY;BYDAY=1SA,3SA",
)
HOURS_PER_ROOM = 16  # one series per room and hour, 06:00..21:00
SERIES_PER_BRANCH = 200
COPY_COLUMNS = (
    ("series_id", "int4"), ("origin_series_id", "int4"), ("series_key", "varchar"),
    ("occurrence_key", "varchar"), ("branch_id", "varchar"), ("title", "varchar"),
    ("instructor", "varchar"), ("room", "varchar"), ("capacity", "int4"),
    ("timezone", "varchar"), ("starts_at", "timestamptz"), ("ends_at", "timestamptz"),
    ("status", "varchar"), ("detached", "bool"), ("booked_count", "int4"),
    ("config_hash", "varchar"), ("run_id", "varchar"), ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
RAW_TABLE = "bench_raw"


# ====================================================================== arguments

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=None, help="N series (default 10000)")
    p.add_argument("--horizon-days", type=int, default=None, help="D (default 365)")
    p.add_argument("--database-url", help="an empty or disposable application database")
    p.add_argument("--quick", action="store_true",
                   help=f"CI smoke: N={QUICK_SERIES}, D={QUICK_HORIZON} unless given")
    p.add_argument("--reset", action="store_true",
                   help="drop every table of the database and recreate the schema first")
    p.add_argument("--json", dest="json_out", help="write the figures to this file")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--now", default=DEFAULT_NOW, help="base 'now' of the cold run")
    p.add_argument("--dagster-storage", choices=("sqlite", "postgres", "ephemeral"),
                   default=None,
                   help="Dagster instance: sqlite (a temporary DAGSTER_HOME, the default), "
                        "postgres (dagster-postgres), or ephemeral (in memory, one per step; "
                        "the --quick default)")
    p.add_argument("--dagster-postgres-url",
                   help="postgresql+psycopg2://... of a disposable database for the instance")
    p.add_argument("--run-chunk", type=int, default=None,
                   help="partition keys per ranged run (default: run_generation's own)")
    p.add_argument("--chunk-rows", type=int, default=None, help="SERIESGEN_CHUNK_ROWS")
    p.add_argument("--batch-series", type=int, default=None, help="SERIESGEN_BATCH_SERIES")
    p.add_argument("--profile", metavar="STEP[,STEP]",
                   help=f"run these steps ({', '.join(STEPS)}) under pyinstrument")
    p.add_argument("--profile-out", default="benchmark-profile.txt",
                   help="profile file; each step's name is put before its suffix")
    p.add_argument("--dagster-home-parent", metavar="DIR",
                   help="where the temporary DAGSTER_HOME is made (default: the system "
                        "temporary directory)")
    p.add_argument("--no-analyze", dest="analyze", action="store_false",
                   help="PostgreSQL: do not ANALYZE the application tables between steps")
    p.add_argument("--keep-dagster-home", action="store_true")
    p.add_argument("--step-timeout", type=float, default=3600.0)
    p.add_argument("--scaling-report", nargs="+", metavar="JSON",
                   help="print a scaling table from earlier --json files and exit")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--child-snapshots", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.series is None:
        args.series = QUICK_SERIES if args.quick else TARGET_SCALE[0]
    if args.dagster_storage is None:
        args.dagster_storage = "ephemeral" if args.quick else "sqlite"
    if args.horizon_days is None:
        args.horizon_days = QUICK_HORIZON if args.quick else TARGET_SCALE[1]
    if not args.scaling_report and not args.database_url:
        p.error("--database-url is required")
    unknown = set((args.profile or "").split(",")) - set(STEPS) - {""}
    if unknown:
        p.error(f"--profile takes steps among {', '.join(STEPS)}, not {', '.join(unknown)}")
    if args.series < 10:
        p.error("--series must be at least 10")
    if not 1 <= args.horizon_days <= 730:
        p.error("--horizon-days must be 1..730")
    if args.dagster_storage == "postgres" and not args.dagster_postgres_url and not args.child:
        p.error("--dagster-storage postgres needs --dagster-postgres-url")
    return args


def masked_command(argv: list[str]) -> str:
    """The command line with any database password masked."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and "://" in value and name.startswith("--"):
            out.append(f"{name}={safe_url(value)}")
        elif "://" in arg:
            out.append(safe_url(arg))
        else:
            out.append(arg)
    return shlex.join(out)


def code_version() -> str:
    """The checked-out commit of the product, and whether the tree has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "")


def profile_path(template: str, step: str) -> str:
    """``prof.txt`` -> ``prof.cold.txt``."""
    path = Path(template)
    return str(path.with_name(f"{path.stem}.{step}{path.suffix or '.txt'}"))


def maxrss_kib() -> int:
    """This process' peak resident set (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ====================================================================== database

def prepare_database(engine: sa.Engine, *, reset: bool) -> str | None:
    """Refuse a database with data unless ``reset``; leave the schema current.

    Returns a reason to refuse, or None.
    """
    tables = set(sa.inspect(engine).get_table_names())
    if not reset:
        with engine.connect() as conn:
            for name in ("class_series", "class_sessions"):
                if name in tables:
                    count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
                    if count:
                        return (f"{name} already holds {count} rows: give an empty or disposable "
                                "database, or --reset to drop every table and start over")
    if reset and tables:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    upgrade_database(engine)
    return None


def autovacuum_setting(engine: sa.Engine) -> str | None:
    """PostgreSQL's ``autovacuum`` setting (None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW autovacuum").scalar_one())


def analyze(engine: sa.Engine) -> None:
    """Refresh the planner statistics, as autovacuum would between two nights."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def count_rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


# ====================================================================== synthetic data

_CONFIG_NONE: dict[str, Any] = {
    "horizon_days": None, "timezone": None, "default_duration_minutes": None,
    "default_capacity": None, "open_time": None, "close_time": None, "closed_dates": None,
    "generation_enabled": None, "cleanup_grace_days": None,
}


def _rule(rng: random.Random) -> tuple[str, str]:
    """(kind, RRULE) of one synthetic series."""
    r = rng.random()
    if r < 0.12:
        return "daily", "FREQ=DAILY"
    if r < 0.17:
        return "daily/2", "FREQ=DAILY;INTERVAL=2"
    if r < 0.60:
        days = sorted(rng.sample(range(7), rng.randint(3, 5)))
        return "weekly", "FREQ=WEEKLY;BYDAY=" + ",".join(WEEKDAYS[d] for d in days)
    if r < 0.78:
        days = sorted(rng.sample(range(7), rng.randint(2, 3)))
        return "weekly/2", "FREQ=WEEKLY;INTERVAL=2;BYDAY=" + ",".join(WEEKDAYS[d] for d in days)
    if r < 0.80:
        return "weekly+count", "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=80"
    return "monthly", rng.choice(MONTHLY_RULES)


def seed_data(engine: sa.Engine, *, n_series: int, horizon: int, now: datetime,
              seed: int) -> dict[str, Any]:
    """Insert the synthetic branches, configurations and series; returns what was made."""
    rng = random.Random(seed)
    today = now.date()
    stamp = now - timedelta(days=30)
    n_branches = max(len(ZONES), -(-n_series // SERIES_PER_BRANCH))  # every zone in use
    base = {
        **_CONFIG_NONE, "scope": "base", "horizon_days": horizon, "timezone": "UTC",
        "default_duration_minutes": 60, "default_capacity": 20, "open_time": "06:00",
        "close_time": "22:00", "generation_enabled": True, "cleanup_grace_days": 0,
        "closed_dates": [date(today.year, 12, 25), date(today.year + 1, 1, 1)],
        "updated_at": stamp,
    }
    branches, branch_configs = [], []
    for b in range(n_branches):
        bid = f"b{b:03d}"
        branches.append({"id": bid, "name": f"Branch {b}"})
        config = {**_CONFIG_NONE, "scope": "branch", "branch_id": bid,
                  "timezone": ZONES[b % len(ZONES)], "updated_at": stamp}
        if b % 3 == 1:
            config["open_time"] = "07:00"
        if b % 4 == 2:
            config["close_time"] = "21:30"
        if b % 2 == 0:
            config["default_capacity"] = 15 + b % 10
        if b % 5 == 3:
            config["default_duration_minutes"] = 45
        config["closed_dates"] = [today + timedelta(days=rng.randint(1, horizon))
                                  for _ in range(2)]
        branch_configs.append(config)
    series, kinds, per_series_config = [], Counter(), {}
    for i in range(n_series):
        b, k = i % n_branches, i // n_branches
        kind, rule = _rule(rng)
        kinds[kind] += 1
        room, start_time = f"Room {k // HOURS_PER_ROOM + 1}", f"{6 + k % HOURS_PER_ROOM:02d}:00"
        if rng.random() < 0.01:  # in the DST gap or fold somewhere; its own room
            start_time, room = rng.choice(("02:30", "01:30", "02:15")), f"Night room {k}"
            kinds["dst-edge"] += 1
        u = rng.random()
        duration = 90 if u < 0.03 else None if u < 0.20 else 45 if u < 0.50 else 60
        start = (today + timedelta(days=rng.randint(1, 120)) if rng.random() < 0.10
                 else today - timedelta(days=rng.randint(7, 200)))
        end = (max(today, start) + timedelta(days=rng.randint(30, 730))
               if rng.random() < 0.20 else None)
        exdates = ([today + timedelta(days=rng.randint(0, horizon))
                    for _ in range(rng.randint(1, 4))] if rng.random() < 0.30 else [])
        key = f"bench-{i:06d}"
        series.append({
            "key": key, "branch_id": f"b{b:03d}", "title": f"Class {i}",
            "instructor": f"Coach {b}-{k // 4}", "room": room,
            "capacity": None if rng.random() < 0.30 else rng.randint(8, 30),
            "recurrence": rule, "start_time": start_time, "duration_minutes": duration,
            "start_date": start, "end_date": end, "exdates": exdates, "version": 1,
            "created_at": stamp, "updated_at": stamp,
        })
        if rng.random() < 0.05:
            choice = rng.randrange(5)
            override: dict[str, Any] = [
                {"default_capacity": 12},
                {"closed_dates": [today + timedelta(days=rng.randint(0, horizon))]},
                {"open_time": "05:00", "close_time": "23:00"},
                {"default_duration_minutes": 50},
                {"timezone": ZONES[(b + 4) % len(ZONES)]},
            ][choice]
            if "timezone" in override:
                series[-1]["room"] = f"Online {i}"  # another zone: keep clear of the rooms
            per_series_config[key] = override
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.insert(repo.configs_t), [base])
        conn.execute(sa.insert(repo.branches_t), branches)
        conn.execute(sa.insert(repo.configs_t), branch_configs)
        conn.execute(sa.insert(repo.series_t), series)
        ids = dict(conn.execute(sa.select(repo.series_t.c.key, repo.series_t.c.id)).all())
        rows = [{**_CONFIG_NONE, **cfg, "scope": "series", "series_id": ids[key],
                 "updated_at": stamp} for key, cfg in per_series_config.items()]
        if rows:
            conn.execute(sa.insert(repo.configs_t), rows)
    return {
        "seconds": round(time.perf_counter() - started, 3), "series": n_series,
        "branches": n_branches, "zones": len({c["timezone"] for c in branch_configs}),
        "series_configs": len(per_series_config), "rules": dict(sorted(kinds.items())),
        "series_with_exdates": sum(1 for s in series if s["exdates"]),
        "series_with_end_date": sum(1 for s in series if s["end_date"]),
    }


def mark_protected(engine: sa.Engine, *, since: datetime) -> dict[str, int]:
    """Mark ~10% of the sessions starting at or after ``since`` as the booking app would."""
    t = repo.sessions_t
    future = sa.and_(t.c.starts_at >= since, t.c.status == "scheduled")
    bucket = t.c.id % 100
    out = {}
    with engine.begin() as conn:
        out["booked"] = conn.execute(sa.update(t).where(future, bucket < 7)
                                     .values(booked_count=1 + t.c.id % 5)).rowcount
        out["detached"] = conn.execute(sa.update(t).where(future, bucket.in_([7, 8]))
                                       .values(detached=True)).rowcount
        out["cancelled"] = conn.execute(sa.update(t).where(future, bucket == 9)
                                        .values(status="cancelled")).rowcount
    return out


def edit_series(engine: sa.Engine, *, seed: int, fraction: float = 0.10) -> dict[str, int]:
    """Edit ``fraction`` of the series by raw SQL: a third each start time, room, rule."""
    rng = random.Random(seed + 1)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, recurrence, start_time, room FROM class_series ORDER BY id")).all()
    chosen = rng.sample(list(rows), k=max(3, round(len(rows) * fraction)))
    times, rooms, rules = [], [], []
    for n, (sid, rule, start_time, room) in enumerate(chosen):
        if n % 3 == 0:
            hour, minute = start_time.split(":")
            new_hour = int(hour) + 1 if int(hour) < 21 else int(hour) - 1
            times.append({"id": sid, "v": f"{new_hour:02d}:{minute}"})
        elif n % 3 == 1:
            rooms.append({"id": sid, "v": f"{room} (moved)"})
        else:
            rules.append({"id": sid, "v": _edited_rule(rule)})
    with engine.begin() as conn:
        for column, params in (("start_time", times), ("room", rooms), ("recurrence", rules)):
            if params:
                conn.execute(sa.text(f"UPDATE class_series SET {column} = :v WHERE id = :id"),
                             params)
    return {"series": len(chosen), "start_time": len(times), "room": len(rooms),
            "rule": len(rules)}


def _edited_rule(rule: str) -> str:
    if rule.startswith("FREQ=MONTHLY"):
        return "FREQ=MONTHLY;BYDAY=2WE" if rule != "FREQ=MONTHLY;BYDAY=2WE" else "FREQ=MONTHLY"
    if rule.startswith("FREQ=DAILY"):
        return "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    parts = dict(p.split("=", 1) for p in rule.split(";"))
    days = parts.get("BYDAY", "MO").split(",")
    parts["BYDAY"] = ",".join(WEEKDAYS[(WEEKDAYS.index(d) + 1) % 7] for d in days)
    return ";".join(f"{k}={v}" for k, v in parts.items())


def save_cold_snapshots(engine: sa.Engine, run_ids: list[str], path: Path) -> int:
    """Keep the snapshots the cold run generated from, for the raw baseline."""
    t = repo.snapshots_t
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.series_id, t.c.payload).where(t.c.run_id.in_(run_ids))
                            .order_by(t.c.series_id)).all()
    path.write_text(json.dumps([payload for _, payload in rows]))
    return len(rows)


# ====================================================================== child processes

def child_main(args: argparse.Namespace) -> int:
    """One step in this process; figures go to ``--child-out`` as JSON."""
    if args.child == "prepare":
        result = child_prepare()
    elif args.child == "raw":
        result = child_raw(args)
    else:
        result = child_generate(args)
    Path(args.child_out).write_text(json.dumps(result))
    return 0


def child_prepare() -> dict[str, Any]:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    assets = instance.all_asset_keys()
    if assets:
        instance.wipe_assets(assets)  # events and cached partition statuses
    instance.wipe()
    keys = instance.get_dynamic_partitions("class_series")
    for key in keys:
        instance.delete_dynamic_partition("class_series", key)
    return {"partitions_deleted": len(keys), "assets_wiped": len(assets)}


def child_generate(args: argparse.Namespace) -> dict[str, Any]:
    rss_start = maxrss_kib()
    import dagster as dg

    from seriesgen_pipeline.defs import launch
    from seriesgen_pipeline.service.settings import Settings

    if args.run_chunk:
        launch.CLI_RUN_CHUNK = args.run_chunk
    engine = create_db_engine(args.database_url)
    settings = Settings(database_url=args.database_url, environment="development",
                        enable_generation=True)
    now = parse_instant(args.now)
    # A DAGSTER_HOME instance is opened by run_generation itself, as the CLI does; an
    # ephemeral one is passed in, so that its event log can be read afterwards.
    ephemeral = dg.DagsterInstance.ephemeral() if args.dagster_storage == "ephemeral" else None
    profiler = None
    if args.child in (args.profile or "").split(","):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    rss_ready = maxrss_kib()
    started = time.perf_counter()
    report = launch.run_generation(engine, settings, keys=None, now=now, instance=ephemeral)
    wall = time.perf_counter() - started
    peak = maxrss_kib()
    if profiler is not None:
        profiler.stop()
        options = {"filter_threshold": 0.005}
        tree = profiler.output_text(unicode=False, color=False, processor_options=options)
        flat = profiler.output_text(unicode=False, color=False, flat=True,
                                    processor_options=options)
        Path(profile_path(args.profile_out, args.child)).write_text(
            f"{tree}\n\n# self time by function\n{flat}")
    engine.dispose()
    instance = ephemeral or dg.DagsterInstance.get()
    split = dagster_split(instance, report.run_ids, wall)
    totals = report.totals()
    return {
        "wall_s": wall, "run_ids": report.run_ids, "runs": len(report.run_ids),
        "created": totals["created"], "updated": totals["updated"],
        "deleted": totals["deleted"], "protected": totals["protected"],
        "series": totals["series"], "failed": totals["failed"],
        "failed_examples": [(s["key"], s["error"]) for s in report.series
                            if s["status"] == "failed"][:5],
        "peak_rss_kib": peak, "rss_start_kib": rss_start, "rss_ready_kib": rss_ready,
        "profiled": profiler is not None, **split,
    }


_TOTALS = re.compile(r"run totals: .*'duration_ms': (\d+)")


def dagster_split(instance: Any, run_ids: list[str], wall: float) -> dict[str, Any]:
    """Split ``wall`` into engine, in-step Dagster and launch time from the runs' event logs.

    Per run: the step span is ``STEP_START`` -> ``STEP_SUCCESS``/``STEP_FAILURE``. The
    engine time is the asset's own ``duration_ms`` (its ``run totals`` log line:
    settings, snapshots, generation, retirement, generation log), measured with
    ``perf_counter`` in the asset; the rest of the span is Dagster work in the step
    (partition status reads, materialization and check events). Without that line
    the engine time is the span up to the first materialization or check event.
    """
    import dagster as dg

    t = dg.DagsterEventType
    recorded = {t.ASSET_MATERIALIZATION, t.ASSET_CHECK_EVALUATION, t.STEP_OUTPUT,
                t.ASSET_MATERIALIZATION_PLANNED}
    ends_types = {t.STEP_SUCCESS, t.STEP_FAILURE}
    counted = Counter[str]()
    step_s = engine_s = 0.0
    per_run = []
    sources = set()
    for run_id in run_ids:
        records = sorted(instance.all_logs(run_id), key=lambda r: r.timestamp)
        kinds = [r.dagster_event.event_type if r.dagster_event else None for r in records]
        for k in kinds:
            counted[k.value if k is not None else "LOG"] += 1
        starts = [r.timestamp for r, k in zip(records, kinds, strict=True) if k == t.STEP_START]
        ends = [r.timestamp for r, k in zip(records, kinds, strict=True) if k in ends_types]
        if not starts or not ends:
            per_run.append({"run_id": run_id, "step_s": 0.0, "engine_s": 0.0})
            continue
        lo, hi = min(starts), max(ends)
        found = [m for r in records if r.user_message
                 for m in [_TOTALS.search(r.user_message)] if m]
        first_event = min((r.timestamp for r, k in zip(records, kinds, strict=True)
                           if k in recorded and lo <= r.timestamp <= hi), default=hi)
        if found:
            engine = int(found[-1].group(1)) / 1000
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


def child_raw(args: argparse.Namespace) -> dict[str, Any]:
    rss_start = maxrss_kib()
    from seriesgen_pipeline.core.generation import desired_sessions
    from seriesgen_pipeline.core.occurrences import window_for
    from seriesgen_pipeline.core.snapshot import SeriesSnapshot

    engine = create_db_engine(args.database_url)
    now = parse_instant(args.now)
    payloads = json.loads(Path(args.child_snapshots).read_text())
    dialect = engine.dialect.name
    create_raw_table(engine)
    stamp = datetime.now(UTC)
    expand = [0.0]
    series = [0]

    def rows() -> Iterator[tuple[Any, ...]]:
        for payload in payloads:
            t0 = time.perf_counter()
            snap = SeriesSnapshot.from_payload(payload)
            if snap.error is not None or snap.config is None:
                expand[0] += time.perf_counter() - t0
                continue
            if not snap.config.generation_enabled:
                expand[0] += time.perf_counter() - t0
                continue
            wanted = desired_sessions(snap.valid(), window_for(now, snap.config.horizon_days))
            sid, key, chash = snap.spec.id, snap.series_key, snap.config_hash
            batch = [(sid, sid, key, v.occurrence_key, v.branch_id, v.title, v.instructor,
                      v.room, v.capacity, v.timezone, v.starts_at, v.ends_at, "scheduled",
                      False, 0, chash, "bench-raw", stamp, stamp) for v in wanted.sessions]
            series[0] += 1
            expand[0] += time.perf_counter() - t0
            yield from batch

    rss_ready = maxrss_kib()
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        names = ", ".join(name for name, _ in COPY_COLUMNS)
        if dialect == "postgresql":
            statement = f"COPY {RAW_TABLE} ({names}) FROM STDIN (FORMAT BINARY)"
            with dbapi.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
                copy.set_types([kind for _, kind in COPY_COLUMNS])
                for row in rows():
                    copy.write_row(row)
            dbapi.commit()  # type: ignore[union-attr]
            method = "psycopg 3 binary COPY"
        else:
            marks = ", ".join("?" for _ in COPY_COLUMNS)
            cur = dbapi.cursor()  # type: ignore[union-attr]
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany(f"INSERT INTO {RAW_TABLE} ({names}) VALUES ({marks})",
                            (_sqlite_row(r) for r in rows()))
            cur.execute("COMMIT")
            cur.close()
            method = "sqlite3 executemany (one transaction)"
    finally:
        raw.close()
    wall = time.perf_counter() - started
    peak = maxrss_kib()
    written = count_rows(engine, RAW_TABLE)
    engine.dispose()
    return {
        "wall_s": wall, "expand_s": expand[0], "write_s": wall - expand[0],
        "created": written, "updated": 0, "deleted": 0, "protected": 0,
        "series": series[0], "method": method, "peak_rss_kib": peak,
        "rss_start_kib": rss_start, "rss_ready_kib": rss_ready,
    }


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Bind values as SQLAlchemy stores them on SQLite (naive UTC text, 0/1 booleans)."""
    out = list(row)
    for i in (10, 11, 17, 18):
        out[i] = out[i].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    out[13] = int(out[13])
    return tuple(out)


def create_raw_table(engine: sa.Engine) -> None:
    """An empty copy of ``class_sessions`` (columns, defaults, keys and indexes)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE {RAW_TABLE} (LIKE class_sessions INCLUDING ALL)")
            return
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'class_sessions' AND sql IS NOT NULL "
            "ORDER BY type DESC").scalars().all()  # the table first, then its indexes
        for statement in ddl:
            conn.exec_driver_sql(statement.replace("class_sessions", RAW_TABLE))


def drop_raw_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")


# ====================================================================== orchestration

class StepFailed(RuntimeError):
    pass


def run_child(args: argparse.Namespace, step: str, *, now: datetime, workdir: Path,
              env: dict[str, str], snapshots: Path | None = None) -> dict[str, Any]:
    out = workdir / f"{step}.json"
    log_path = workdir / f"{step}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step,
           "--child-out", str(out), "--database-url", args.database_url,
           "--now", format_instant(now), "--series", str(args.series),
           "--horizon-days", str(args.horizon_days), "--dagster-storage", args.dagster_storage]
    if args.run_chunk:
        cmd += ["--run-chunk", str(args.run_chunk)]
    if args.profile:
        cmd += ["--profile", args.profile, "--profile-out", str(Path(args.profile_out).resolve())]
    if snapshots is not None:
        cmd += ["--child-snapshots", str(snapshots)]
    sys.stdout.flush()
    print(f"  ... {LABELS.get(step, step)}", file=sys.stderr, flush=True)
    load_before = round(os.getloadavg()[0], 2)
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.step_timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"step {step} timed out after {args.step_timeout:.0f} s") from exc
    if proc.returncode != 0 or not out.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        raise StepFailed(f"step {step} exited {proc.returncode}:\n" + "\n".join(tail))
    result: dict[str, Any] = json.loads(out.read_text())
    result["load_average_before"] = load_before
    return result


def child_env(args: argparse.Namespace, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    if args.dagster_storage == "ephemeral":
        env.pop("DAGSTER_HOME")
    env["SERIESGEN_ENV"] = "development"
    env.pop("SERIESGEN_NOW", None)
    env.pop("ADMIN_NOTIFY_RECIPIENT", None)
    env["PYTHONUNBUFFERED"] = "1"
    if args.chunk_rows:
        env["SERIESGEN_CHUNK_ROWS"] = str(args.chunk_rows)
    if args.batch_series:
        env["SERIESGEN_BATCH_SERIES"] = str(args.batch_series)
    if args.dagster_storage == "postgres":
        env["DAGSTER_PG_URL"] = args.dagster_postgres_url
    return env


def write_dagster_yaml(home: Path, storage: str) -> None:
    text = (ROOT / "dagster.yaml").read_text()
    if storage == "postgres":
        text = ("storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n\n" + text)
    (home / "dagster.yaml").write_text(text)


def finish_step(result: dict[str, Any]) -> dict[str, Any]:
    """Derived figures of one step."""
    rows = int(result["created"]) + int(result["updated"]) + int(result["deleted"])
    wall = float(result["wall_s"])
    result["rows_written"] = rows
    result["rows_per_s"] = rows / wall if wall > 0 else 0.0
    result["peak_rss_mib"] = result["peak_rss_kib"] / 1024
    if "engine_s" in result:
        dagster = result["launch_s"] + result["dagster_step_s"]
        result["dagster_s"] = dagster
        result["dagster_share"] = dagster / wall if wall > 0 else 0.0
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.scaling_report:
        return scaling_report(args.scaling_report)
    command = masked_command([sys.executable, *sys.argv]) if argv is None else masked_command(
        [sys.executable, __file__, *argv])
    print(f"$ {command}")
    now = parse_instant(args.now)
    warm_now = now + timedelta(days=1)
    engine = create_db_engine(args.database_url)
    dialect = engine.dialect.name
    where = args.dagster_home_parent or tempfile.gettempdir()
    storage = {
        "postgres": "PostgreSQL (dagster-postgres, DAGSTER_PG_URL) under a temporary DAGSTER_HOME",
        "sqlite": f"SQLite (the default instance storage) under a temporary DAGSTER_HOME in "
                  f"{where}",
        "ephemeral": "ephemeral (in-memory) instance, a new one in each step's process; "
                     "partitions re-added every step",
    }[args.dagster_storage]
    print(f"# seriesgen nightly benchmark: N={args.series} series, D={args.horizon_days} days, "
          f"now={format_instant(now)}, seed={args.seed}")
    print(f"# application database: {dialect} {safe_url(engine.url)}")
    print(f"# Dagster instance: {storage}")
    version = code_version()
    print(f"# seriesgen {version}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"# python {platform.python_version()}, {platform.platform()}, "
          f"{os.cpu_count()} CPUs; chunk_rows={args.chunk_rows or 'default'}, "
          f"batch_series={args.batch_series or 'default'}, run_chunk={args.run_chunk or 'default'}")
    analyzing = args.analyze and dialect == "postgresql"
    if dialect == "postgresql":
        print(f"# autovacuum={autovacuum_setting(engine)}; "
              + ("ANALYZE between steps (untimed), as autoanalyze would between nights"
                 if analyzing else "no ANALYZE between steps"))
    args.analyze = analyzing
    refusal = prepare_database(engine, reset=args.reset)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    figures: dict[str, Any] = {
        "command": command, "code_version": version, "load_average_at_start": os.getloadavg(),
        "n_series": args.series, "horizon_days": args.horizon_days,
        "now": format_instant(now), "seed": args.seed, "quick": args.quick,
        "database": {"dialect": dialect, "url": safe_url(engine.url)},
        "dagster_storage": storage, "python": platform.python_version(),
        "cpus": os.cpu_count(), "chunk_rows": args.chunk_rows,
        "batch_series": args.batch_series, "run_chunk": args.run_chunk,
        "analyze_between_steps": analyzing, "autovacuum": autovacuum_setting(engine),
        "steps": {},
        "checks": [],
    }
    sys.stdout.flush()
    print("  ... seeding", file=sys.stderr, flush=True)
    figures["seed_data"] = seed_data(engine, n_series=args.series, horizon=args.horizon_days,
                                     now=now, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="seriesgen-bench-", dir=args.dagster_home_parent))
    home = workdir / "dagster_home"
    home.mkdir()
    write_dagster_yaml(home, args.dagster_storage)
    figures["dagster_home"] = str(home)
    env = child_env(args, home)
    steps: dict[str, dict[str, Any]] = figures["steps"]
    checks: list[dict[str, Any]] = figures["checks"]

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    status = 0
    try:
        if args.dagster_storage == "postgres":
            figures["dagster_prepare"] = run_child(args, "prepare", now=now, workdir=workdir,
                                                   env=env)
        expected = 0
        for step in STEPS:
            if step == "warm":
                figures["protected_marked"] = mark_protected(engine, since=warm_now)
            if step == "edit":
                figures["edited"] = edit_series(engine, seed=args.seed)
            if step != "cold" and args.analyze:
                analyze(engine)
            step_now = now if step == "cold" else warm_now
            result = finish_step(run_child(args, step, now=step_now, workdir=workdir, env=env))
            steps[step] = result
            expected += result["created"] - result["deleted"]
            total = count_rows(engine, "class_sessions")
            check(f"{step}: class_sessions rows = running created - deleted", total == expected,
                  f"{total} rows, expected {expected}")
            check(f"{step}: no failed series", result["failed"] == 0,
                  f"{result['failed']} failed {result['failed_examples']}")
            if step == "cold":
                snaps = workdir / "cold_snapshots.json"
                kept = save_cold_snapshots(engine, result["run_ids"], snaps)
                check("cold: one snapshot per series", kept == args.series,
                      f"{kept} snapshots for {args.series} series")
        raw = finish_step(run_child(args, "raw", now=now, workdir=workdir, env=env,
                                    snapshots=workdir / "cold_snapshots.json"))
        steps["raw"] = raw
        drop_raw_table(engine)
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        engine.dispose()
        if not args.keep_dagster_home:
            shutil.rmtree(workdir, ignore_errors=True)
    if status == 0:
        cold, noop, warm, edit = steps["cold"], steps["noop"], steps["warm"], steps["edit"]
        check("cold: rows written > 0", cold["rows_written"] > 0, str(cold["rows_written"]))
        check("warm: rows written > 0", warm["created"] > 0, str(warm["rows_written"]))
        check("no-op: zero rows written", noop["rows_written"] == 0, str(noop["rows_written"]))
        check("edit: updates or deletes written", edit["updated"] + edit["deleted"] > 0,
              f"updated {edit['updated']}, deleted {edit['deleted']}")
        check("later steps meet protected rows", edit["protected"] > 0,
              f"{edit['protected']} protected in the edit run")
        check("raw baseline rows = cold created", raw["created"] == cold["created"],
              f"{raw['created']} vs {cold['created']}")
        figures["ratios"] = {
            "cold_over_raw": cold["wall_s"] / raw["wall_s"] if raw["wall_s"] else None,
            "engine_cold_over_raw": cold["engine_s"] / raw["wall_s"] if raw["wall_s"] else None,
        }
        figures["targets"] = evaluate_targets(figures)
    print_report(figures)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if status == 0 and not all(c["ok"] for c in checks):
        status = 1
    return status


def evaluate_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    steps = figures["steps"]
    at_scale = (figures["n_series"], figures["horizon_days"]) == TARGET_SCALE
    applies = at_scale and figures["database"]["dialect"] == "postgresql"
    out = []
    for step, limit in TARGETS.items():
        value = steps[step]["wall_s"]
        out.append({"target": f"{LABELS[step]} <= {limit:.0f} s", "value": round(value, 2),
                    "met": value <= limit, "applies": applies})
    ratio = figures["ratios"]["engine_cold_over_raw"]
    out.append({"target": f"engine (cold) / raw baseline <= {ENGINE_OVER_RAW_TARGET:.0f}x",
                "value": round(ratio, 2) if ratio is not None else None,
                "met": ratio is not None and ratio <= ENGINE_OVER_RAW_TARGET, "applies": applies})
    peak = max(s["peak_rss_mib"] for s in steps.values())
    out.append({"target": f"peak RSS <= {PEAK_RSS_TARGET_MIB:.0f} MiB", "value": round(peak, 1),
                "met": peak <= PEAK_RSS_TARGET_MIB, "applies": applies})
    return out


# ====================================================================== output

def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def print_report(figures: dict[str, Any]) -> None:
    seeded = figures.get("seed_data", {})
    if seeded:
        print(f"# seeded in {seeded['seconds']:.2f} s: {seeded['series']} series, "
              f"{seeded['branches']} branches in {seeded['zones']} zones, "
              f"{seeded['series_configs']} series-scope configs, "
              f"{seeded['series_with_exdates']} with exdates, "
              f"{seeded['series_with_end_date']} with end dates; rules {seeded['rules']}")
    if "protected_marked" in figures:
        print(f"# after cold, marked protected by raw SQL: {figures['protected_marked']}")
    if "edited" in figures:
        print(f"# edited by raw SQL before the edit run: {figures['edited']}")
    steps = figures["steps"]
    rows = []
    for step in (*STEPS, "raw"):
        if step not in steps:
            continue
        s = steps[step]
        if step == "raw":
            split = [f"expand {s['expand_s']:.2f}", f"write {s['write_s']:.2f}", "-", "-", "-"]
        else:
            split = [f"{s['engine_s']:.2f}", f"{s['launch_s']:.2f}",
                     f"{s['dagster_step_s']:.2f}",
                     f"{100 * s['dagster_share']:.1f}%", str(s["runs"])]
        rows.append([
            LABELS[step] + (" [profiled]" if s.get("profiled") else ""),
            f"{s['wall_s']:.2f}", str(s["rows_written"]), str(s["created"]),
            str(s["updated"]), str(s["deleted"]), str(s["protected"]),
            f"{s['rows_per_s']:.0f}", f"{s['peak_rss_mib']:.0f}", *split,
        ])
    if rows:
        print()
        print(_table(["step", "wall s", "rows written", "created", "updated", "deleted",
                      "protected", "rows/s", "peak RSS MiB", "engine s", "launch s",
                      "in-step s", "dagster %", "runs"], rows))
        print("  peak RSS: per step, the child process' high-water mark (ru_maxrss), "
              "interpreter and imports included")
        print("  engine s = the asset's own duration_ms; in-step s = step span - engine s; "
              "launch s = wall - step spans; dagster % = (launch + in-step) / wall")
        print("  raw baseline: the engine s / launch s columns hold its expand / write seconds "
              "(write = the part of the wall not spent expanding)")
        print("  1-minute load average before each step: " + ", ".join(
            f"{LABELS[k]} {v['load_average_before']}" for k, v in steps.items()
            if "load_average_before" in v))
    ratios = figures.get("ratios")
    if ratios:
        raw = steps["raw"]
        print(f"\n  raw baseline: {raw['method']}; cold / raw = {ratios['cold_over_raw']:.2f}x, "
              f"engine (cold) / raw = {ratios['engine_cold_over_raw']:.2f}x")
    targets = figures.get("targets")
    if targets:
        applies = targets[0]["applies"]
        print("\n  targets (N=10,000, D=365, PostgreSQL)"
              + ("" if applies else " - informative only at this scale/database") + ":")
        for t in targets:
            print(f"    {'met   ' if t['met'] else 'MISSED'}  {t['target']}: {t['value']}")
    if figures["checks"]:
        print("\n  checks:")
        for c in figures["checks"]:
            print(f"    {'ok  ' if c['ok'] else 'FAIL'}  {c['check']} ({c['detail']})")


def scaling_report(paths: list[str]) -> int:
    """Steps across several --json files (e.g. N = 1k, 3k, 10k): is the cost linear?"""
    runs = sorted((json.loads(Path(p).read_text()) for p in paths), key=lambda f: f["n_series"])
    rows = []
    for f in runs:
        s, n = f["steps"], f["n_series"]
        cold_rows = max(1, s["cold"]["rows_written"])
        rows.append([
            f"{n}", f["database"]["dialect"], f"{f['horizon_days']}",
            str(f.get("code_version", "?")).split()[0], f"{cold_rows}",
            f"{s['cold']['wall_s']:.1f}", f"{1e6 * s['cold']['wall_s'] / cold_rows:.0f}",
            f"{1e6 * s['cold']['engine_s'] / cold_rows:.0f}",
            f"{s['warm']['wall_s']:.1f}", f"{1000 * s['warm']['wall_s'] / n:.1f}",
            f"{s['noop']['wall_s']:.1f}", f"{1000 * s['noop']['wall_s'] / n:.1f}",
            f"{1000 * s['noop']['engine_s'] / n:.1f}",
            f"{s['edit']['wall_s']:.1f}", f"{s['raw']['wall_s']:.1f}",
            f"{max(x['peak_rss_mib'] for x in s.values()):.0f}",
        ])
    print(_table(["N", "db", "D", "code", "cold rows", "cold s", "cold us/row",
                  "engine us/row", "warm s", "warm ms/series", "no-op s", "no-op ms/series",
                  "no-op engine ms/series",
                  "edit s", "raw s", "peak MiB"], rows))
    print("  linear scaling keeps the per-row and per-series columns flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
