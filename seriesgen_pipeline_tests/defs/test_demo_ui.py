"""``make ui`` keeps the demo alive on any date.

Contract (docs/dagster.md, "The demo in the UI"): ``make ui`` starts Dagster with
``SERIESGEN_NOW`` set to the demo's instant — ``DEMO_NOW`` of ``seriesgen demo``,
2026-03-01T12:00:00Z — unless the user set ``SERIESGEN_NOW`` (a value of their own
wins; an empty one means the wall clock). Read from the Makefile itself
(``make -n ui``), not restated.

Scenario: the demo data is loaded (two of its five series end on 2026-04-30 and
2026-06-30) and the wall clock is past those dates (this test asserts it: today
is 2026-12-06 or later). Under the environment ``make ui`` gives Dagster, the change
sensor's first tick and every run it requests (executed on a real instance) retire
nothing: five series, five partitions, no retirement recorded, and the DST-crossing
series still reports its nonexistent 02:30 of 2026-03-08 in New York. Without the
demo clock — the wall clock, as ``make ui`` had before — the same tick and runs
retire the two series at once (the bug this guards against).
"""

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.commands import DEMO_NOW
from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.service.loading import load_file
from seriesgen_pipeline_tests.defs.support import apply_partition_requests, migrated_engine
from seriesgen_pipeline_tests.deploy.support import PROJECT, clean_env

DEMO = PROJECT / "seriesgen_pipeline" / "demo_data" / "demo.yaml"
SERIES = ["east-early-spin", "east-night-owls", "east-yoga-basics", "west-monthly-workshop",
          "west-pilates"]
ENDING = {"east-night-owls": date(2026, 4, 30), "east-yoga-basics": date(2026, 6, 30)}


def make_ui_now(**env: str) -> str | None:
    """``SERIESGEN_NOW`` as ``make ui`` passes it to ``dagster dev`` (None: not set)."""
    done = subprocess.run(["make", "-s", "-n", "ui"], cwd=PROJECT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120, check=True)
    command = done.stdout.replace("\\\n", " ")
    (line,) = [ln for ln in command.splitlines() if "dagster dev" in ln]
    found = re.search(r'SERIESGEN_NOW="([^"]*)"', line)
    return found.group(1) if found else None


def test_make_ui_runs_on_the_demo_clock_unless_told_otherwise() -> None:
    assert make_ui_now() == format_instant(DEMO_NOW) == "2026-03-01T12:00:00Z"
    assert make_ui_now(SERIESGEN_NOW="2026-05-04T08:00:00Z") == "2026-05-04T08:00:00Z"
    assert make_ui_now(SERIESGEN_NOW="") is None  # the wall clock


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[sa.Engine, str]]:
    """The demo data, loaded as ``make demo`` loads it; the environment of a development box."""
    for name in ("SERIESGEN_ENV", "ENABLE_SERIES_GENERATION", "SERIESGEN_NOW"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path}/demo.db"
    engine = migrated_engine(url)
    load_file(engine, DEMO)
    monkeypatch.setenv("SERIESGEN_DATABASE_URL", url)
    yield engine, url
    engine.dispose()


def tick_and_run(instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    """One sensor tick as the daemon runs it, and each of its runs, with resources
    configured from the environment only (as in ``make ui``)."""
    defs = build_definitions(resource=SeriesgenResource())
    sensor = defs.resolve_sensor_def("class_series_changes")
    with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(),
                                 repository_def=defs.get_repository_def(),
                                 resources={"seriesgen": SeriesgenResource()}) as context:
        data = sensor.evaluate_tick(context)
    apply_partition_requests(instance, data.dynamic_partitions_requests or [])
    job = defs.resolve_job_def("series_generation_job")
    return [job.execute_in_process(instance=instance, partition_key=request.partition_key,
                                   tags=request.tags, raise_on_error=False)
            for request in data.run_requests or []]


def remaining(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT key FROM class_series ORDER BY key")).scalars())


def retirements(instance: dg.DagsterInstance) -> set[str]:
    records = instance.fetch_materializations(dg.AssetKey("series_cleanup"), limit=100).records
    return {str(r.partition_key) for r in records
            if r.asset_materialization is not None
            and r.asset_materialization.metadata["retired"].value}


def test_the_demo_under_make_ui_retires_nothing_on_todays_clock(
        demo: tuple[sa.Engine, str], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = demo
    assert datetime.now(UTC).date() > max(ENDING.values())  # today, the wall clock
    now = make_ui_now()
    if now is not None:
        monkeypatch.setenv("SERIESGEN_NOW", now)

    with dg.instance_for_test() as instance:
        runs = tick_and_run(instance)
        assert runs and all(run.success for run in runs)
        assert remaining(engine) == SERIES
        assert sorted(instance.get_dynamic_partitions("class_series")) == SERIES
        assert retirements(instance) == set()
        with engine.connect() as conn:
            codes = set(conn.execute(sa.text(
                "SELECT code FROM series_conflicts WHERE series_key = 'east-night-owls'"
            )).scalars())
        assert "NONEXISTENT_LOCAL_TIME" in codes


def test_on_the_wall_clock_the_demo_would_retire_two_series_at_once(
        demo: tuple[sa.Engine, str]) -> None:
    engine, _ = demo
    assert datetime.now(UTC).date() > max(ENDING.values())

    with dg.instance_for_test() as instance:
        runs = tick_and_run(instance)
        assert all(run.success for run in runs)
        assert retirements(instance) == set(ENDING)
    assert remaining(engine) == sorted(set(SERIES) - set(ENDING))
