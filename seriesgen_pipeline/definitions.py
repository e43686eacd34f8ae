"""The one root ``Definitions`` of seriesgen, loaded by ``workspace.yaml``.

The schedule's cron and time zone, and the number of series per run of the
schedule and the sensor, can be changed with ``SERIESGEN_SCHEDULE_CRON``,
``SERIESGEN_SCHEDULE_TIMEZONE`` and ``SERIESGEN_RUN_CHUNK`` (``service.settings``),
read once when the code location loads. Without ``SERIESGEN_RUN_CHUNK`` the run size
follows the number of partitions (``service.settings.run_size``).
"""

from __future__ import annotations

import dagster as dg

from seriesgen_pipeline.defs.assets import generation_report, series_generation
from seriesgen_pipeline.defs.recovery import failed_run_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import generation_job
from seriesgen_pipeline.defs.schedules import build_nightly_schedule
from seriesgen_pipeline.defs.sensors import build_change_sensor
from seriesgen_pipeline.service.settings import (
    DEFAULT_CRON,
    DEFAULT_TIMEZONE,
    Settings,
)


def build_definitions(*, cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE,
                      chunk_size: int | None = None,
                      resource: SeriesgenResource | None = None) -> dg.Definitions:
    """All of seriesgen's Dagster objects."""
    return dg.Definitions(
        assets=[series_generation, generation_report],
        jobs=[generation_job],
        # Every run (UI and backfill runs of the implicit asset job too) executes its one
        # step in the run worker itself: a killed worker leaves no step process behind.
        executor=dg.in_process_executor,
        schedules=[build_nightly_schedule(cron=cron, timezone=timezone, chunk_size=chunk_size)],
        sensors=[build_change_sensor(chunk_size=chunk_size), failed_run_partitions],
        resources={"seriesgen": resource or SeriesgenResource()},
    )


def _from_environment() -> dg.Definitions:
    settings = Settings.from_env()
    return build_definitions(cron=settings.schedule_cron, timezone=settings.schedule_timezone,
                             chunk_size=settings.run_chunk)


defs = _from_environment()
