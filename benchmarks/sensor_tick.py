"""What the change sensor costs at N series: registering the partitions and its ticks.

    python benchmarks/sensor_tick.py --series 100000 [--postgres-url URL]

Seeds N series (the nightly benchmark's data, no sessions) in a throw-away
PostgreSQL application database, opens a throw-away PostgreSQL Dagster instance,
and evaluates ``class_series_changes`` as the daemon does (``evaluate_tick`` with the
``seriesgen`` resource, the previous tick's cursor):

1. first tick: registers N partitions (one bulk insert) and fingerprints every series;
2. quiet tick: nothing changed, so the input change count answers without a read;
3. a raw SQL ``UPDATE`` of one series' room (``version``/``updated_at`` untouched), then
   a tick: it fingerprints every series again and requests one run;
4. a quiet tick again.

Prints the wall seconds of each, as a table and as JSON (``--json``). The databases
and the instance are dropped at the end, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.databases import create_database, dagster_url, drop_database  # noqa: E402
from benchmarks.seeding import seed_data  # noqa: E402
from seriesgen_pipeline.definitions import build_definitions  # noqa: E402
from seriesgen_pipeline.defs.resources import SeriesgenResource  # noqa: E402
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database  # noqa: E402
from seriesgen_pipeline.service.text_table import text_table  # noqa: E402

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--postgres-url", default=DEFAULT_SERVER,
                   help="server where the throw-away databases are made")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    p.add_argument("--keep", type=Path, metavar="DAGSTER_HOME",
                   help="keep both databases and write the instance's dagster.yaml here "
                        "(e.g. to time the UI over N partitions); print their URLs")
    return p.parse_args(argv)


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, url: str,
         cursor: str | None) -> tuple[float, Any]:
    """One evaluation of the sensor as the daemon runs it; (seconds, its result)."""
    sensor = defs.resolve_sensor_def("class_series_changes")
    started = time.perf_counter()
    with dg.build_sensor_context(
            instance=instance, instance_ref=instance.get_ref(), cursor=cursor,
            repository_def=defs.get_repository_def(),
            resources={"seriesgen": SeriesgenResource(database_url=url)}) as context:
        data = sensor.evaluate_tick(context)
    return time.perf_counter() - started, data


def measure(args: argparse.Namespace, app_url: str, instance: dg.DagsterInstance
            ) -> list[dict[str, Any]]:
    engine = create_db_engine(app_url)
    upgrade_database(engine)
    seed_data(engine, n_series=args.series, horizon=365, now=NOW, seed=20260302)
    defs = build_definitions()
    rows: list[dict[str, Any]] = []

    def step(name: str, cursor: str | None) -> str | None:
        seconds, data = tick(defs, instance, app_url, cursor)
        rows.append({"tick": name, "seconds": round(seconds, 2),
                     "runs requested": len(data.run_requests or []),
                     "skip": data.skip_message or ""})
        return data.cursor or cursor

    cursor = step("first: register and fingerprint", None)
    registered = len(instance.get_dynamic_partitions("class_series"))
    rows[-1]["partitions"] = registered
    cursor = step("quiet", cursor)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE class_series SET room = 'Studio 99' "
                             "WHERE id = (SELECT min(id) FROM class_series)"))
    cursor = step("after a raw UPDATE of one series", cursor)
    step("quiet", cursor)
    engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app_url = create_database(args.postgres_url, "sg_sensor_app")
    instance_url = create_database(args.postgres_url, "sg_sensor_dagster")
    home = args.keep or Path(tempfile.mkdtemp(prefix="sensor-tick-"))
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_url: "
            f"{dagster_url(instance_url)}\n"
            "instance_class:\n  module: seriesgen_pipeline.defs.internals\n"
            "  class: SeriesgenInstance\n")
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            rows = measure(args, app_url, instance)
        finally:
            instance.dispose()
    finally:
        if args.keep:
            print(f"# kept: SERIESGEN_DATABASE_URL={app_url} DAGSTER_HOME={home}")
        else:
            drop_database(app_url)
            drop_database(instance_url)
            shutil.rmtree(home, ignore_errors=True)
    print(f"# change sensor, N={args.series} series")
    print(text_table(["tick", "seconds", "runs requested", "skip"],
                     [[r["tick"], r["seconds"], r["runs requested"], r["skip"]] for r in rows],
                     figures=True))
    if args.json:
        args.json.write_text(json.dumps({"series": args.series, "ticks": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
