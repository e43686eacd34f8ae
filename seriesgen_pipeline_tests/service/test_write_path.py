"""The fast write path keeps the exact rows (SPEC §5, NFR-001).

- A series never generated (no watermark, no generation state) is planned without
  reading its rows; if rows turn up anyway (an operator cleared the watermark by
  hand), the batch is planned again from its rows: no duplicate, no lost edit.
- Never-generated series are expanded as their rows are written (a stream on
  PostgreSQL): the rows, counters, watermarks and states are those of the planner.
- The cyclic garbage collector is paused during generation and back on after it,
  whatever happens.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline.service.engine import generation
from seriesgen_pipeline_tests.builders import (
    execute,
    seed_base,
    seed_branch,
    seed_series,
    session_rows,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday


def run(engine: sa.Engine, *, run_id: str, settings: eng.EngineSettings | None = None,
        now: datetime = NOW) -> dict[str, eng.SeriesOutcome]:
    snaps = eng.take_snapshots(engine, keys=None, now=now, run_id=run_id)
    outcomes = eng.generate(engine, snaps.values(), now=now, run_id=run_id,
                            settings=settings or eng.EngineSettings())
    return {o.series_key: o for o in outcomes}


def ids_by_occurrence(engine: sa.Engine) -> dict[tuple[str, str], int]:
    t = repo.sessions_t
    with engine.connect() as conn:
        return {(k, o): i for i, k, o in conn.execute(
            sa.select(t.c.id, t.c.series_key, t.c.occurrence_key))}


def test_rows_of_a_series_whose_watermark_was_cleared_are_read_and_reconciled(engine):
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "east-yoga", title="Yoga Basics")
    assert run(engine, run_id="run-1")["east-yoga"].created == 4
    before = ids_by_occurrence(engine)
    # By hand: the series looks never generated, and its title changes.
    execute(engine, "UPDATE class_series SET last_generated_through = NULL, title = 'Yoga Flow'")
    execute(engine, "DELETE FROM generation_state")

    outcome = run(engine, run_id="run-2")["east-yoga"]

    assert outcome.status == eng.SUCCESS, outcome.error
    assert outcome.counts() == {"created": 0, "updated": 4, "deleted": 0, "protected": 0}
    assert ids_by_occurrence(engine) == before  # the same rows, none duplicated
    assert [r["title"] for r in session_rows(engine)] == ["Yoga Flow"] * 4
    with engine.connect() as conn:
        mark = conn.execute(sa.select(repo.series_t.c.last_generated_through)).scalar_one()
    assert mark == datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # now + 14 days
    # And the run after it continues from a consistent state.
    assert run(engine, run_id="run-3")["east-yoga"].counts() == {
        "created": 0, "updated": 0, "deleted": 0, "protected": 0}


def test_rows_partly_in_the_way_of_a_series_believed_new_are_found(engine):
    """Two of its four rows are still there: the other two are written, then the
    two found in the way, the batch is planned again from its rows. (On SQLite the
    rows the triggers log must not count as inserted: they would hide the two.)"""
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "east-yoga", title="Yoga Basics")
    run(engine, run_id="run-1")
    execute(engine, "DELETE FROM class_sessions WHERE occurrence_key IN ('2026-03-04', "
                    "'2026-03-11')")
    execute(engine, "UPDATE class_series SET last_generated_through = NULL, title = 'Yoga Flow'")
    execute(engine, "DELETE FROM generation_state")

    outcome = run(engine, run_id="run-2")["east-yoga"]

    assert outcome.counts() == {"created": 2, "updated": 2, "deleted": 0, "protected": 0}
    assert [(r["occurrence_key"], r["title"]) for r in session_rows(engine)] == [
        ("2026-03-02", "Yoga Flow"), ("2026-03-04", "Yoga Flow"),
        ("2026-03-09", "Yoga Flow"), ("2026-03-11", "Yoga Flow")]


def test_a_cleared_watermark_next_to_new_series_in_small_chunks(engine):
    """The series in the way shares chunks with never-generated series; every chunk
    that was committed before the conflict stays, and nothing is written twice."""
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "a-old", room="Room A")
    run(engine, run_id="run-1")
    execute(engine, "UPDATE class_series SET last_generated_through = NULL, room = 'Room Z'")
    execute(engine, "DELETE FROM generation_state")
    for key in ("b-new", "c-new"):
        seed_series(engine, key, room=f"Room {key}")

    outcomes = run(engine, run_id="run-2",
                   settings=eng.EngineSettings(chunk_rows=3, batch_series=8))

    assert {k: (o.status, o.created, o.updated) for k, o in outcomes.items()} == {
        "a-old": ("success", 0, 4), "b-new": ("success", 4, 0), "c-new": ("success", 4, 0)}
    rows = session_rows(engine)
    assert len(rows) == 12
    assert {r["room"] for r in rows if r["series_key"] == "a-old"} == {"Room Z"}


def _seed_many(engine: sa.Engine, count: int) -> None:
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=60)
    for n in range(count):
        seed_series(engine, f"s{n:02d}", room=f"Room {n % 5}", start_time=f"{7 + n % 12:02d}:00",
                    recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR" if n % 2 else "FREQ=DAILY")


def _by_key(engine: sa.Engine) -> dict[str, object]:
    """Rows, watermarks and generation states by series key (ids, and with them
    fingerprints, differ)."""
    s, g = repo.series_t, repo.state_t
    with engine.connect() as conn:
        marks = dict(conn.execute(sa.select(s.c.key, s.c.last_generated_through)).all())
        states = {r["key"]: {k: v for k, v in r.items()
                             if k not in ("key", "series_id", "fingerprint")}
                  for r in conn.execute(sa.select(s.c.key, g).join(g, g.c.series_id == s.c.id))
                  .mappings()}
    rows = [{k: v for k, v in r.items() if k not in ("series_id", "origin_series_id")}
            for r in session_rows(engine)]
    return {"rows": rows, "marks": marks, "states": states}


def _wipe(engine: sa.Engine) -> None:
    for table in ("class_sessions", "generation_state", "series_snapshots", "generation_log",
                  "series_conflicts", "scheduling_configs", "class_series", "branches"):
        execute(engine, f"DELETE FROM {table}")


def test_new_series_written_as_expanded_equal_the_planned_path(engine):
    """Never-generated series are expanded chunk by chunk into the write; the same
    series planned from (no) rows give the same rows, watermarks, states, counts."""
    settings = eng.EngineSettings(chunk_rows=37, batch_series=4)
    results = {}
    for path in ("streamed", "planned"):
        _wipe(engine)
        _seed_many(engine, 30)
        if path == "planned":  # a watermark makes the planner read (and find no rows)
            execute(engine, "UPDATE class_series SET last_generated_through = :t",
                    t=datetime(2026, 1, 1, tzinfo=UTC))
        first = run(engine, run_id=f"first-{path}", settings=settings)
        execute(engine, "UPDATE class_series SET room = 'Hall' WHERE key IN ('s03', 's17')")
        execute(engine, "UPDATE class_sessions SET booked_count = 2 "
                        "WHERE series_key = 's17' AND occurrence_key = '2026-03-04'")
        second = run(engine, run_id=f"second-{path}", settings=settings)
        counts = [{k: (o.status, *o.counts().values()) for k, o in run_.items()}
                  for run_ in (first, second)]
        results[path] = (counts, _by_key(engine))
    assert results["streamed"] == results["planned"]
    counts, state = results["streamed"]
    # Window 2026-03-02T12:00Z .. 2026-05-01T12:00Z, New York (EST, then EDT from 03-08).
    # 15 daily series: 03-02 .. 04-30 (60 days), and 05-01 for the three at 07:00 EDT
    # (11:00Z); 15 on MO, WE, FR: 26 days to 04-29, and Friday 05-01 for the three at
    # 08:00 EDT (12:00Z, the window's end). 15 x 60 + 3 + 15 x 26 + 3 = 1296.
    assert sum(c[1] for c in counts[0].values()) == 1296
    assert counts[1]["s17"][0] == "success" and counts[1]["s17"][4] == 1  # booked: protected
    assert len(state["rows"]) == 1296
    assert set(state["marks"].values()) == {datetime(2026, 5, 1, 12, 0, tzinfo=UTC)}


def test_the_garbage_collector_is_back_on_after_generation(engine):
    seed_base(engine)
    seed_branch(engine, "east", timezone="America/New_York", horizon_days=14)
    seed_series(engine, "east-yoga")
    seen: list[bool] = []
    real_plan = generation.plan_batch  # looked up there by each batch

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        raise RuntimeError("boom")

    assert gc.isenabled()
    generation.plan_batch = spy  # type: ignore[assignment]
    try:
        outcome = run(engine, run_id="run-1")["east-yoga"]
    finally:
        generation.plan_batch = real_plan  # type: ignore[assignment]
    assert seen == [False]  # paused while planning
    assert outcome.status == eng.FAILED and "boom" in (outcome.error or "")
    assert gc.isenabled()
