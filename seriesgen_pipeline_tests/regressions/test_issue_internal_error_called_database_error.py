"""An error of seriesgen's own is not reported as the database's.

Scenario: the batch's write raised an exception that is not a database error (a
programming error, here injected with ``SERIESGEN_FAULT=raise_chunk_write``).
Before: the batch's series failed with "database error (…); rerun the series" and
no traceback anywhere. Now: they fail with "internal error (<type>: <message>)",
the traceback is in the log record, the open chunk is rolled back, and a rerun
without the fault generates them. A real database error keeps its own message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series, session_rows

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _run(engine: sa.Engine, run_id: str) -> eng.SeriesOutcome:
    snaps = eng.take_snapshots(engine, keys=None, now=NOW, run_id=run_id)
    return eng.generate(engine, snaps.values(), now=NOW, run_id=run_id)[0]


def test_an_internal_error_is_named_as_such_with_its_traceback_logged(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    seed_base(engine)
    seed_branch(engine, "east", horizon_days=14)
    seed_series(engine, "east-yoga")
    monkeypatch.setenv("SERIESGEN_FAULT", "raise_chunk_write")
    caplog.set_level(logging.ERROR, logger="seriesgen")
    # The CLI's logging set-up turns propagation off; caplog listens at the root.
    monkeypatch.setattr(logging.getLogger("seriesgen"), "propagate", True)

    outcome = _run(engine, "run-1")

    assert outcome.status == eng.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith(
        "internal error (InjectedFault: injected fault at chunk_write)")
    assert "database error" not in outcome.error
    records = [r for r in caplog.records if r.getMessage().startswith("internal error")]
    assert records and records[0].exc_info is not None
    assert session_rows(engine) == []  # the chunk was rolled back

    monkeypatch.delenv("SERIESGEN_FAULT")
    again = _run(engine, "run-2")
    assert again.status == eng.SUCCESS
    assert again.created == 4  # Mon/Wed 2026-03-02..03-16
