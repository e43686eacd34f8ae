"""A run keeps its Dagster storage connections instead of opening one per call.

Contract (docs/dagster.md, "Dagster internals"; docs/performance.md): outside the
webserver, dagster-postgres opens a new connection for each storage call. A
generation on PostgreSQL storage keeps one per storage for its runs
(``launch.run_generation``, and the step itself in a run worker), so a night's
run makes a handful of connections to the instance's database, not one per
event and query. After it, no connection is left open and the storages are as
Dagster made them. A kept connection the server has dropped (a restart, a
terminated backend) is replaced on the next call, not reported as an error.

PostgreSQL only: SQLite storage has no connections to keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.internals import storage_connections_kept
from seriesgen_pipeline.defs.launch import run_generation
from seriesgen_pipeline.defs.partitions import sync_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline.persistence.db import normalize_url
from seriesgen_pipeline.service.settings import Settings
from seriesgen_pipeline_tests.builders import seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.conftest import postgres_admin_url
from seriesgen_pipeline_tests.defs.support import NOW, postgres_stack

pytestmark = pytest.mark.postgres

KEYS = [f"c{i:02d}" for i in range(12)]
# Runs of 4 series: three runs a night.
RUN_SIZE = 4
# Two nights of three runs each opened 579 connections to the instance's database
# when each storage call made its own, and 13 with them kept (one per storage per
# night, and those threads open at once).
MOST_FOR_TWO_NIGHTS = 20
# A run executed on its own opened 102, then 89, connections when each call made its
# own; keeping them for its step, 67 and 62: the rest are Dagster's calls around the
# step (creating the run, its planned events, its start and end).
MOST_PER_RUN = 80


class _Stack:
    def __init__(self, engine: sa.Engine, url: str, storage_db: str,
                 instance: dg.DagsterInstance) -> None:
        self.engine, self.url, self.storage_db, self.instance = engine, url, storage_db, instance


@pytest.fixture
def stack() -> Iterator[_Stack]:
    with postgres_stack() as (engine, url, storage_db, instance):
        seed_base(engine)
        seed_branch(engine, "east", horizon_days=14)
        for number, key in enumerate(KEYS):
            seed_series(engine, key, room=f"Room {number}", instructor=f"Teacher {number}")
        yield _Stack(engine, url, storage_db, instance)


@pytest.fixture
def connections_to() -> Iterator[dict[str, int]]:
    """Connections this process opens, per database name, while the test runs."""
    opened: dict[str, int] = {}

    def count(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        name = dbapi_connection.info.dbname
        opened[name] = opened.get(name, 0) + 1

    event.listen(sa.engine.Engine, "connect", count)
    yield opened
    event.remove(sa.engine.Engine, "connect", count)


def _sessions_on(database: str) -> int:
    """Server sessions connected to ``database`` now (any process)."""
    admin = sa.create_engine(normalize_url(postgres_admin_url()), poolclass=NullPool)
    try:
        with admin.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                {"name": database}).scalar_one())
    finally:
        admin.dispose()


def _storage_pools(instance: dg.DagsterInstance) -> list[str]:
    return [type(storage._engine.pool).__name__  # type: ignore[attr-defined]
            for storage in (instance.run_storage, instance.event_log_storage,
                            instance.schedule_storage)]


def _generate(stack: _Stack) -> list[str]:
    settings = Settings(database_url=stack.url, run_chunk=RUN_SIZE)
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    report = run_generation(stack.engine, settings, keys=None, now=now, instance=stack.instance)
    assert not report.run_failures and not report.failed, (report.run_failures, report.failed)
    assert len(report.series) == len(KEYS)
    return report.run_ids


def test_a_night_keeps_one_connection_per_storage(stack: _Stack,
                                                   connections_to: dict[str, int]) -> None:
    cold, quiet = _generate(stack), _generate(stack)  # the second night changes nothing
    assert len(cold) == len(quiet) == 3
    opened = connections_to.get(stack.storage_db, 0)
    assert 0 < opened <= MOST_FOR_TWO_NIGHTS, opened
    assert _storage_pools(stack.instance) == ["NullPool"] * 3
    assert _sessions_on(stack.storage_db) == 0


def test_a_run_worker_keeps_its_steps_connections(stack: _Stack,
                                                  connections_to: dict[str, int]) -> None:
    """A run executed on its own (as a run worker does) keeps them for its step."""
    with stack.engine.connect() as conn:
        keys = [row[0] for row in conn.execute(sa.text("SELECT key FROM class_series"))]
    sync_partitions(stack.instance, keys)
    job = build_definitions(resource=SeriesgenResource(database_url=stack.url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    first, last = sorted(keys)[0], sorted(keys)[-1]
    counts = []
    for _night in range(2):
        before = connections_to.get(stack.storage_db, 0)
        result = job.execute_in_process(instance=stack.instance, tags=range_tags(first, last))
        assert result.success
        counts.append(connections_to.get(stack.storage_db, 0) - before)
    assert all(0 < n <= MOST_PER_RUN for n in counts), counts
    assert _storage_pools(stack.instance) == ["NullPool"] * 3


def test_a_dropped_kept_connection_is_replaced(stack: _Stack) -> None:
    instance = stack.instance
    with storage_connections_kept(instance):
        assert _storage_pools(instance) == ["QueuePool"] * 3
        assert instance.get_runs() == []
        assert _sessions_on(stack.storage_db) >= 1
        admin = sa.create_engine(normalize_url(postgres_admin_url()), poolclass=NullPool)
        try:
            with admin.connect() as conn:
                ended = conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name"), {"name": stack.storage_db}).scalar_one()
        finally:
            admin.dispose()
        assert ended >= 1
        assert instance.get_runs() == []  # a fresh connection, no error
        assert instance.event_log_storage.get_asset_records() == []
    assert _storage_pools(instance) == ["NullPool"] * 3
