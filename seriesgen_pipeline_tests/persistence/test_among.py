"""Selecting the rows of many keys at once.

Contract (``repository.tables.among``): its conditions, one statement each, select
together exactly the rows whose column is one of the values, however many: on
PostgreSQL in one statement (one bound array), on SQLite in ``IN`` lists of at most
``size``; no values, no statement. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.repository.tables import among, log_t

NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_the_conditions_select_the_rows_of_the_values_whatever_their_number(
        engine: sa.Engine) -> None:
    with engine.begin() as conn:
        repo.write_generation_log(conn, rows=[{
            "run_id": f"night-{n % 3}", "series_key": f"s{n:05d}", "status": "success",
            "started_at": NIGHT, "finished_at": NIGHT, "window_start": None,
            "window_end": None, "created": 0, "updated": 0, "deleted": 0, "protected": 0,
            "error": None, "config_hash": "c"} for n in range(4500)])
    # Every other key, and one no row has: 2,251 values.
    wanted = [f"s{n:05d}" for n in range(0, 4500, 2)] + ["absent"]
    with engine.connect() as conn:
        conditions = list(among(conn, log_t.c.series_key, wanted))
        found = [key for condition in conditions
                 for key in conn.execute(sa.select(log_t.c.series_key).where(condition))
                 .scalars()]
        assert sorted(found) == [f"s{n:05d}" for n in range(0, 4500, 2)]
        assert len(conditions) == (1 if engine.dialect.name == "postgresql" else 2)
        assert list(among(conn, log_t.c.series_key, [])) == []
