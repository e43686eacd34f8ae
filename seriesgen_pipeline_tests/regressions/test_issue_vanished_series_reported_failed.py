"""Issue: a series retired (or deleted) by another writer while ``seriesgen
generate`` starts up is reported as *failed*, and the command exits 1.

Contract (SPEC §5 FR-011, §9): several ``generate --all`` runs may start at
once; all succeed. A series that is retired by one of them (or deleted by
another writer) before another run takes its snapshot is not a failure of that
other run: it has nothing to generate (exit code 0; reported as skipped, or
not at all).

Bug: ``defs/launch.run_generation`` lists the series keys first, and every key
it listed that has no ``generation_log`` row in its runs is reported
``failed`` ("the run failed before this series was generated; see the run's
logs in the Dagster UI and rerun it"), so ``generate`` exits 1 — although the
run itself did nothing wrong (the asset records the key as ``missing_series``).
Found by failure/test_concurrency.py: on SQLite, racing ``generate --all``
runs exit 1 when one of them retires ``zz-ended`` between another's key
listing and its snapshot. Reproduced here deterministically by deleting a
series right before the run takes its snapshot.

Suggested fix: in ``run_generation``, report a listed key without a log row
as failed only if it still exists (``remaining``, already read afterwards);
otherwise as ``skipped`` with "the series was retired or deleted before the
run took its snapshot".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.defs.launch import run_generation
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline.service.settings import Settings
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_series_gone_before_the_snapshot_is_not_a_failure(
        engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York")
    seed_series(engine, "east-yoga")
    seed_series(engine, "east-gone", title="Retired elsewhere")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    original = eng.take_snapshots

    def snapshot_after_another_writer(*args: Any, **kwargs: Any) -> Any:
        # Another run retires the series (or the booking app deletes it) after this
        # run listed the keys and before it takes its snapshot.
        execute(engine, "DELETE FROM class_series WHERE key = 'east-gone'")
        return original(*args, **kwargs)

    monkeypatch.setattr(eng, "take_snapshots", snapshot_after_another_writer)
    report = run_generation(engine, Settings(database_url=db_url), keys=None, now=NOW)
    statuses = {s["key"]: s["status"] for s in report.series}
    assert statuses.get("east-yoga") == "success", report.series
    assert report.failed == [], report.series
