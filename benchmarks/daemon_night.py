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
* The application database is migrated and seeded with the synthetic data of
  ``seeding.py`` that ``nightly.py`` seeds too (same ``--seed``, same series).
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
   series (the deployment's default: 2,500, or a tenth of the series above 25,000;
   ``--run-chunk`` sets it); the step
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
* **engine s** - the asset's own ``duration_ms`` (its ``generation_report``
  observation in the run's event log), summed over the runs; **step s** -
  ``STEP_START`` -> ``STEP_SUCCESS`` or ``STEP_FAILURE``, summed
  (``event_log.dagster_split``, as in ``nightly.py``).
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

The code: ``daemon_round.py`` (a round of nights), ``daemon_process.py`` (the daemon
and its instance file), ``night_figures.py`` and ``event_log.py`` (the measuring),
``daemon_report.py`` (the tables), with ``seeding.py``, ``databases.py`` and
``common.py`` shared with ``nightly.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common, daemon_report, daemon_round, report  # noqa: E402
from seriesgen_pipeline.persistence.db import normalize_url  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options (``--help``), checked; ``concurrency_values`` from ``--concurrency``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_shared_args(p, series=common.TARGET_SCALE[0], horizon_days=common.TARGET_SCALE[1])
    p.add_argument("--concurrency", default=None, metavar="K[,K...]",
                   help="the seriesgen/generation run limit; several values (e.g. 1,2) run "
                        "the whole benchmark once per value on fresh databases and compare "
                        "(default: deploy/dagster.yaml's limit)")
    p.add_argument("--dequeue-interval", type=int, default=None, metavar="S",
                   help="the run queue's dequeue_interval_seconds (default: the file's, "
                        "else Dagster's 5)")
    p.add_argument("--run-chunk", type=int, default=None,
                   help="SERIESGEN_RUN_CHUNK: series per run of the sensor and the schedule "
                        "(default: the deployment's, 2,500, or a tenth of the series above 25,000)")
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
    common.check_scale(p, args)
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



def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (and SIGINT) as Ctrl-C: the round's clean-up runs."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The rounds, their reports, the comparison and JSON; the exit status (docstring)."""
    args = parse_args(argv)
    # Both interrupt the benchmark (its daemons stopped, its databases dropped), also
    # when it was started in the background with SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    command = common.masked_command([sys.executable, __file__,
                                     *(sys.argv[1:] if argv is None else argv)])
    print(f"$ {command}")
    print(f"# seriesgen production-path benchmark: N={args.series} series, "
          f"D={args.horizon_days} days, now={args.now}, seed={args.seed}, "
          f"run chunk {args.run_chunk or 'default (run_size)'}")
    print(f"# seriesgen {common.code_version()}; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    at_scale = (args.series, args.horizon_days) == common.TARGET_SCALE
    rounds: list[daemon_round.Round] = []
    status = 0
    try:
        for value in args.concurrency_values:
            rnd = daemon_round.Round(args=args, concurrency=value)
            rounds.append(rnd)
            try:
                daemon_round.run_round(args, rnd)
            except common.BenchmarkError as exc:
                print(f"error: {exc}", file=sys.stderr)
                status = 2 if str(exc).startswith("refused") else 1
            except sa.exc.OperationalError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                print(f"error: PostgreSQL: {reason}", file=sys.stderr)
                status = 2
            print()
            daemon_report.print_round(rnd, at_scale)
            if status:
                break
    except KeyboardInterrupt:
        print("interrupted: the daemon was stopped and the databases made here dropped",
              file=sys.stderr)
        return 130
    if len(rounds) > 1:
        daemon_report.print_comparison(rounds)
    if args.json_out:
        out = {"command": command, "n_series": args.series, "horizon_days": args.horizon_days,
               "now": args.now, "seed": args.seed, "run_chunk": args.run_chunk,
               "cpus": os.cpu_count(), "code_version": common.code_version(),
               "targets": daemon_round.TARGETS, "targets_apply": at_scale,
               "rounds": [{**r.figures, "checks": r.checks} for r in rounds]}
        report.write_json(args.json_out, out)
    if status == 0 and not all(c["ok"] for r in rounds for c in r.checks):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
