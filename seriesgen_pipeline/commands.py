"""What each ``seriesgen`` command does and prints (``cli`` parses and reports errors).

Human output is tables and sentences; ``--format json`` and ``csv`` print the
document SPEC §9 fixes, alone on standard output.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.core.errors import SeriesgenError
from seriesgen_pipeline.persistence import listing
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import (
    create_db_engine,
    safe_url,
    schema_is_current,
    upgrade_database,
)
from seriesgen_pipeline.service.settings import Settings, parse_now
from seriesgen_pipeline.service.text_table import text_table

DEMO_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXIT_INTERRUPTED = 130


class UsageError(SeriesgenError):
    """Bad usage or input: exit code 2."""


def ready_engine(settings: Settings) -> sa.Engine:
    """The application database, which must exist and be migrated (nothing is created)."""
    engine = create_db_engine(settings.database_url, create=False)
    if not schema_is_current(engine):
        raise UsageError(f"the database {safe_url(settings.database_url)} is not migrated; "
                         "run `seriesgen db upgrade` first")
    return engine


def load_command(engine: sa.Engine, settings: Settings, path: Path) -> int:
    """``seriesgen load FILE``."""
    from seriesgen_pipeline.service.loading import load_file

    settings.check_writes()
    summary = load_file(engine, path)
    print(f"loaded {path}: {_load_sentence(summary.as_dict())}", file=sys.stderr)
    return 0


def _load_sentence(counts: dict[str, int]) -> str:
    """``LoadSummary`` counts as a sentence for people."""
    return (f"branches {counts['branches_created']} created, {counts['branches_updated']} "
            f"updated; series {counts['series_created']} created, "
            f"{counts['series_updated']} updated, {counts['series_unchanged']} unchanged; "
            f"{counts['configs_written']} configuration scope(s) written")


def _totals_line(totals: dict[str, int], duration_ms: int) -> str:
    """A run's totals as a line for people (JSON output keeps the object)."""
    parts = [f"{totals['series']} series", f"{totals['created']} created",
             f"{totals['updated']} updated", f"{totals['deleted']} deleted",
             f"{totals['protected']} protected", f"{totals['failed']} failed",
             f"{totals.get('skipped', 0)} skipped"]
    if "interrupted" in totals:
        parts.append(f"{totals['interrupted']} interrupted")
    return f"totals: {', '.join(parts)} in {duration_ms:,} ms"


def _resolve_now(settings: Settings, text: str | None) -> datetime:
    return parse_now(text) if text is not None else settings.now()


def generate_command(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> int:
    """``seriesgen generate`` (through Dagster), or ``--dry-run`` (the engine, no writes)."""
    now = _resolve_now(settings, args.now)
    with engine.connect() as conn:
        known = repo.series_keys(conn)
    keys = None
    if args.series:
        unknown = [k for k in args.series if k not in set(known)]
        if unknown:
            raise UsageError(f"unknown series: {', '.join(unknown)}")
        keys = list(dict.fromkeys(args.series))
    if args.dry_run:
        document = _dry_run(engine, keys, now)
        failed = any(s["status"] == "failed" for s in document["series"])
    else:
        from seriesgen_pipeline.defs.launch import run_generation

        settings.check_writes()
        report = run_generation(engine, settings, keys=keys, now=now)
        document = {"run_id": report.run_ids[0] if report.run_ids else None,
                    "run_ids": report.run_ids, "now": format_instant(now),
                    "series": report.series, "totals": report.totals(),
                    "duration_ms": report.duration_ms}
        failed = bool(report.failed)
        for run_id, cause in report.run_failures.items():
            print(f"seriesgen: error: run {run_id} failed: {cause}", file=sys.stderr)
        if report.interrupted:
            document["interrupted"] = True
    if args.format == "json":
        print(json.dumps(document, indent=2, default=str))
    else:
        print(_series_table(document["series"]))
        print(_totals_line(document["totals"], document["duration_ms"])
              + (" (dry run: nothing written)" if args.dry_run else ""))
    if document.get("interrupted"):
        done = sum(1 for s in document["series"] if s["status"] in ("success", "committed"))
        print(f"seriesgen: interrupted: {done} of {len(document['series'])} series were "
              "committed; run the same command again to complete the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if failed else 0


def _dry_run(engine: sa.Engine, keys: list[str] | None, now: datetime) -> dict[str, Any]:
    from seriesgen_pipeline.service import engine as eng
    from seriesgen_pipeline.service.reporting import totals

    started = datetime.now(UTC)
    snaps = eng.take_snapshots(engine, keys=keys, now=now, run_id="dry-run", store=False)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id="dry-run", dry_run=True)
    return {
        "run_id": None, "dry_run": True, "now": format_instant(now),
        "series": [{"key": o.series_key, "status": str(o.status), **o.counts(), "error": o.error}
                   for o in outcomes],
        "totals": totals(outcomes),
        "duration_ms": round((datetime.now(UTC) - started).total_seconds() * 1000),
    }


def _report_unreadable(rows: list[str]) -> int:
    """Say which rows were left out of a listing; exit 1 when some were."""
    for line in rows[:20]:
        print(f"seriesgen: unreadable row left out: {line}", file=sys.stderr)
    if len(rows) > 20:
        print(f"seriesgen: … and {len(rows) - 20} more unreadable rows", file=sys.stderr)
    return 1 if rows else 0


def sessions_command(engine: sa.Engine, args: argparse.Namespace) -> int:
    """``seriesgen sessions``."""
    with engine.connect() as conn:
        found = listing.list_sessions(conn, series=args.series, branch=args.branch,
                                      date_from=args.date_from, date_to=args.date_to)
    docs = found.documents
    if args.format == "json":
        print(json.dumps(docs, indent=2))
    elif args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(listing.SESSION_FIELDS),
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: (str(v).lower() if isinstance(v, bool) else v)
                          for k, v in doc.items()} for doc in docs)
        sys.stdout.write(buffer.getvalue())
    else:
        columns = ["series_key", "occurrence_key", "local_start", "starts_at", "room",
                   "instructor", "capacity", "status", "booked_count"]
        print(text_table(columns, [[d[c] for c in columns] for d in docs]))
        print(f"{len(docs)} session(s)")
    return _report_unreadable(found.unreadable)


