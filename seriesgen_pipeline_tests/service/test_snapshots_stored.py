"""Snapshots are stored once per fingerprint; every run is recorded.

Contract (``take_snapshots``, migration 0007): a run records itself in
``generation_runs`` (its series and how many snapshots it stored) and stores a
series' snapshot only when nothing is stored for the series yet or its latest
stored snapshot has another fingerprint. The fingerprint changes with anything
the snapshot holds: the series, its resolved values, and where a value comes from
(a value moved from the branch to the series unchanged). A series changed back
to an earlier state is stored again: its latest stored snapshot differs. A run
started again under the same id records itself once. Real SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import (
    execute,
    latest_snapshots,
    seed_base,
    seed_branch,
    seed_series,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
KEYS = ["east-barre", "east-spin", "east-yoga"]


def _run(engine: sa.Engine, run_id: str) -> None:
    eng.take_snapshots(engine, keys=None, now=NOW, run_id=run_id)


def _stored(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(
            "SELECT run_id, series_key FROM series_snapshots")).all())


def _runs(engine: sa.Engine) -> list[tuple[str, int, int]]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(
            "SELECT run_id, series, snapshots_stored FROM generation_runs")).all())


def test_a_snapshot_is_stored_only_when_its_series_changed(engine: sa.Engine) -> None:
    seed_base(engine)
    seed_branch(engine, "east", default_capacity=12)
    for key in KEYS:
        seed_series(engine, key)

    _run(engine, "r1")
    _run(engine, "r2")  # nothing changed
    assert _stored(engine) == [("r1", key) for key in KEYS]
    assert _runs(engine) == [("r1", 3, 3), ("r2", 3, 0)]

    execute(engine, "UPDATE class_series SET title = 'Spin at dawn' WHERE key = 'east-spin'")
    _run(engine, "r3")
    assert _stored(engine) == [("r1", key) for key in KEYS] + [("r3", "east-spin")]

    # The same capacity, now set on the series itself: only its provenance changed.
    execute(engine, "INSERT INTO scheduling_configs (scope, series_id, default_capacity, "
                    "updated_at) SELECT 'series', id, 12, :at FROM class_series "
                    "WHERE key = 'east-yoga'", at=NOW)
    _run(engine, "r4")
    latest = latest_snapshots(engine)
    assert latest["east-yoga"].run_id == "r4"
    with engine.connect() as conn:
        payload = conn.execute(sa.select(repo.snapshots_t.c.payload).where(
            repo.snapshots_t.c.run_id == "r4")).scalar_one()
    assert payload["config"]["default_capacity"] == 12
    assert payload["provenance"]["default_capacity"] == "series"

    # Back to its first title: its latest snapshot (r3's) differs, so it is stored.
    execute(engine, "UPDATE class_series SET title = 'East-Spin' WHERE key = 'east-spin'")
    _run(engine, "r5")
    assert latest_snapshots(engine)["east-spin"].run_id == "r5"
    assert latest_snapshots(engine)["east-spin"].fingerprint == _fingerprint(
        engine, "r1", "east-spin")
    assert {k: row.run_id for k, row in latest_snapshots(engine).items()} == {
        "east-barre": "r1", "east-spin": "r5", "east-yoga": "r4"}

    # Started again under the same id: recorded once, nothing stored twice.
    _run(engine, "r5")
    assert _runs(engine) == [("r1", 3, 3), ("r2", 3, 0), ("r3", 3, 1), ("r4", 3, 1),
                             ("r5", 3, 1)]
    assert len(_stored(engine)) == 6


def _fingerprint(engine: sa.Engine, run_id: str, key: str) -> str:
    t = repo.snapshots_t
    with engine.connect() as conn:
        return str(conn.execute(sa.select(t.c.fingerprint).where(
            t.c.run_id == run_id, t.c.series_key == key)).scalar_one())
