"""``nightly_generation``: every active series, in ranged runs (``run_size`` series each)."""


import dagster as dg

from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import contiguous_ranges, generation_job, range_request
from seriesgen_pipeline.service.settings import (
    DEFAULT_CRON,
    DEFAULT_TIMEZONE,
    SAFEGUARD_MESSAGE,
    run_size,
)


def build_nightly_schedule(*, cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE,
                           chunk_size: int | None = None) -> dg.ScheduleDefinition:
    """The nightly schedule: one ranged run request per ``chunk_size`` partitions (by
    default, as many as ``run_size`` gives for all of them)."""

    @dg.schedule(name="nightly_generation", cron_schedule=cron, execution_timezone=timezone,
                 job=generation_job, default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Materializes every class series partition, in ranged runs.")
    def nightly_generation(context: dg.ScheduleEvaluationContext, seriesgen: SeriesgenResource
                           ) -> list[dg.RunRequest] | dg.SkipReason:
        if not seriesgen.settings().writes_allowed:
            return dg.SkipReason(SAFEGUARD_MESSAGE)
        keys = class_series_partitions.get_partition_keys(
            dynamic_partitions_store=context.instance)
        if not keys:
            return dg.SkipReason("no class series partitions yet (the sensor adds them)")
        stamp = (context.scheduled_execution_time.isoformat()
                 if context.scheduled_execution_time else "manual")
        return [
            range_request(first, last, run_key=f"nightly:{stamp}:{first}..{last}")
            for first, last in contiguous_ranges(keys, None,
                                                 max_size=run_size(chunk_size, len(keys)))
        ]

    return nightly_generation
