"""The ``seriesgen`` command (SPEC §9): arguments, exit codes, errors as one line.

What each command does and prints is in ``commands``.

Exit codes: 0 success, 1 some series failed (the others were generated), 2 bad
usage, bad input or the production safeguard. With ``--format json`` or ``csv``
standard output holds that document alone; logs go to standard error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType

import sqlalchemy as sa

from seriesgen_pipeline.commands import (
    EXIT_INTERRUPTED,
    UsageError,
    conflicts_command,
    demo_command,
    generate_command,
    load_command,
    ready_engine,
    sessions_command,
    stats_command,
)
from seriesgen_pipeline.core.errors import SeriesgenError
from seriesgen_pipeline.persistence.db import (
    DatabaseUrlError,
    create_db_engine,
    mask_secrets,
    safe_url,
    upgrade_database,
)
from seriesgen_pipeline.service.reporting import configure_logging
from seriesgen_pipeline.service.settings import Diagnostics, Settings

log = logging.getLogger("seriesgen.cli")


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
        return demo_command(settings, args)
    # Every other command works on an existing, migrated database and creates nothing.
    engine = ready_engine(settings)
    if args.command == "load":
        return load_command(engine, settings, args.file)
    if args.command == "generate":
        return generate_command(engine, settings, args)
    if args.command == "sessions":
        return sessions_command(engine, args)
    if args.command == "conflicts":
        return conflicts_command(engine, args.format)
    if args.command == "stats":
        return stats_command(engine, args)
    raise UsageError(f"unknown command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
