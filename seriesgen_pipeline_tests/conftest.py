"""Shared fixtures: real SQLite files and real PostgreSQL databases, one per test.

PostgreSQL tests read ``SERIESGEN_TEST_POSTGRES_URL``; without it they skip
(loudly, in the summary), unless ``SERIESGEN_REQUIRE_POSTGRES=1`` makes them fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import create_db_engine, normalize_url, upgrade_database

_skipped_postgres: list[str] = []


def postgres_admin_url() -> str:
    """The server URL from the environment, or skip/fail as configured."""
    url = os.environ.get("SERIESGEN_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("SERIESGEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("SERIESGEN_REQUIRE_POSTGRES=1 but SERIESGEN_TEST_POSTGRES_URL is unset")
        _skipped_postgres.append("x")
        pytest.skip("PostgreSQL not configured: set SERIESGEN_TEST_POSTGRES_URL")
    return url


def create_postgres_database(prefix: str = "sg_test") -> str:
    """Create an empty database on the test server; returns its URL."""
    admin_url = normalize_url(postgres_admin_url())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        if os.environ.get("SERIESGEN_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc.orig}")
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database`` (terminating its sessions)."""
    parsed = make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres").render_as_string(
        hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh SQLite file."""
    return f"sqlite:///{tmp_path}/app.db"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Each test runs on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/app.db"
        return
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def _migrated(url: str) -> Iterator[sa.Engine]:
    eng = create_db_engine(url)
    upgrade_database(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated application database."""
    yield from _migrated(db_url)


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A migrated PostgreSQL application database (for what only PostgreSQL has)."""
    yield from _migrated(postgres_url)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _skipped_postgres:
        terminalreporter.write_sep(
            "!", f"{len(_skipped_postgres)} PostgreSQL test(s) SKIPPED: "
                 "set SERIESGEN_TEST_POSTGRES_URL to run them", red=True, bold=True)


@pytest.fixture(autouse=True)
def _restore_dagster_state_storage() -> Iterator[None]:
    """Keep one test's Dagster instance out of the next test's definition loads.

    Entering an instance sets a context variable (its definitions-state storage) that
    Dagster 1.13 leaves pointing at the instance when contexts built on the same
    instance (schedule/sensor contexts) enter and exit it again; the next
    ``Definitions`` load would then open a deleted temporary instance.
    """
    from dagster._core.storage.defs_state.base import _current_storage

    token = _current_storage.set(None)
    yield
    try:
        _current_storage.reset(token)
    except ValueError:  # pragma: no cover - reset from another context
        _current_storage.set(None)
