"""``nightly.py``'s report: header, step table, targets, checks, JSON, the scaling table.

The tables are the package's own plain-text tables (``text_table`` with ``figures``:
every column but the first aligned right). ``print_checks`` and ``write_json`` serve
``daemon_night.py`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import TARGET_SCALE, code_version
from benchmarks.databases import autovacuum_setting
from benchmarks.steps import LABELS, STEPS
from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.persistence.db import safe_url
from seriesgen_pipeline.service.text_table import text_table

TARGETS = {  # step -> wall seconds, at N=10,000 and D=365 on PostgreSQL
    "cold": 180.0, "warm": 60.0, "noop": 30.0, "edit": 60.0,
}
ENGINE_OVER_RAW_TARGET = 2.0
PEAK_RSS_TARGET_MIB = 2048.0
STEP_HEADER = ["step", "wall s", "rows written", "created", "updated", "deleted", "protected",
               "rows/s", "peak RSS MiB", "engine s", "launch s", "in-step s", "dagster %",
               "runs"]
SCALING_HEADER = ["N", "db", "D", "code", "cold rows", "cold s", "cold us/row",
                  "engine us/row", "warm s", "warm ms/series", "no-op s", "no-op ms/series",
                  "no-op engine ms/series", "edit s", "raw s", "peak MiB"]


def write_json(path: str, figures: dict[str, Any]) -> None:
    """Every figure, as JSON (what is not JSON, as text)."""
    Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n")


def print_checks(checks: list[dict[str, Any]]) -> None:
    """The correctness checks, ok or FAIL, with what each found."""
    if checks:
        print("\n  checks:")
        for c in checks:
            print(f"    {'ok  ' if c['ok'] else 'FAIL'}  {c['check']} ({c['detail']})")


def print_header(args: argparse.Namespace, engine: sa.Engine, now: datetime) -> dict[str, Any]:
    """The header lines; the figures that describe the run (``analyze_between_steps``: the
    untimed ``ANALYZE`` runs, on PostgreSQL unless ``--no-analyze``)."""
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
    return {
        "code_version": version, "load_average_at_start": os.getloadavg(),
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


def evaluate_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, its value and whether it is met; they apply at the target scale only."""
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


def _step_row(step: str, s: dict[str, Any]) -> list[str]:
    if step == "raw":
        split = [f"expand {s['expand_s']:.2f}", f"write {s['write_s']:.2f}", "-", "-", "-"]
    else:
        split = [f"{s['engine_s']:.2f}", f"{s['launch_s']:.2f}", f"{s['dagster_step_s']:.2f}",
                 f"{100 * s['dagster_share']:.1f}%", str(s["runs"])]
    return [
        LABELS[step] + (" [profiled]" if s.get("profiled") else ""),
        f"{s['wall_s']:.2f}", str(s["rows_written"]), str(s["created"]),
        str(s["updated"]), str(s["deleted"]), str(s["protected"]),
        f"{s['rows_per_s']:.0f}", f"{s['peak_rss_mib']:.0f}", *split,
    ]


def _print_steps(steps: dict[str, dict[str, Any]]) -> None:
    rows = [_step_row(step, steps[step]) for step in (*STEPS, "raw") if step in steps]
    if not rows:
        return
    print()
    print(text_table(STEP_HEADER, rows, figures=True))
    print("  peak RSS: per step, the child process' high-water mark (ru_maxrss), "
          "interpreter and imports included")
    print("  engine s = the asset's own duration_ms; in-step s = step span - engine s; "
          "launch s = wall - step spans; dagster % = (launch + in-step) / wall")
    print("  raw baseline: the engine s / launch s columns hold its expand / write seconds "
          "(write = the part of the wall not spent expanding)")
    print("  1-minute load average before each step: " + ", ".join(
        f"{LABELS[k]} {v['load_average_before']}" for k, v in steps.items()
        if "load_average_before" in v))


def print_report(figures: dict[str, Any]) -> None:
    """What was seeded and edited, the step table, the ratios, the targets, the checks."""
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
    _print_steps(steps)
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
    print_checks(figures["checks"])


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
    print(text_table(SCALING_HEADER, rows, figures=True))
    print("  linear scaling keeps the per-row and per-series columns flat")
    return 0
