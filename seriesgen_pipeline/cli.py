"""The ``seriesgen`` command (SPEC §9).

Exit codes: 0 success, 1 some series failed (the others were generated), 2 bad
usage, bad input or the production safeguard. With ``--format json`` or ``csv``
standard output holds that document alone; logs go to standard error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.core.errors import SeriesgenError
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import (
    create_db_engine,
    safe_url,
    schema_is_current,
    upgrade_database,
)
from seriesgen_pipeline.service.reporting import configure_logging
from seriesgen_pipeline.service.settings import Settings, parse_now

log = logging.getLogger("seriesgen.cli")
DEMO_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class UsageError(SeriesgenError):
    """Bad usage or input: exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's copy of the option must not reset a value given before it.
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="SQLAlchemy URL (default: SERIESGEN_DATABASE_URL or "
                             "sqlite:///.seriesgen/seriesgen.db)")
    parser = argparse.ArgumentParser(prog="seriesgen", parents=[common],
                                     description="Generate class sessions from class series.")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", parents=[common], help="create or migrate the database")

    load = sub.add_parser("load", parents=[common], help="upsert base/branches/series from a file")
    load.add_argument("file", type=Path)

    gen = sub.add_parser("generate", parents=[common], help="run generation through Dagster")
    which = gen.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every series")
    which.add_argument("--series", nargs="+", metavar="KEY", help="these series")
    gen.add_argument("--now", help="ISO-8601 instant used as now (default SERIESGEN_NOW or clock)")
    gen.add_argument("--dry-run", action="store_true",
                     help="plan only: print what would change, write nothing")
    gen.add_argument("--format", choices=("table", "json"), default="table")

    ses = sub.add_parser("sessions", parents=[common], help="list sessions")
    ses.add_argument("--series", metavar="KEY")
    ses.add_argument("--branch", metavar="ID")
    ses.add_argument("--from", dest="date_from", metavar="DATE", type=_date_arg)
    ses.add_argument("--to", dest="date_to", metavar="DATE", type=_date_arg)
    ses.add_argument("--format", choices=("table", "csv", "json"), default="table")

    con = sub.add_parser("conflicts", parents=[common], help="list current conflicts")
    con.add_argument("--format", choices=("table", "json"), default="table")

    stats = sub.add_parser("stats", parents=[common],
                           help="summarise recent runs per branch and day")
    stats.add_argument("--days", type=int, default=7, help="look back this many days (7)")
    stats.add_argument("--format", choices=("table", "json"), default="table")

    demo = sub.add_parser("demo", parents=[common], help="seed the demo data and generate")
    demo.add_argument("--now", help="ISO-8601 instant used as now (default 2026-03-01T12:00Z)")
    return parser


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    configure_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    args.database_url = getattr(args, "database_url", None)
    try:
        settings = Settings.from_env(database_url=args.database_url)
        return _dispatch(args, settings)
    except SeriesgenError as exc:
        print(f"seriesgen: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except sa.exc.OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"seriesgen: error: cannot use the database "
              f"{safe_url(args.database_url or Settings.from_env().database_url)}: "
              f"{detail}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        engine = create_db_engine(settings.database_url)
        upgrade_database(engine)
        print(f"database {safe_url(settings.database_url)} is up to date", file=sys.stderr)
        return 0
    if args.command == "demo":
        return _demo(settings, args)
    engine = _ready_engine(settings)
    if args.command == "load":
        return _load(engine, settings, args.file)
    if args.command == "generate":
        return _generate(engine, settings, args)
    if args.command == "sessions":
        return _sessions(engine, args)
    if args.command == "conflicts":
        return _conflicts(engine, args.format)
    if args.command == "stats":
        return _stats(engine, settings, args)
    raise UsageError(f"unknown command {args.command}")


def _ready_engine(settings: Settings) -> sa.Engine:
    engine = create_db_engine(settings.database_url)
    if not schema_is_current(engine):
        raise UsageError(f"the database {safe_url(settings.database_url)} is not migrated; "
                         "run `seriesgen db upgrade` first")
    return engine


def _load(engine: sa.Engine, settings: Settings, path: Path) -> int:
    from seriesgen_pipeline.service.loading import load_file

    settings.check_writes()
    summary = load_file(engine, path)
    print(f"loaded {path}: {summary}", file=sys.stderr)
    return 0


def _resolve_now(settings: Settings, text: str | None) -> datetime:
    return parse_now(text) if text else settings.now()


def _generate(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> int:
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
    if args.format == "json":
        print(json.dumps(document, indent=2, default=str))
    else:
        rows = [[s["key"], s["status"], s["created"], s["updated"], s["deleted"], s["protected"],
                 s.get("error") or ""] for s in document["series"]]
        print(_table(["series", "status", "created", "updated", "deleted", "protected", "error"],
                     rows))
        print(f"totals: {document['totals']}  duration_ms={document['duration_ms']}"
              + ("  (dry run: nothing written)" if args.dry_run else ""))
    return 1 if failed else 0


def _dry_run(engine: sa.Engine, keys: list[str] | None, now: datetime) -> dict[str, Any]:
    from seriesgen_pipeline.service import engine as eng
    from seriesgen_pipeline.service.reporting import totals

    started = datetime.now(UTC)
    snaps = eng.take_snapshots(engine, keys=keys, now=now, run_id="dry-run", store=False)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id="dry-run", dry_run=True)
    return {
        "run_id": None, "dry_run": True, "now": format_instant(now),
        "series": [{"key": o.series_key, "status": o.status, **o.counts(), "error": o.error}
                   for o in outcomes],
        "totals": totals(outcomes),
        "duration_ms": round((datetime.now(UTC) - started).total_seconds() * 1000),
    }


SESSION_FIELDS = ("series_key", "occurrence_key", "branch", "title", "instructor", "room",
                  "capacity", "timezone", "starts_at", "ends_at", "local_start", "status",
                  "detached", "booked_count")


def session_documents(engine: sa.Engine, *, series: str | None = None,
                      branch: str | None = None, date_from: date | None = None,
                      date_to: date | None = None) -> list[dict[str, Any]]:
    """Sessions as SPEC §9 prints them, sorted by series then ``starts_at``."""
    t = repo.sessions_t
    query = sa.select(t).order_by(t.c.series_key, t.c.starts_at, t.c.id)
    if series:
        query = query.where(t.c.series_key == series)
    if branch:
        query = query.where(t.c.branch_id == branch)
    if date_from:
        query = query.where(t.c.starts_at >= datetime.combine(date_from, datetime.min.time(),
                                                              tzinfo=UTC))
    if date_to:
        query = query.where(t.c.starts_at < datetime.combine(
            date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    out = []
    with engine.connect() as conn:
        for r in conn.execute(query).mappings():
            out.append({
                "series_key": r["series_key"], "occurrence_key": r["occurrence_key"],
                "branch": r["branch_id"], "title": r["title"], "instructor": r["instructor"],
                "room": r["room"], "capacity": r["capacity"], "timezone": r["timezone"],
                "starts_at": format_instant(r["starts_at"]),
                "ends_at": format_instant(r["ends_at"]),
                "local_start": r["starts_at"].astimezone(ZoneInfo(r["timezone"])).isoformat(),
                "status": r["status"], "detached": bool(r["detached"]),
                "booked_count": r["booked_count"],
            })
    return out


def _sessions(engine: sa.Engine, args: argparse.Namespace) -> int:
    docs = session_documents(engine, series=args.series, branch=args.branch,
                             date_from=args.date_from, date_to=args.date_to)
    if args.format == "json":
        print(json.dumps(docs, indent=2))
    elif args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(SESSION_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: (str(v).lower() if isinstance(v, bool) else v)
                          for k, v in doc.items()} for doc in docs)
        sys.stdout.write(buffer.getvalue())
    else:
        columns = ["series_key", "occurrence_key", "local_start", "starts_at", "room",
                   "instructor", "capacity", "status", "booked_count"]
        print(_table(columns, [[d[c] for c in columns] for d in docs]))
        print(f"{len(docs)} session(s)")
    return 0


def _conflicts(engine: sa.Engine, fmt: str) -> int:
    t = repo.conflicts_t
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.series_key, t.c.severity, t.c.code)
                            ).mappings().all()
    docs = [{"series_key": r["series_key"], "code": r["code"], "severity": r["severity"],
             "message": r["message"], "dates": r["dates"], "config_hash": r["config_hash"],
             "detected_at": format_instant(r["detected_at"])} for r in rows]
    if fmt == "json":
        print(json.dumps(docs, indent=2))
    else:
        print(_table(["series", "severity", "code", "dates", "message"],
                     [[d["series_key"], d["severity"], d["code"], ",".join(d["dates"][:3]),
                       d["message"]] for d in docs]))
        print(f"{len(docs)} conflict(s)")
    return 0


