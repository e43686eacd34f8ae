"""The generation job and how partition keys become ranged run requests."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from seriesgen_pipeline.defs.assets import RANGE_TAG, series_generation

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# RANGE_TAG ("seriesgen/partition_range") is declared in assets.py, which sets it on runs
# that come without it.

# Queued generation runs carry this tag; dagster.yaml allows one such run at a time.
QUEUE_TAGS = {"seriesgen/generation": "queued"}

# The job has one step, so it runs in the run worker itself (in-process executor):
# a run worker killed with SIGKILL takes its step with it. With the multiprocess
# executor the step's child process outlived it, went on writing while holding the
# series' locks, and recorded materializations into the failed run.
generation_job = dg.define_asset_job(
    "series_generation_job",
    selection=dg.AssetSelection.assets(series_generation),
    description="Snapshot, generate and retire the series of a partition range.",
    executor_def=dg.in_process_executor,
)


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover the partitions ``first``..``last``."""
    return {RANGE_START: first, RANGE_END: last, RANGE_TAG: f"{first}..{last}"}


def contiguous_ranges(ordered_keys: Sequence[str], wanted: set[str] | None, *,
                      max_size: int) -> list[tuple[str, str]]:
    """Split ``ordered_keys`` (the partition order) into ranges of wanted keys.

    A range never holds a key that is not wanted, and has at most ``max_size`` keys.
    """
    ranges: list[tuple[str, str]] = []
    first = last = None
    size = 0
    for key in ordered_keys:
        if wanted is not None and key not in wanted:
            if first is not None and last is not None:
                ranges.append((first, last))
            first = last = None
            size = 0
            continue
        if first is None or size >= max_size:
            if first is not None and last is not None:
                ranges.append((first, last))
            first, size = key, 0
        last = key
        size += 1
    if first is not None and last is not None:
        ranges.append((first, last))
    return ranges


def covering_ranges(ordered_keys: Sequence[str], wanted: set[str], *,
                    max_size: int) -> list[tuple[str, str]]:
    """Few ranges of at most ``max_size`` keys that together hold every wanted key.

    Unlike ``contiguous_ranges``, a range may hold keys that are not wanted, between
    wanted ones: for scattered changes (10 % of the series edited at random) one run
    per gap would cost seconds of run start-up each, while a series that did not
    change costs a run about a millisecond. Each range starts and ends at a wanted key.
    """
    ranges: list[tuple[str, str]] = []
    first: str | None = None
    last: str | None = None
    size = 0
    for key in ordered_keys:
        if first is not None:
            size += 1
            if size > max_size:
                assert last is not None
                ranges.append((first, last))
                first = None
        if key not in wanted:
            continue
        if first is None:
            first, size = key, 1
        last = key
    if first is not None and last is not None:
        ranges.append((first, last))
    return ranges


def range_request(first: str, last: str, *, run_key: str | None) -> dg.RunRequest:
    """A run request over ``first``..``last`` (a plain partition run for one key)."""
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=first,
                             tags={RANGE_TAG: f"{first}..{last}", **QUEUE_TAGS})
    return dg.RunRequest(run_key=run_key, tags={**range_tags(first, last), **QUEUE_TAGS})
