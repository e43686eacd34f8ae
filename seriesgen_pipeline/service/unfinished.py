"""What a run that ended before recording its series (killed, interrupted) committed.

A run writes its ``generation_log`` rows at its end. One that dies before leaves
none, although chunks of it committed sessions, and ``seriesgen stats`` would not
count them. Afterwards (the failure sensor, an interrupted CLI) each series of
the run without a row gets one: status ``failed``, the sessions that run created
and updated as its counts (a row created by the run has its creation stamp as its
update stamp), and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo


def record_unfinished_run(engine: sa.Engine, *, run_id: str, keys: Sequence[str],
                          started_at: datetime, reason: str) -> int:
    """Log each series of ``keys`` that ``run_id`` did not record; returns how many."""
    finished = repo.utcnow()
    with engine.begin() as conn:
        logged = repo.logged_series(conn, run_id=run_id)
        written = repo.rows_written_by_run(conn, run_id=run_id)
        rows = [{
            "run_id": run_id, "series_key": key, "status": "failed",
            "started_at": started_at, "finished_at": finished,
            "window_start": None, "window_end": None,
            "created": written.get(key, (0, 0))[0], "updated": written.get(key, (0, 0))[1],
            "deleted": 0, "protected": 0, "error": reason, "config_hash": None,
        } for key in keys if key not in logged]
        repo.write_generation_log(conn, rows=rows)
    return len(rows)
