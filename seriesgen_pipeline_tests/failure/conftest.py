"""Fixtures of the failure suite: template databases and reference states.

Each test gets its own database, cloned from a template that went through the
CLI exactly as an operator would:

- ``fleet``: ``db upgrade``, ``load fleet.yaml``, then a run at ``PRE_NOW`` of
  the ended series only (so that it has sessions to keep when it is retired);
  a run at ``NOW`` creates ``16 x 146`` sessions and retires ``zz-ended``.
- ``edited``: ``fleet`` after a full run at ``NOW`` and ``load edited.yaml``; a
  run at ``NOW`` then updates or deletes every one of those sessions.

A reference is one uninterrupted ``generate --all`` at ``NOW`` on a fresh clone
(SQLite); every crashed, raced or disturbed database must converge to it, on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seriesgen_pipeline_tests.conftest import create_postgres_database, drop_postgres_database
from seriesgen_pipeline_tests.failure import harness as h


@dataclass
class Template:
    """A prepared database to clone, and its state."""

    backend: str
    url: str
    state: h.State


@dataclass
class Reference:
    """One uninterrupted run at ``NOW`` on a fresh clone of a template."""

    before: h.State
    state: h.State
    report: dict[str, Any]
    sessions_json: list[dict[str, Any]]
    snapshot_at: float  # seconds from process start until its snapshots were stored
    seconds: float  # seconds from process start to exit


@pytest.fixture(scope="session")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    return {"fleet": h.write_data_file(folder / "fleet.yaml", h.fleet()),
            "edited": h.write_data_file(folder / "edited.yaml", h.fleet_edited())}


def _prepare_fleet(url: str, files: dict[str, Path], work: Path) -> None:
    env = h.child_env(None)
    h.setup_database(url, files["fleet"], env=env, workdir=work)
    h.run(["generate", "--series", "zz-ended", "--now", h.PRE_NOW, "--format", "json",
           "--database-url", url], env=env, workdir=work)


def _prepare_edited(url: str, files: dict[str, Path], work: Path) -> None:
    env = h.child_env(None)
    h.run(h.generate_args(url), env=env, workdir=work)
    h.run(["load", str(files["edited"]), "--database-url", url], env=env, workdir=work)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory,
                     data_files: dict[str, Path]) -> dict[str, Template]:
    work = tmp_path_factory.mktemp("sqlite_templates")
    fleet_url = h.sqlite_url(work / "fleet.db")
    _prepare_fleet(fleet_url, data_files, work)
    edited_url = h.copy_sqlite(fleet_url, work / "edited.db")
    _prepare_edited(edited_url, data_files, work)
    return {"fleet": Template("sqlite", fleet_url, h.read_state(fleet_url)),
            "edited": Template("sqlite", edited_url, h.read_state(edited_url))}


@pytest.fixture(scope="session")
def postgres_templates(tmp_path_factory: pytest.TempPathFactory,
                       data_files: dict[str, Path]) -> Iterator[dict[str, Template]]:
    work = tmp_path_factory.mktemp("pg_templates")
    made: list[str] = []
    try:
        fleet_url = create_postgres_database("sg_tmpl")
        made.append(fleet_url)
        _prepare_fleet(fleet_url, data_files, work)
        edited_url = h.clone_postgres(fleet_url, "sg_tmpl")
        made.append(edited_url)
        _prepare_edited(edited_url, data_files, work)
        yield {"fleet": Template("postgresql", fleet_url, h.read_state(fleet_url)),
               "edited": Template("postgresql", edited_url, h.read_state(edited_url))}
    finally:
        for url in made:
            drop_postgres_database(url)


def _reference(template: Template, work: Path) -> Reference:
    url = h.copy_sqlite(template.url, work / "reference.db")
    env = h.child_env(None)
    records = h.run_records(url)
    proc = h.start(h.generate_args(url), env=h.child_env(
        None, SERIESGEN_CHUNK_ROWS=str(h.CHUNK_ROWS)), workdir=work)
    snapshot_at = h.wait_for_snapshot(proc, url, records)
    assert proc.wait() == 0, proc.stderr()[-3000:]
    seconds = time.monotonic() - proc.started
    assert snapshot_at is not None
    return Reference(template.state, h.read_state(url), proc.json(),
                     h.sessions_json(url, env=env, workdir=work), snapshot_at, seconds)


@pytest.fixture(scope="session")
def references(tmp_path_factory: pytest.TempPathFactory,
               sqlite_templates: dict[str, Template]) -> dict[str, Reference]:
    """``fleet`` and ``edited``: what one uninterrupted run at ``NOW`` leaves.

    The run uses the suite's small chunks, so its timings calibrate the random
    kill instants; its rows are what any chunk size must give.
    """
    return {kind: _reference(t, tmp_path_factory.mktemp(f"reference_{kind}"))
            for kind, t in sqlite_templates.items()}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_db(request: pytest.FixtureRequest, backend: str,
            tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make_db(kind)``: a fresh clone of template ``kind`` on ``backend``; returns its URL."""
    made: list[str] = []
    count = iter(range(1_000))

    def make(kind: str) -> str:
        if backend == "sqlite":
            template = request.getfixturevalue("sqlite_templates")[kind]
            return h.copy_sqlite(template.url, tmp_path / f"{kind}-{next(count)}.db")
        template = request.getfixturevalue("postgres_templates")[kind]
        url = h.clone_postgres(template.url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def initialized_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Dagster instance with the project's dagster.yaml, its storage created once
    (``dagster instance migrate``), as ``make`` / ``dagster dev`` leave it."""
    home = tmp_path_factory.mktemp("dagster_home")
    env = h.child_env(home)
    subprocess.run([str(Path(sys.executable).with_name("dagster")), "instance", "migrate"],
                   env=env, check=True, capture_output=True, timeout=120)
    return home


@pytest.fixture
def dagster_home(initialized_dagster_home: Path, tmp_path: Path) -> Path:
    """A per-test copy of the initialized Dagster instance, shared by the test's processes.

    (Racing processes on a *fresh* DAGSTER_HOME fail: see
    regressions/test_issue_dagster_instance_errors.py.)
    """
    home = tmp_path / "dagster_home"
    shutil.copytree(initialized_dagster_home, home)
    return home
