"""A series' previous status: that of its latest ``generation_log`` row from another run.

Contract (``repository.previous_statuses``, used by the generation step to record a
series that failed before): per series key, the status of the row whose run started
that series last, rows of the asking run left out; a series with no such row, or
no longer in ``class_series``, is absent. The answer is the same whatever the
history kept (a month of nights by default). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series

NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _row(run_id: str, key: str, status: str, started_at: datetime) -> dict[str, Any]:
    return {"run_id": run_id, "series_key": key, "status": status, "started_at": started_at,
            "finished_at": started_at + timedelta(seconds=1), "window_start": None,
            "window_end": None, "created": 0, "updated": 0, "deleted": 0, "protected": 0,
            "error": "broken" if status == "failed" else None, "config_hash": "c"}


def test_the_run_that_started_a_series_last_gives_its_status(engine: sa.Engine) -> None:
    seed_base(engine)
    seed_branch(engine, "east")
    for key in ("yoga", "spin", "barre", "gone", "new"):
        seed_series(engine, key)
    rows = [
        # A month of nights: yoga succeeded every night but the last, which failed.
        *(_row(f"night-{n}", "yoga", "success", NIGHT - timedelta(days=n)) for n in range(1, 31)),
        _row("night-0", "yoga", "failed", NIGHT),
        # spin failed in a run that recorded after a later one that succeeded it.
        _row("sensor", "spin", "success", NIGHT + timedelta(minutes=5)),
        _row("night-0", "spin", "failed", NIGHT),
        # barre's only row is the asking run's own (a retried run).
        _row("retry", "barre", "skipped", NIGHT),
        _row("night-0", "gone", "failed", NIGHT),
    ]
    with engine.begin() as conn:
        repo.write_generation_log(conn, rows=rows)
    execute(engine, "DELETE FROM class_series WHERE key = 'gone'")
    with engine.connect() as conn:
        found = repo.previous_statuses(conn, keys=["yoga", "spin", "barre", "gone", "new"],
                                       before_run="retry")
    assert found == {"yoga": "failed", "spin": "success"}
    with engine.connect() as conn:
        assert repo.previous_statuses(conn, keys=["yoga", "barre"], before_run="night-0") == {
            "yoga": "success", "barre": "skipped"}
