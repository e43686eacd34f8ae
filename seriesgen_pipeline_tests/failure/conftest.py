"""Fixtures of the failure suite: template databases and reference states.

Each test gets its own database, cloned from a template that went through the
CLI exactly as an operator would:

- ``fleet``: ``db upgrade``, ``load fleet.yaml``, then a run at ``PRE_NOW`` of
  the ended series only (so that it has sessions to keep when it is retired);
  a run at ``NOW`` creates ``16 x 146`` sessions and retires ``zz-ended``.
- ``nightly``: ``fleet`` after a full run at ``NOW``; a run at ``NIGHT`` (three
  days later: an incremental night) creates the 3 x 16 sessions the window
  moved over.
- ``edited``: ``nightly`` after ``load edited.yaml``; a run at ``NOW`` then
  updates or deletes every session.

A reference is one uninterrupted ``generate --all`` (at the scenario's
``--now``) on a fresh clone (SQLite); every crashed, raced or disturbed
database must converge to it, on SQLite and PostgreSQL alike.
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


def _prepare_nightly(url: str, files: dict[str, Path], work: Path) -> None:
    h.run(h.generate_args(url), env=h.child_env(None), workdir=work)


def _prepare_edited(url: str, files: dict[str, Path], work: Path) -> None:
    h.run(["load", str(files["edited"]), "--database-url", url], env=h.child_env(None),
          workdir=work)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory,
                     data_files: dict[str, Path]) -> dict[str, Template]:
    work = tmp_path_factory.mktemp("sqlite_templates")
    fleet_url = h.sqlite_url(work / "fleet.db")
    _prepare_fleet(fleet_url, data_files, work)
    nightly_url = h.copy_sqlite(fleet_url, work / "nightly.db")
    _prepare_nightly(nightly_url, data_files, work)
    edited_url = h.copy_sqlite(nightly_url, work / "edited.db")
    _prepare_edited(edited_url, data_files, work)
    return {kind: Template("sqlite", url, h.read_state(url)) for kind, url in
            (("fleet", fleet_url), ("nightly", nightly_url), ("edited", edited_url))}


@pytest.fixture(scope="session")
def postgres_templates(tmp_path_factory: pytest.TempPathFactory,
                       data_files: dict[str, Path]) -> Iterator[dict[str, Template]]:
    work = tmp_path_factory.mktemp("pg_templates")
    made: list[str] = []
    try:
        fleet_url = create_postgres_database("sg_tmpl")
        made.append(fleet_url)
        _prepare_fleet(fleet_url, data_files, work)
        nightly_url = h.clone_postgres(fleet_url, "sg_tmpl")
        made.append(nightly_url)
        _prepare_nightly(nightly_url, data_files, work)
        edited_url = h.clone_postgres(nightly_url, "sg_tmpl")
        made.append(edited_url)
        _prepare_edited(edited_url, data_files, work)
        yield {kind: Template("postgresql", url, h.read_state(url)) for kind, url in
               (("fleet", fleet_url), ("nightly", nightly_url), ("edited", edited_url))}
    finally:
        for url in made:
            drop_postgres_database(url)


def _reference(kind: str, template: Template, work: Path) -> Reference:
    url = h.copy_sqlite(template.url, work / "reference.db")
    env = h.child_env(None)
    now = h.SCENARIOS[kind][0]
    records = h.run_records(url)
    proc = h.start(h.generate_args(url, now), env=h.scenario_env(kind), workdir=work)
    snapshot_at = h.wait_for_snapshot(proc, url, records)
    assert proc.wait() == 0, proc.stderr()[-3000:]
    seconds = time.monotonic() - proc.started
    assert snapshot_at is not None
    return Reference(template.state, h.read_state(url), proc.json(),
                     h.sessions_json(url, env=env, workdir=work), snapshot_at, seconds)


@pytest.fixture(scope="session")
def references(tmp_path_factory: pytest.TempPathFactory,
               sqlite_templates: dict[str, Template]) -> dict[str, Reference]:
    """Per scenario: what one uninterrupted run leaves.

    The run uses the scenario's small chunks, so its timings calibrate the
    random kill instants; its rows are what any chunk size must give.
    """
    return {kind: _reference(kind, t, tmp_path_factory.mktemp(f"reference_{kind}"))
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
    """A Dagster instance with the project's dagster.yaml, its storage created and
    the ``class_series`` partitions of the fleet registered once — as an instance
    in service is (``make``, ``dagster dev``, the sensor)."""
    home = tmp_path_factory.mktemp("dagster_home")
    keys = [s["key"] for s in h.fleet()["series"]]
    script = ("import sys\n"
              "from seriesgen_pipeline.defs.launch import open_instance, sync_partitions\n"
              "sync_partitions(open_instance(), sys.argv[1:])\n")
    subprocess.run([sys.executable, "-c", script, *keys], env=h.child_env(home), check=True,
                   capture_output=True, timeout=120)
    return home


@pytest.fixture
def dagster_home(initialized_dagster_home: Path, tmp_path: Path) -> Path:
    """A per-test copy of the initialized Dagster instance, shared by the test's processes.

    (Racing processes on a *fresh* DAGSTER_HOME, or registering the same new
    partitions, fail: see regressions/test_issue_dagster_instance_errors.py and
    regressions/test_issue_racing_partition_sync.py.)
    """
    home = tmp_path / "dagster_home"
    shutil.copytree(initialized_dagster_home, home)
    return home
