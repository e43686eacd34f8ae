"""Which of seriesgen's log lines a run's Dagster event log captures.

Contract (docs/operations.md "Runs started by the daemon or the UI"): with
``python_logs.managed_python_loggers: [seriesgen]`` (as in ``dagster.yaml``), a
ranged run's event log holds the run line and one ERROR line per failed series,
and no line for the series that succeeded, so a 10,000-series night does not
write 10,000 log events. Every series still has its line on standard error.
"""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import NOW, migrated_engine

KEYS = ["k00", "k01", "k02", "k03"]


def test_event_log_holds_the_run_line_and_failed_series_only(sqlite_url: str,
                                                              capfd: pytest.CaptureFixture[str]
                                                              ) -> None:
    engine = migrated_engine(sqlite_url)
    seed_base(engine, horizon_days=7)
    seed_branch(engine, "east")
    for number, key in enumerate(KEYS):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Coach {number}",
                    recurrence="FREQ=YEARLY" if key == "k02" else "FREQ=DAILY")
    engine.dispose()
    job = build_definitions(resource=SeriesgenResource(database_url=sqlite_url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    overrides = {"python_logs": {"managed_python_loggers": ["seriesgen"]}}
    with dg.instance_for_test(overrides=overrides) as instance:
        instance.add_dynamic_partitions("class_series", KEYS)
        result = job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                        raise_on_error=False)
        assert not result.success
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)
                    if entry.dagster_event is None]
        levels = {entry.user_message: entry.level for entry in instance.all_logs(result.run_id)
                  if entry.dagster_event is None}

    finished = [m for m in messages if m.startswith(f"run {result.run_id} finished")]
    assert len(finished) == 1, messages
    assert finished[0].endswith("4 series, 21 created, 0 updated, 0 deleted, 1 failed (k02)"), (
        finished[0])
    assert levels[finished[0]] == logging.ERROR
    failed = [m for m in messages if m.startswith("series k02 failed: ")]
    assert len(failed) == 1, messages
    assert levels[failed[0]] == logging.ERROR
    assert "YEARLY" in failed[0], failed[0]  # the error itself, not just "failed"
    for key in ("k00", "k01", "k03"):
        assert not [m for m in messages if m.startswith(f"series {key} ")], messages

    # Standard error still has a line for every series.
    err = capfd.readouterr().err
    for key in ("k00", "k01", "k03"):
        assert f"series {key} success event=series_generated" in err, err[-3000:]
    assert "series k02 failed: " in err and "event=series_generated" in err
