"""Sessions a run committed before it died are counted in ``generation_log``.

Scenario: a ranged run commits every chunk of its three series, then dies before it
writes its ``generation_log`` rows (here ``SERIESGEN_FAULT=raise_record`` fails the
run in the transaction that records it; a killed worker stops at the same place).
Before: no row for the run, so ``seriesgen stats`` did not count the 12 sessions it
had committed. Now: the run-failure sensor ``failed_run_partitions`` logs each
series the run did not record, ``failed`` with the sessions the run wrote and the
reason, once; ``stats`` counts them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline.service.stats import stats_document
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import (
    NOW,
    PARTITIONS,
    evaluate_failure_sensor,
    migrated_engine,
)

KEYS = ["g1", "g2", "g3"]


def test_a_run_that_died_before_recording_is_logged_with_what_it_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine)
    seed_branch(engine, "east", horizon_days=14)
    for number, key in enumerate(KEYS):
        seed_series(engine, key, room=f"Room {number}", instructor=f"Coach {number}")
    job = build_definitions(resource=SeriesgenResource(database_url=url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS, KEYS)
        monkeypatch.setenv("SERIESGEN_FAULT", "raise_record")
        result = job.execute_in_process(instance=instance, tags=range_tags(KEYS[0], KEYS[-1]),
                                        raise_on_error=False)
        monkeypatch.delenv("SERIESGEN_FAULT")
        assert not result.success
        with engine.connect() as conn:
            committed = conn.execute(sa.text("SELECT count(*) FROM class_sessions")).scalar_one()
            before = conn.execute(sa.text("SELECT count(*) FROM generation_log")).scalar_one()
        assert (committed, before) == (12, 0)  # Mon/Wed 2026-03-02..03-16, nothing logged

        evaluate_failure_sensor(instance, result.run_id, url)
        evaluate_failure_sensor(instance, result.run_id, url)  # a second evaluation adds nothing

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT series_key, status, created, updated, error FROM generation_log "
            "WHERE run_id = :run ORDER BY series_key"), {"run": result.run_id}).all()
    engine.dispose()
    assert [(r.series_key, r.status, r.created, r.updated) for r in rows] == [
        (key, "failed", 4, 0) for key in KEYS]
    assert all(r.error.startswith("the run ended before this series was recorded")
               for r in rows)
    records, unreadable = stats_document(migrated_engine(url),
                                         now=datetime.now(UTC) + timedelta(minutes=1), days=1)
    assert unreadable == []
    assert sum(r["created"] for r in records) == 12
