"""Nightly-generation benchmark of seriesgen (SPEC §11, NFR-001).

Usage::

    .venv/bin/python benchmarks/nightly.py --series 10000 --horizon-days 365 \\
        --database-url postgresql://postgres@127.0.0.1/sg_bench [--reset] [--json out.json]
    .venv/bin/python benchmarks/nightly.py --quick --database-url sqlite:////tmp/b.db

It is a plain script that prints a table, not a timed test. In one invocation it

0. seeds synthetic data (``seeding.py``) with bulk SQLAlchemy Core inserts straight
   into ``branches``, ``scheduling_configs`` and ``class_series`` (not via the
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
5. **raw baseline** (``raw_baseline.py``) - the very snapshots the cold run stored,
   expanded by the core (``desired_sessions``) and written with the package's own
   row layout into an empty copy of ``class_sessions`` (``CREATE TABLE bench_raw
   (LIKE class_sessions INCLUDING ALL)``) with one psycopg 3 binary ``COPY``
   (``repo.copy_rows``); no Dagster, no locks, no reconciliation. On SQLite the copy
   table is made from ``class_sessions``' own DDL (same indexes) and the rows go in
   with one ``executemany`` on the raw sqlite3 connection, in one transaction.

Steps 1-4 call ``seriesgen_pipeline.defs.launch.run_generation(keys=None,
now=...)``: partition sync, then ranged in-process runs of
``series_generation_job`` - the same job, asset step and range tags the nightly
schedule launches. A range holds ``SERIESGEN_RUN_CHUNK`` keys: ``--run-chunk`` sets
that variable in the steps' environment; without it the variable is unset there and
the CLI's default applies.

How the figures are measured
----------------------------

* **Each step runs in its own child process** (``steps.py``: this script re-invoked
  with a hidden ``--child`` flag, its figures handed back as JSON), as a nightly run
  would. ``peak RSS`` is that child's ``getrusage(RUSAGE_SELF).ru_maxrss`` - a
  per-step high-water mark that includes the interpreter and the Dagster import
  (~90 MiB before any work; ``rss at start`` in the JSON).
* **wall s** is ``time.perf_counter()`` around ``run_generation`` in the child
  (imports, engine creation and the analysis below are outside it).
* **rows written** = created + updated + deleted session rows, as the run
  reports them (read back from ``generation_log``); ``rows/s`` = rows written
  / wall. ``protected`` is the run's protected count.
* **engine vs Dagster** (``event_log.py``). Nothing is patched: the steps run the
  product's code as it is, configured through the environment. After the step, the
  child reads every run's event log from the instance. A run's step span is
  ``STEP_START`` -> ``STEP_SUCCESS``/``STEP_FAILURE``. **engine s** is the
  asset's own ``duration_ms``, which it measures with ``perf_counter`` from its
  first line through snapshots, generation (expansion, planning, writes,
  conflicts, notifications), retirement and the generation log, and records in
  the run's ``generation_report`` observation (read back from the event log);
  should that observation be missing, the span up to the first recorded event is
  used instead.
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
  ``ANALYZE`` (untimed) before every step after cold, in the application database
  and in Dagster's PostgreSQL storage; ``--no-analyze`` turns it off (without
  statistics after the cold bulk load, the planner scans all of ``class_sessions``
  for every batch of series; a reused Dagster database keeps the statistics of the
  rows the script wiped, and its partition reads took 8 s more per run). The
  header shows the server's ``autovacuum`` setting.
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
import shutil
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    TARGET_SCALE,
    add_shared_args,
    check_scale,
    masked_command,
    progress,
)
from benchmarks.databases import (  # noqa: E402
    analyze,
    analyze_url,
    count_rows,
    prepare_database,
)
from benchmarks.raw_baseline import drop_raw_table, save_cold_snapshots  # noqa: E402
from benchmarks.report import (  # noqa: E402
    evaluate_targets,
    print_header,
    print_report,
    scaling_report,
    write_json,
)
from benchmarks.seeding import edit_series, mark_protected, seed_data  # noqa: E402
from benchmarks.steps import (  # noqa: E402
    STEPS,
    StepFailed,
    child_env,
    child_main,
    finish_step,
    run_child,
    write_dagster_yaml,
)
from seriesgen_pipeline.core.clock import parse_instant  # noqa: E402
from seriesgen_pipeline.persistence.db import create_db_engine  # noqa: E402

QUICK_SERIES = 500
QUICK_HORIZON = 90


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options (``--help``), checked; the scale's defaults depend on ``--quick``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shared_args(p, series=None, horizon_days=None)
    p.add_argument("--database-url", help="an empty or disposable application database")
    p.add_argument("--quick", action="store_true",
                   help=f"CI smoke: N={QUICK_SERIES}, D={QUICK_HORIZON} unless given")
    p.add_argument("--reset", action="store_true",
                   help="drop every table of the database and recreate the schema first")
    p.add_argument("--dagster-storage", choices=("sqlite", "postgres", "ephemeral"),
                   default=None,
                   help="Dagster instance: sqlite (a temporary DAGSTER_HOME, the default), "
                        "postgres (dagster-postgres), or ephemeral (in memory, one per step; "
                        "the --quick default)")
    p.add_argument("--dagster-postgres-url",
                   help="postgresql+psycopg2://... of a disposable database for the instance")
    p.add_argument("--run-chunk", type=int, default=None,
                   help="partition keys per ranged run, as SERIESGEN_RUN_CHUNK "
                        "(default: the CLI's own)")
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
                   help="PostgreSQL: do not ANALYZE the application database (nor Dagster's "
                        "PostgreSQL storage) between steps")
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
    check_scale(p, args)
    if args.dagster_storage == "postgres" and not args.dagster_postgres_url and not args.child:
        p.error("--dagster-storage postgres needs --dagster-postgres-url")
    return args


def run_steps(args: argparse.Namespace, engine: sa.Engine, figures: dict[str, Any], *,
              now: datetime, workdir: Path) -> None:
    """The four nights and the raw baseline, each checked as it ends."""
    env = child_env(args, workdir / "dagster_home")
    steps: dict[str, dict[str, Any]] = figures["steps"]
    warm_now = now + timedelta(days=1)
    if args.dagster_storage == "postgres":
        figures["dagster_prepare"] = run_child(args, "prepare", now=now, workdir=workdir, env=env)
    expected = 0
    for step in STEPS:
        if step == "warm":
            figures["protected_marked"] = mark_protected(engine, since=warm_now)
        if step == "edit":
            figures["edited"] = edit_series(engine, seed=args.seed)
        if step != "cold" and args.analyze:
            analyze(engine)
            if args.dagster_storage == "postgres":
                analyze_url(args.dagster_postgres_url)
        step_now = now if step == "cold" else warm_now
        result = finish_step(run_child(args, step, now=step_now, workdir=workdir, env=env))
        steps[step] = result
        expected += result["created"] - result["deleted"]
        total = count_rows(engine, "class_sessions")
        check(figures, f"{step}: class_sessions rows = running created - deleted",
              total == expected, f"{total} rows, expected {expected}")
        check(figures, f"{step}: no failed series", result["failed"] == 0,
              f"{result['failed']} failed {result['failed_examples']}")
        if step == "cold":
            kept = save_cold_snapshots(engine, result["run_ids"], workdir / "cold_snapshots.json")
            check(figures, "cold: one snapshot per series", kept == args.series,
                  f"{kept} snapshots for {args.series} series")
    steps["raw"] = finish_step(run_child(args, "raw", now=now, workdir=workdir, env=env,
                                         snapshots=workdir / "cold_snapshots.json"))
    drop_raw_table(engine)


def check(figures: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    """Record a correctness check."""
    figures["checks"].append({"check": name, "ok": bool(ok), "detail": detail})


def check_steps(figures: dict[str, Any]) -> None:
    """The checks across steps, the ratios to the raw baseline, the targets."""
    steps = figures["steps"]
    cold, noop, warm, edit, raw = (steps[s] for s in ("cold", "noop", "warm", "edit", "raw"))
    check(figures, "cold: rows written > 0", cold["rows_written"] > 0, str(cold["rows_written"]))
    check(figures, "warm: rows written > 0", warm["created"] > 0, str(warm["rows_written"]))
    check(figures, "no-op: zero rows written", noop["rows_written"] == 0,
          str(noop["rows_written"]))
    check(figures, "edit: updates or deletes written", edit["updated"] + edit["deleted"] > 0,
          f"updated {edit['updated']}, deleted {edit['deleted']}")
    check(figures, "later steps meet protected rows", edit["protected"] > 0,
          f"{edit['protected']} protected in the edit run")
    check(figures, "raw baseline rows = cold created", raw["created"] == cold["created"],
          f"{raw['created']} vs {cold['created']}")
    figures["ratios"] = {
        "cold_over_raw": cold["wall_s"] / raw["wall_s"] if raw["wall_s"] else None,
        "engine_cold_over_raw": cold["engine_s"] / raw["wall_s"] if raw["wall_s"] else None,
    }
    figures["targets"] = evaluate_targets(figures)


def main(argv: list[str] | None = None) -> int:
    """Seed, run the steps, check, report; the exit status (module docstring)."""
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.scaling_report:
        return scaling_report(args.scaling_report)
    command = masked_command([sys.executable, *sys.argv]) if argv is None else masked_command(
        [sys.executable, __file__, *argv])
    print(f"$ {command}")
    now = parse_instant(args.now)
    engine = create_db_engine(args.database_url)
    figures = {"command": command, **print_header(args, engine, now)}
    args.analyze = figures["analyze_between_steps"]
    refusal = prepare_database(engine, reset=args.reset)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    progress("seeding")
    figures["seed_data"] = seed_data(engine, n_series=args.series, horizon=args.horizon_days,
                                     now=now, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="seriesgen-bench-", dir=args.dagster_home_parent))
    home = workdir / "dagster_home"
    home.mkdir()
    write_dagster_yaml(home, args.dagster_storage)
    figures["dagster_home"] = str(home)
    status = 0
    try:
        run_steps(args, engine, figures, now=now, workdir=workdir)
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        engine.dispose()
        if not args.keep_dagster_home:
            shutil.rmtree(workdir, ignore_errors=True)
    if status == 0:
        check_steps(figures)
    print_report(figures)
    if args.json_out:
        write_json(args.json_out, figures)
    if status == 0 and not all(c["ok"] for c in figures["checks"]):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
