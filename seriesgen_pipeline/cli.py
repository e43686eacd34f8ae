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
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.core.errors import SeriesgenError
from seriesgen_pipeline.persistence import listing
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import (
    DatabaseUrlError,
    create_db_engine,
    mask_secrets,
    safe_url,
    schema_is_current,
    upgrade_database,
)
from seriesgen_pipeline.service.reporting import configure_logging
from seriesgen_pipeline.service.settings import Diagnostics, Settings, parse_now
from seriesgen_pipeline.service.text_table import text_table

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
    stats.add_argument("--days", type=_days_arg, default=7,
                       help=f"look back this many days, 1..{MAX_STATS_DAYS} (7)")
    stats.add_argument("--format", choices=("table", "json"), default="table")

    demo = sub.add_parser("demo", parents=[common], help="seed the demo data and generate")
    demo.add_argument("--now", help="ISO-8601 instant used as now (default 2026-03-01T12:00Z)")
    return parser


MAX_STATS_DAYS = 3660
EXIT_INTERRUPTED = 130


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _days_arg(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 1 <= days <= MAX_STATS_DAYS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_STATS_DAYS}, not {text[:40]}")
    return days


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code. Every error ends here as a message, never a trace."""
    configure_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    args.database_url = getattr(args, "database_url", None)
    url = args.database_url or Diagnostics.from_env().database_url
    try:
        with _terminate_as_interrupt():
            settings = Settings.from_env(database_url=args.database_url)
            url = settings.database_url
            return _dispatch(args, settings)
    except KeyboardInterrupt:
        print("seriesgen: interrupted; nothing more was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except Exception as exc:
        code, message = error_report(exc, url)
        print(f"seriesgen: error: {mask_secrets(message, url)}", file=sys.stderr)
        return code


def error_report(exc: BaseException, url: str | None) -> tuple[int, str]:
    """The exit code and one-line message for an error that ends a command.

    2 for bad usage or input, an unusable database URL or database, the safeguard;
    1 for anything else. An unexpected error's traceback goes to the log (shown
    with ``SERIESGEN_DEBUG=1``), not to the user.
    """
    where = safe_url(url) if url else "the database"
    if isinstance(exc, SeriesgenError | DatabaseUrlError):
        return 2, str(exc)
    if isinstance(exc, sa.exc.NoSuchModuleError | ImportError):
        return 2, f"{where}: the database driver is not installed ({_first_line(exc)})"
    if isinstance(exc, sa.exc.ArgumentError):
        return 2, f"{where}: {_first_line(exc)}"
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return 2, f"cannot use the database {where}: {_first_line(exc.orig or exc)}"
    if isinstance(exc, sa.exc.DBAPIError):
        return 1, f"the database {where} refused the request: {_first_line(exc.orig or exc)}"
    if isinstance(exc, OSError):
        return 2, f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
    log.debug("unexpected error", exc_info=exc)
    if Diagnostics.from_env().debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return 1, (f"unexpected {type(exc).__name__}: {_first_line(exc)} "
               "(set SERIESGEN_DEBUG=1 for the details)")


def _first_line(exc: object) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a command the way Ctrl-C does (a truthful report, exit 130)."""
    def _raise(_signum: int, frame: FrameType | None) -> None:
        # Whatever handles SIGINT now handles this too: outside a run that raises
        # KeyboardInterrupt; inside one, Dagster's handler stops the run at its next
        # interruption point, so the run is recorded as ended, not left running.
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (tests calling main() from a worker)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        engine = create_db_engine(settings.database_url)
        upgrade_database(engine)
        print(f"database {safe_url(settings.database_url)} is up to date", file=sys.stderr)
        return 0
    if args.command == "demo":
        return _demo(settings, args)
    # Every other command works on an existing, migrated database and creates nothing.
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
        return _stats(engine, args)
    raise UsageError(f"unknown command {args.command}")


def _ready_engine(settings: Settings) -> sa.Engine:
    engine = create_db_engine(settings.database_url, create=False)
    if not schema_is_current(engine):
        raise UsageError(f"the database {safe_url(settings.database_url)} is not migrated; "
                         "run `seriesgen db upgrade` first")
    return engine


def _load(engine: sa.Engine, settings: Settings, path: Path) -> int:
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
        "series": [{"key": o.series_key, "status": o.status, **o.counts(), "error": o.error}
                   for o in outcomes],
        "totals": totals(outcomes),
        "duration_ms": round((datetime.now(UTC) - started).total_seconds() * 1000),
    }


SESSION_FIELDS = listing.SESSION_FIELDS


def _report_unreadable(rows: list[str]) -> int:
    """Say which rows were left out of a listing; exit 1 when some were."""
    for line in rows[:20]:
        print(f"seriesgen: unreadable row left out: {line}", file=sys.stderr)
    if len(rows) > 20:
        print(f"seriesgen: … and {len(rows) - 20} more unreadable rows", file=sys.stderr)
    return 1 if rows else 0


def _sessions(engine: sa.Engine, args: argparse.Namespace) -> int:
    with engine.connect() as conn:
        found = listing.list_sessions(conn, series=args.series, branch=args.branch,
                                      date_from=args.date_from, date_to=args.date_to)
    docs = found.documents
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
        print(text_table(columns, [[d[c] for c in columns] for d in docs]))
        print(f"{len(docs)} session(s)")
    return _report_unreadable(found.unreadable)


def _conflicts(engine: sa.Engine, fmt: str) -> int:
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


def _stats(engine: sa.Engine, args: argparse.Namespace) -> int:
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


def _demo(settings: Settings, args: argparse.Namespace) -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
