"""``nightly.py``'s steps, each in a child process of its own, as a nightly run would be.

The parent re-invokes ``nightly.py`` with the hidden ``--child STEP`` flag; the child
runs the step and writes its figures as JSON to ``--child-out``, which the parent reads
back (a step that exits non-zero or writes nothing fails the benchmark with the tail
of its log). What a step is given comes through its command line and its environment
(``child_env``): ``DAGSTER_HOME`` (or none, for an ephemeral instance),
``SERIESGEN_RUN_CHUNK`` only with ``--run-chunk`` (else the CLI's default applies),
``SERIESGEN_CHUNK_ROWS`` and ``SERIESGEN_BATCH_SERIES`` from ``--chunk-rows`` and
``--batch-series``, and ``DAGSTER_PG_URL`` for dagster-postgres storage. Nothing in
the product is patched.

* **prepare** wipes the runs, asset events and ``class_series`` partitions of a
  dagster-postgres instance;
* **cold**, **warm**, **noop**, **edit** call ``run_generation(keys=None, now=...)``:
  partition sync, then ranged in-process runs of ``series_generation_job``;
* **raw** is the raw baseline (``raw_baseline.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, BenchmarkError, maxrss_kib, progress
from benchmarks.raw_baseline import run_raw_baseline
from seriesgen_pipeline.core.clock import format_instant, parse_instant

NIGHTLY = Path(__file__).resolve().with_name("nightly.py")
STEPS = ("cold", "warm", "noop", "edit")
LABELS = {"cold": "cold", "warm": "warm (+1 day)", "noop": "no-op", "edit": "edit 10%",
          "raw": "raw baseline"}


class StepFailed(BenchmarkError):
    """A step's process timed out, failed, or wrote no figures."""


# ====================================================================== in the parent

def run_child(args: argparse.Namespace, step: str, *, now: datetime, workdir: Path,
              env: dict[str, str], snapshots: Path | None = None) -> dict[str, Any]:
    """Run ``step`` in a child process; the figures it wrote."""
    out = workdir / f"{step}.json"
    log_path = workdir / f"{step}.log"
    cmd = [sys.executable, str(NIGHTLY), "--child", step,
           "--child-out", str(out), "--database-url", args.database_url,
           "--now", format_instant(now), "--series", str(args.series),
           "--horizon-days", str(args.horizon_days), "--dagster-storage", args.dagster_storage]
    if args.profile:
        cmd += ["--profile", args.profile, "--profile-out", str(Path(args.profile_out).resolve())]
    if snapshots is not None:
        cmd += ["--child-snapshots", str(snapshots)]
    progress(LABELS.get(step, step))
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
    """The steps' environment: this one, with the benchmark's settings and nothing stray."""
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    if args.dagster_storage == "ephemeral":
        env.pop("DAGSTER_HOME")
    env["SERIESGEN_ENV"] = "development"
    for name in ("SERIESGEN_NOW", "ADMIN_NOTIFY_RECIPIENT", "SERIESGEN_RUN_CHUNK"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in (("SERIESGEN_RUN_CHUNK", args.run_chunk),
                        ("SERIESGEN_CHUNK_ROWS", args.chunk_rows),
                        ("SERIESGEN_BATCH_SERIES", args.batch_series)):
        if value:
            env[name] = str(value)
    if args.dagster_storage == "postgres":
        env["DAGSTER_PG_URL"] = args.dagster_postgres_url
    return env


def write_dagster_yaml(home: Path, storage: str) -> None:
    """The project's ``dagster.yaml``, with dagster-postgres storage for ``postgres``."""
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


# ====================================================================== in the child

def child_main(args: argparse.Namespace) -> int:
    """One step in this process; figures go to ``--child-out`` as JSON."""
    if args.child == "prepare":
        result = child_prepare()
    elif args.child == "raw":
        result = run_raw_baseline(args.database_url, now=parse_instant(args.now),
                                  snapshots=Path(args.child_snapshots))
    else:
        result = child_generate(args)
    Path(args.child_out).write_text(json.dumps(result))
    return 0


def child_prepare() -> dict[str, Any]:
    """Empty the dagster-postgres instance of earlier runs, events and partitions."""
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
    """One night through ``run_generation``, timed, with its Dagster split."""
    rss_start = maxrss_kib()
    import dagster as dg

    from benchmarks.event_log import dagster_split
    from seriesgen_pipeline.defs import launch
    from seriesgen_pipeline.persistence.db import create_db_engine
    from seriesgen_pipeline.service.settings import Settings

    engine = create_db_engine(args.database_url)
    # The rest (DAGSTER_HOME, SERIESGEN_RUN_CHUNK, the sizes) comes from the environment.
    settings = Settings.from_env(database_url=args.database_url, environment="development",
                                 enable_generation=True)
    now = parse_instant(args.now)
    # A DAGSTER_HOME instance is opened by run_generation itself, as the CLI does; an
    # ephemeral one is passed in, so that its event log can be read afterwards.
    ephemeral = dg.DagsterInstance.ephemeral() if args.dagster_storage == "ephemeral" else None
    profiler = _start_profiler() if args.child in (args.profile or "").split(",") else None
    rss_ready = maxrss_kib()
    started = time.perf_counter()
    report = launch.run_generation(engine, settings, keys=None, now=now, instance=ephemeral)
    wall = time.perf_counter() - started
    peak = maxrss_kib()
    if profiler is not None:
        _save_profile(profiler, profile_path(args.profile_out, args.child))
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


def profile_path(template: str, step: str) -> str:
    """``prof.txt`` -> ``prof.cold.txt``."""
    path = Path(template)
    return str(path.with_name(f"{path.stem}.{step}{path.suffix or '.txt'}"))


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002)
    profiler.start()
    return profiler


def _save_profile(profiler: Any, path: str) -> None:
    """The call tree, then self time by function."""
    profiler.stop()
    options = {"filter_threshold": 0.005}
    tree = profiler.output_text(unicode=False, color=False, processor_options=options)
    flat = profiler.output_text(unicode=False, color=False, flat=True, processor_options=options)
    Path(path).write_text(f"{tree}\n\n# self time by function\n{flat}")
