"""Per-series locks (FR-011): held for the body, by the run's session, then released.

PostgreSQL: one advisory lock per series id, taken in one statement; another
session cannot take any of them until the body ends.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine
from seriesgen_pipeline.persistence.locks import series_locks

NAMESPACE = 0x5E61


@pytest.mark.postgres
def test_advisory_locks_held_for_the_body_and_released(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    other = create_db_engine(postgres_url)
    try:
        with engine.connect() as conn, other.connect() as probe:
            try_lock = sa.text("SELECT pg_try_advisory_lock(:ns, :sid)")
            unlock = sa.text("SELECT pg_advisory_unlock(:ns, :sid)")
            with series_locks(conn, [30, 10, 20, 10]):
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                conn.rollback()
                held = probe.execute(sa.text(
                    "SELECT classid::int, objid::int FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = :pid AND granted ORDER BY objid"), {"pid": pid}).all()
                assert held == [(NAMESPACE, 10), (NAMESPACE, 20), (NAMESPACE, 30)]
                for sid in (10, 20, 30):
                    assert probe.execute(try_lock, {"ns": NAMESPACE, "sid": sid}
                                         ).scalar_one() is False
                assert probe.execute(try_lock, {"ns": NAMESPACE, "sid": 40}).scalar_one()
                probe.execute(unlock, {"ns": NAMESPACE, "sid": 40})
            for sid in (10, 20, 30):
                assert probe.execute(try_lock, {"ns": NAMESPACE, "sid": sid}).scalar_one()
                probe.execute(unlock, {"ns": NAMESPACE, "sid": sid})
            probe.commit()
    finally:
        engine.dispose()
        other.dispose()
