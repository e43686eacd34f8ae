"""Fixtures of the failure suite: template databases and the reference state.

Each test gets its own database, cloned from a template that went through the
CLI exactly as an operator would (``db upgrade``, ``load FILE``, then a run at
``PRE_NOW`` of the ended series only, so that it has sessions to keep when it is
retired). The reference is one uninterrupted ``generate --all`` at ``NOW`` on a
fresh clone (SQLite); every crashed, raced or disturbed database must converge
to it, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database
from seriesgen_pipeline_tests.failure import harness as h


@dataclass
class Reference:
    """One uninterrupted run at ``NOW`` on a fresh database."""

    state: h.State
    report: dict[str, Any]
    sessions_json: list[dict[str, Any]]


@dataclass
class Template:
    backend: str
    url: str
    data_file: Path


def _prepare(url: str, data_file: Path, workdir: Path) -> None:
    env = h.child_env(None)
    h.setup_database(url, data_file, env=env, workdir=workdir)
    h.run(["generate", "--series", "zz-ended", "--now", h.PRE_NOW, "--format", "json",
           "--database-url", url], env=env, workdir=workdir)


@pytest.fixture(scope="session")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h.write_data_file(tmp_path_factory.mktemp("data") / "fleet.yaml", h.fleet())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, fleet_file: Path) -> Template:
    work = tmp_path_factory.mktemp("sqlite_template")
    url = h.sqlite_url(work / "template.db")
    _prepare(url, fleet_file, work)
    return Template("sqlite", url, fleet_file)


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory,
                      fleet_file: Path) -> Iterator[Template]:
    url = create_postgres_database("sg_tmpl")
    try:
        _prepare(url, fleet_file, tmp_path_factory.mktemp("pg_template"))
        yield Template("postgresql", url, fleet_file)
    finally:
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Template) -> Reference:
    work = tmp_path_factory.mktemp("reference")
    url = h.copy_sqlite(sqlite_template.url, work / "reference.db")
    env = h.child_env(None)
    report = h.run(h.generate_args(url), env=env, workdir=work).json()
    return Reference(h.read_state(url), report, h.sessions_json(url, env=env, workdir=work))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """A database cloned from the template of ``backend`` (loaded, ended series pre-run)."""
    if backend == "sqlite":
        template: Template = request.getfixturevalue("sqlite_template")
        yield h.copy_sqlite(template.url, tmp_path / "app.db")
        return
    template = request.getfixturevalue("postgres_template")
    url = h.clone_postgres(template.url)
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A per-test Dagster instance directory holding the project's dagster.yaml."""
    return tmp_path / "dagster_home"
