"""Lists bound as parameters on PostgreSQL.

Contract (``persistence.db.create_db_engine``): on PostgreSQL (psycopg 3) a list
bound as a parameter goes as one array in binary format, and every value the
repository binds so (keys with quotes, commas, braces and backslashes, nulls,
64-bit ids, instants to the microsecond, no values at all) comes back as it went.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from psycopg.adapt import PyFormat
from psycopg.types.array import ListBinaryDumper

from seriesgen_pipeline.persistence.repository.tables import is_among, unnest_arrays

pytestmark = pytest.mark.postgres

KEYS = ['plain', 'with "quotes"', "a,b", "{braces}", "back\\slash", "NULL", "", None,
        "zürich ✓"]
# 2026-03-29 01:00 UTC is when Europe/Berlin moves to summer time.
STARTS = [datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
          datetime(2026, 3, 29, 3, 0, tzinfo=timezone(timedelta(hours=2))),
          datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC), None,
          datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
          datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
IDS = [1, 2**40, -7, 0, 32767, 32768, 2**31, None, 5]


def test_lists_go_as_binary_arrays(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        assert raw.adapters.get_dumper(list, PyFormat.AUTO) is ListBinaryDumper


def test_every_kind_of_value_comes_back_as_it_went(pg_engine: sa.Engine) -> None:
    arrays = unnest_arrays({"keys": "varchar", "starts": "timestamptz", "ids": "int8"})
    with pg_engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT k, s, i FROM {arrays} AS u(k, s, i)"),
                            {"keys": KEYS, "starts": STARTS, "ids": IDS}).all()
        assert [tuple(row) for row in rows] == list(zip(KEYS, STARTS, IDS, strict=True))
        assert rows[1][1] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        empty = conn.execute(sa.text(f"SELECT count(*) FROM {arrays} AS u(k, s, i)"),
                             {"keys": [], "starts": [], "ids": []}).scalar_one()
        assert empty == 0


def test_a_column_among_an_array_of_values(pg_engine: sa.Engine) -> None:
    values = sa.table("v", sa.column("key", sa.String), sa.column("id", sa.BigInteger))
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE v (key varchar(200), id bigint)")
        conn.execute(sa.insert(values), [{"key": k, "id": i} for k, i in zip(KEYS, IDS,
                                                                              strict=True)])
        by_key = conn.execute(sa.select(values.c.key).where(
            is_among(conn, values.c.key, ["a,b", "{braces}", 'with "quotes"', "absent"])))
        assert sorted(by_key.scalars()) == ["a,b", 'with "quotes"', "{braces}"]
        by_id = conn.execute(sa.select(values.c.id).where(
            is_among(conn, values.c.id, [2**40, 32768, -7, 3])))
        assert sorted(by_id.scalars()) == [-7, 32768, 2**40]
