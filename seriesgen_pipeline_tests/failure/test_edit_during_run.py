"""Edit during a run (FR-011, SPEC §5 "Concurrency": the start-of-run snapshot).

Contract: series and configuration rows edited with raw SQL (any column; no
``version`` or ``updated_at`` bump, as another writer might) while a
``seriesgen generate`` process is running do not change that run's output: every
series' sessions come entirely from the run's start-of-run snapshot — no series
half old, half new — and the run does not retire a series whose ``end_date`` was
extended under it (the edit would be lost). The next run reconciles every edit:
it ends with exactly the rows of one run over the edited data on a fresh
database.

The run is held after storing its snapshots with
``SERIESGEN_FAULT=pause_after_snapshot:<seconds>``; the edits land in that pause,
before the run reads any session, so any later re-read of a series or
configuration by the run would show up in its output.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seriesgen_pipeline_tests.failure import harness as h
from seriesgen_pipeline_tests.failure.conftest import Reference, Template

PAUSE = 3.0

EDITS = [  # (what, SQL); every column of a series, and configuration at two scopes
    ("s00 title", "UPDATE class_series SET title = 'Renamed' WHERE key = 's00'"),
    ("s01 time of day", "UPDATE class_series SET start_time = '07:45' WHERE key = 's01'"),
    ("s02 rule", "UPDATE class_series SET recurrence = 'FREQ=WEEKLY;BYDAY=TU,TH' "
                 "WHERE key = 's02'"),
    ("s03 room, instructor", "UPDATE class_series SET room = 'Annex', instructor = 'Sub' "
                             "WHERE key = 's03'"),
    ("s04 capacity", "UPDATE class_series SET capacity = 5 WHERE key = 's04'"),
    ("s05 duration", "UPDATE class_series SET duration_minutes = 120 WHERE key = 's05'"),
    ("s06 exdates", "UPDATE class_series SET exdates = {json} WHERE key = 's06'"),
    ("s07 end_date", "UPDATE class_series SET end_date = '2026-04-30' WHERE key = 's07'"),
    ("s08 start_date", "UPDATE class_series SET start_date = '2026-04-01' WHERE key = 's08'"),
    ("s10 branch (New York -> London)",
     "UPDATE class_series SET branch_id = 'west' WHERE key = 's10'"),
    ("s11 series-scope horizon",
     "INSERT INTO scheduling_configs (scope, series_id, horizon_days, updated_at) "
     "SELECT 'series', id, 30, '2026-01-01 00:00:00' FROM class_series WHERE key = 's11'"),
    ("west branch capacity",
     "UPDATE scheduling_configs SET default_capacity = 40 "
     "WHERE scope = 'branch' AND branch_id = 'west'"),
    ("zz-ended end_date extended",
     "UPDATE class_series SET end_date = '2026-12-31' WHERE key = 'zz-ended'"),
]


def apply_edits(url: str) -> None:
    """Run every edit of ``EDITS`` in one transaction, as another writer would."""
    engine = h.plain_engine(url)
    json_value = ("CAST('[\"2026-03-10\", \"2026-04-14\"]' AS json)"
                  if engine.dialect.name == "postgresql" else "'[\"2026-03-10\", \"2026-04-14\"]'")
    try:
        with engine.begin() as conn:
            for what, sql in EDITS:
                done = conn.execute(sa.text(sql.replace("{json}", json_value))).rowcount
                assert done == 1, f"edit {what!r} touched {done} rows"
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def edited_reference(tmp_path_factory: pytest.TempPathFactory,
                     sqlite_templates: dict[str, Template]) -> Reference:
    """The edits applied to a fresh database, then one uninterrupted run."""
    work = tmp_path_factory.mktemp("edit_reference")
    template = sqlite_templates["fleet"]
    url = h.copy_sqlite(template.url, work / "edited.db")
    apply_edits(url)
    env = h.child_env(None)
    started = time.monotonic()
    report = h.run(h.generate_args(url), env=env, workdir=work).json()
    return Reference(template.state, h.read_state(url), report,
                     h.sessions_json(url, env=env, workdir=work), 0.0,
                     time.monotonic() - started)


def test_edits_during_a_run_wait_for_the_next_run(backend: str, make_db: Any,
                                                  references: dict[str, Reference],
                                                  edited_reference: Reference,
                                                  tmp_path: Path) -> None:
    original = references["fleet"]
    for series in ("s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09",
                   "s10", "s11", "zz-ended"):  # every edit shows in the rows it leads to
        assert ({k: v for k, v in edited_reference.state.sessions.items() if k[0] == series}
                != {k: v for k, v in original.state.sessions.items() if k[0] == series}), series
    url = make_db("fleet")
    env = h.scenario_env("fleet", SERIESGEN_FAULT=f"pause_after_snapshot:{PAUSE}")
    records = h.run_records(url)
    proc = h.start(h.generate_args(url), env=env, workdir=tmp_path)
    stored = h.wait_for_snapshot(proc, url, records)
    assert stored is not None, f"the run ended before storing snapshots:\n{proc.stderr()}"
    apply_edits(url)
    edited_after = time.monotonic() - proc.started - stored
    assert proc.returncode is None and edited_after < PAUSE, (
        f"the edits landed {edited_after:.1f}s after the snapshot, not during the pause")
    assert proc.wait() == 0, proc.stderr()[-3000:]

    # The run's output is entirely that of its snapshot: the unedited data.
    state = h.read_state(url)
    assert not state.duplicates
    assert state.sessions == original.state.sessions, (
        "the run that was going on during the edits wrote something other than its "
        "start-of-run snapshot:\n" + h.diff_sessions(state.sessions, original.state.sessions))
    # ... except that it must not retire a series whose end_date was extended meanwhile.
    assert "zz-ended" in state.series, "the run retired a series extended during the run"
    assert not any(k[0] == "zz-ended" for k in state.orphans)

    # The next run reconciles every edit: the rows of one run over the edited data.
    report = h.run(h.generate_args(url), env=h.child_env(None), workdir=tmp_path).json()
    assert report["totals"]["failed"] == 0, report
    h.check_converged(h.read_state(url), edited_reference.state)
    assert h.sessions_json(url, env=h.child_env(None), workdir=tmp_path) == \
        edited_reference.sessions_json
