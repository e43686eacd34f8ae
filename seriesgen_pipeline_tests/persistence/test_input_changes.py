"""``series_changes`` counts every change of a scheduling input, whoever makes it.

The change sensor skips a tick when the count is the one it saw last, so the
count must move on every write that can change what a series generates, raw SQL
included (the booking app writes these tables too), and must not move on the
generator's own bookkeeping (the watermark ``last_generated_through``), or every
run would wake the sensor. Real SQLite and PostgreSQL databases, raw SQL only.
"""

from __future__ import annotations

import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import upgrade_database
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        value = repo.input_changes(conn)
    assert value is not None
    return value


def test_every_input_write_counts_and_the_watermark_does_not(engine: sa.Engine) -> None:
    seed_base(engine)
    seed_branch(engine, "east")
    seed_series(engine, "east-yoga", branch="east")
    seeded = count(engine)
    assert seeded >= 3  # base, branch (row and scope), series

    # A content edit that touches neither version nor updated_at.
    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'east-yoga'")
    assert count(engine) == seeded + 1
    # The generator's own bookkeeping is not a change of input.
    execute(engine, "UPDATE class_series SET last_generated_through = '2026-04-01 00:00:00' "
                    "WHERE key = 'east-yoga'")
    assert count(engine) == seeded + 1
    execute(engine, "UPDATE scheduling_configs SET horizon_days = 30 WHERE scope = 'base'")
    assert count(engine) == seeded + 2
    execute(engine, "UPDATE branches SET name = 'East Side' WHERE id = 'east'")
    assert count(engine) == seeded + 3
    execute(engine, "DELETE FROM class_series WHERE key = 'east-yoga'")
    assert count(engine) == seeded + 4


def test_an_update_matching_no_row_counts_nothing(engine: sa.Engine) -> None:
    seed_base(engine)
    before = count(engine)
    execute(engine, "UPDATE class_series SET room = 'x' WHERE key = 'no-such-series'")
    assert count(engine) == before


def test_one_transaction_counts_once_on_postgresql(engine: sa.Engine) -> None:
    """PostgreSQL bumps once per transaction, at commit; SQLite once per row."""
    seed_base(engine)
    seed_branch(engine, "east")
    for key in ("east-yoga", "east-pilates", "east-spin"):
        seed_series(engine, key, branch="east")
    before = count(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE class_series SET room = 'Studio 2'"))
        conn.execute(sa.text("UPDATE branches SET name = 'East 2'"))
        if engine.dialect.name == "postgresql":
            assert repo.input_changes(conn) == before  # at commit, not before
    assert count(engine) == (before + 1 if engine.dialect.name == "postgresql" else before + 4)


def test_the_schema_migrates_again_after_its_tables_are_dropped(engine: sa.Engine) -> None:
    """Dropping every table (as a reset does) leaves the trigger function behind on
    PostgreSQL; migrating again replaces it, and the count works."""
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    upgrade_database(engine)
    seed_base(engine)
    assert count(engine) == 1
