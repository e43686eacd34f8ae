"""Run records kept for a bounded time (``SERIESGEN_RETENTION_DAYS``, default 30).

Every run leaves a ``generation_runs`` row, a ``generation_log`` row per series and
a snapshot per series that changed, and conflicts may leave notifications; without
pruning they grow with every night. Each run
prunes the records of its own series, so a night prunes every series once, at a
cost that follows the run's size. What the next run compares against (a series'
latest snapshot and log row) and the notifications of conflicts still current
are always kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo

log = logging.getLogger("seriesgen.retention")


def prune_records(engine: sa.Engine, *, series_keys: Sequence[str], retention_days: int
                  ) -> dict[str, int] | None:
    """Delete the run records of ``series_keys`` older than ``retention_days`` (wall clock).

    Returns rows deleted per table, or None when the database refused (the records
    stay for the next run to prune; the run itself is not failed for it).
    """
    before = repo.utcnow() - timedelta(days=retention_days)
    try:
        with engine.begin() as conn:
            deleted = repo.prune_run_records(conn, series_keys=series_keys, before=before)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("run records not pruned: %s", str(exc).splitlines()[0][:300])
        return None
    if any(deleted.values()):
        log.info("run records older than %d days pruned: %s", retention_days,
                 " ".join(f"{table}={count}" for table, count in deleted.items()))
    return deleted
