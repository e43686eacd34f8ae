"""How long retention's prune takes for one run's series, with a month of notifications.

With ``ADMIN_NOTIFY_RECIPIENT`` set, a double booking is notified again whenever its
dates change, which the moving window does most nights: the 10,000-series benchmark
data gains about 500 notifications a night (measured: 9,307 the first night, then
576, 488 and 495). Each run prunes the notifications of its series older than the
retention; one goes when a newer one of its series and code exists. This seeds
``--nights`` nights of ``--per-night`` notifications, the same double bookings
notified again each night (and current), then times ``prune_run_records`` for
the first ``--run-series`` series: as migrated, then without the index on
``(series_key, code, id)`` (dropped and put back), each rolled back so that both
prune the same rows.

    .venv/bin/python benchmarks/retention_prune.py --series 100000 --per-night 5000 \\
        --database-url postgresql://postgres@127.0.0.1/sg_prune --reset

The database must be empty or disposable (``--reset`` drops every table).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import masked_command
from benchmarks.databases import prepare_database
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine

INDEX = "ix_notifications_series_code"
CODES = ("ROOM_DOUBLE_BOOKED", "INSTRUCTOR_DOUBLE_BOOKED")


def seed(engine: sa.Engine, *, series: int, nights: int, per_night: int) -> int:
    """``nights + 1`` nights of notifications, night 0 the newest; their conflicts current."""
    # The same double bookings every night, each notified again as its dates move on.
    key = "'p' || lpad(((i * 7919) % :series)::text, 6, '0')"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO notifications (recipient_type, recipient, kind, severity, series_key, "
            "code, message, details, dedupe_key, created_at) "
            f"SELECT 'SYSTEM', 'ops', 'series_conflict', 'WARN', {key}, "
            "(ARRAY[:room, :instructor])[1 + i % 2], 'double booked', '{}'::json, "
            "md5(n || '-' || i), now() - make_interval(days => n, hours => 1) "
            "FROM generate_series(0, :nights) AS n, generate_series(1, :per_night) AS i "
            "ORDER BY n DESC, i"),  # oldest first: ids follow time, as when written nightly
            {"series": series, "nights": nights, "per_night": per_night,
             "room": CODES[0], "instructor": CODES[1]})
        conn.execute(sa.text(
            "INSERT INTO series_conflicts (series_key, code, severity, message, dates, details, "
            "config_hash, run_id, detected_at) "
            "SELECT series_key, code, 'WARN', 'double booked', '[]'::json, '{}'::json, "
            "'c', 'seed', now() FROM (SELECT DISTINCT series_key, code FROM notifications) AS c"))
        total = conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar_one()
        conn.execute(sa.text("ANALYZE notifications"))
        conn.execute(sa.text("ANALYZE series_conflicts"))
    return int(total)


def timed_prune(engine: sa.Engine, keys: list[str], retention_days: int) -> tuple[float, int]:
    """Seconds to prune ``keys`` and notifications deleted; rolled back."""
    with engine.connect() as conn:
        transaction = conn.begin()
        started = time.perf_counter()
        deleted = repo.prune_run_records(
            conn, series_keys=keys, before=repo.utcnow() - timedelta(days=retention_days))
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed, deleted["notifications"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True, help="an empty or disposable PostgreSQL db")
    p.add_argument("--reset", action="store_true", help="drop every table first")
    p.add_argument("--series", type=int, default=10000)
    p.add_argument("--run-series", type=int, default=None,
                   help="series in the pruning run (default: a tenth, at least 2,500)")
    p.add_argument("--nights", type=int, default=35, help="nights of notifications kept")
    p.add_argument("--per-night", type=int, default=500, help="notifications a night")
    p.add_argument("--retention-days", type=int, default=30)
    args = p.parse_args()
    engine = create_db_engine(args.database_url)
    if engine.dialect.name != "postgresql":
        p.error("PostgreSQL only")
    refusal = prepare_database(engine, reset=args.reset)
    if refusal:
        p.error(refusal)
    run_series = args.run_series or max(2500, args.series // 10)
    print(f"$ {masked_command(sys.argv)}")
    total = seed(engine, series=args.series, nights=args.nights, per_night=args.per_night)
    keys = [f"p{i:06d}" for i in range(min(run_series, args.series))]
    print(f"# {total} notifications over {args.nights + 1} nights of {args.per_night}, "
          f"{args.series} series; a run of {len(keys)} series prunes those older than "
          f"{args.retention_days} days")
    with_index, deleted = timed_prune(engine, keys, args.retention_days)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {INDEX}"))
    try:
        without_index, deleted_without = timed_prune(engine, keys, args.retention_days)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(
                f"CREATE INDEX {INDEX} ON notifications (series_key, code, id)"))
    assert deleted == deleted_without, (deleted, deleted_without)
    print(f"prune, with the index:    {with_index:8.2f} s ({deleted} notifications deleted)")
    print(f"prune, without the index: {without_index:8.2f} s "
          f"({without_index / max(with_index, 1e-9):.0f}x)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