def _stats(engine: sa.Engine, settings: Settings, args: argparse.Namespace) -> int:
    from seriesgen_pipeline.service.stats import stats_document

    if args.days < 1:
        raise UsageError("--days must be 1 or more")
    # Runs are logged at the wall clock, so the look-back is from the clock too.
    records = stats_document(engine, now=datetime.now(UTC), days=args.days)
    if args.format == "json":
        print(json.dumps(records, indent=2))
        return 0
    columns = ["day", "branch", "runs", "series_runs", "created", "updated", "deleted",
               "failures", "p50_ms", "p95_ms"]
    print(_table(columns, [[r[c] for c in columns] for r in records]))
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from seriesgen_pipeline.defs.launch import run_generation
    from seriesgen_pipeline.service.loading import load_file

    if settings.environment == "production":
        raise UsageError("the demo refuses to run with SERIESGEN_ENV=production")
    engine = create_db_engine(settings.database_url)
    upgrade_database(engine)
    demo_file = Path(str(files("seriesgen_pipeline") / "demo_data" / "demo.yaml"))
    summary = load_file(engine, demo_file)
    print(f"demo data loaded into {safe_url(settings.database_url)}: {summary}", file=sys.stderr)
    # The demo data lives in the first half of 2026: by default it is generated as of
    # 2026-03-01, a week before New York and four weeks before London change clocks.
    now = parse_now(args.now) if args.now else settings.now_override or DEMO_NOW
    report = run_generation(engine, settings, keys=None, now=now)
    print(f"generation as of {format_instant(now)} through Dagster "
          f"(run {', '.join(report.run_ids)}):")
    print(_table(["series", "status", "created", "updated", "deleted", "protected", "error"],
                 [[s["key"], s["status"], s["created"], s["updated"], s["deleted"],
                   s["protected"], s["error"] or ""] for s in report.series]))
    print(f"totals: {report.totals()}  duration_ms={report.duration_ms}")
    with engine.connect() as conn:
        conflicts = conn.execute(sa.select(repo.conflicts_t.c.series_key, repo.conflicts_t.c.code,
                                           repo.conflicts_t.c.severity)
                                 .order_by(repo.conflicts_t.c.series_key)).all()
    print("conflicts: " + (", ".join(f"{k} {s} {c}" for k, c, s in conflicts) or "none"))
    print("next: `seriesgen sessions`, `seriesgen conflicts`, `make ui`")
    return 0


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