def conflicts_command(engine: sa.Engine, fmt: str) -> int:
    """``seriesgen conflicts``."""
    with engine.connect() as conn:
        found = listing.list_conflicts(conn)
    docs = found.documents
    if fmt == "json":
        print(json.dumps(docs, indent=2))
    else:
        print(text_table(["series", "severity", "code", "dates", "message"],
                     [[d["series_key"], d["severity"], d["code"], ",".join(d["dates"][:3]),
                       d["message"]] for d in docs]))
        print(f"{len(docs)} conflict(s)")
    return _report_unreadable(found.unreadable)


def stats_command(engine: sa.Engine, args: argparse.Namespace) -> int:
    """``seriesgen stats``."""
    from seriesgen_pipeline.service.stats import stats_document

    # Runs are logged at the wall clock, so the look-back is from the clock too.
    records, unreadable = stats_document(engine, now=datetime.now(UTC), days=args.days)
    if args.format == "json":
        print(json.dumps(records, indent=2))
    else:
        columns = ["day", "branch", "runs", "series_runs", "created", "updated", "deleted",
                   "failures", "p50_ms", "p95_ms"]
        print(text_table(columns, [[r[c] for c in columns] for r in records]))
    return _report_unreadable(unreadable)


def demo_command(settings: Settings, args: argparse.Namespace) -> int:
    """``seriesgen demo``: migrate, load the demo data, generate through Dagster, summarise."""
    from seriesgen_pipeline.defs.launch import run_generation
    from seriesgen_pipeline.service.loading import load_file

    if settings.environment == "production":
        raise UsageError("the demo refuses to run with SERIESGEN_ENV=production")
    engine = create_db_engine(settings.database_url)
    upgrade_database(engine)
    demo_file = Path(str(files("seriesgen_pipeline") / "demo_data" / "demo.yaml"))
    summary = load_file(engine, demo_file)
    print(f"demo data loaded into {safe_url(settings.database_url)}: "
          f"{_load_sentence(summary.as_dict())}", file=sys.stderr)
    # The demo data lives in the first half of 2026: by default it is generated as of
    # 2026-03-01, a week before New York and four weeks before London change clocks.
    now = parse_now(args.now) if args.now is not None else settings.now_override or DEMO_NOW
    report = run_generation(engine, settings, keys=None, now=now)
    print(f"generation as of {format_instant(now)} through Dagster "
          f"(run {', '.join(report.run_ids)}):")
    print(_series_table(report.series))
    print(_totals_line(report.totals(), report.duration_ms))
    with engine.connect() as conn:
        conflicts = listing.list_conflicts(conn).documents
    print("conflicts: " + (", ".join(f"{c['series_key']} {c['severity']} {c['code']}"
                                     for c in conflicts) or "none"))
    print("next: `seriesgen sessions`, `seriesgen conflicts`, `make ui`")
    return 0



_SERIES_COLUMNS = ("series", "status", "created", "updated", "deleted", "protected", "error")


def _series_table(series: list[dict[str, Any]]) -> str:
    """What a generation did, a row per series."""
    return text_table(_SERIES_COLUMNS, [[s["key"], s["status"], s["created"], s["updated"],
                                         s["deleted"], s["protected"], s.get("error") or ""]
                                        for s in series])
