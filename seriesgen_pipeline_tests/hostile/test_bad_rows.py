"""A row that another writer corrupted fails only the series that depend on it.

The booking app writes the same tables (SPEC §3), by raw SQL too. Whatever a row
holds, `seriesgen generate` turns an unreadable value into the failure of exactly
the series that read it, with a message naming the table, the row and the column
(SPEC §6), and generates every other series. `--dry-run`, `sessions`,
`conflicts` and `stats` report such rows the same way. No command prints a
traceback. SQLite stores anything in any column; PostgreSQL's typed columns
refuse most of it, so there the JSON columns carry the corruption.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine
from seriesgen_pipeline_tests.cli.helpers import DEMO_LIKE, NOW, run_cli

WEST = """\
  - key: west-pilates
    branch: west
    title: Pilates
    room: Hall
    recurrence: "FREQ=WEEKLY;BYDAY=TU"
    start_time: "09:00"
    start_date: 2026-01-06
"""
WEST_BRANCH = """\
  - id: west
    name: West
"""


def _prepare(url: str, tmp_path: Path) -> None:
    data = tmp_path / "data.yaml"
    data.write_text(DEMO_LIKE.replace("series:\n", WEST_BRANCH + "series:\n", 1) + WEST)
    for args in (("db", "upgrade"), ("load", str(data))):
        done = run_cli(*args, "--database-url", url)
        assert done.returncode == 0, done.stderr


def _execute(url: str, *statements: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _generate(url: str, tmp_path: Path, *extra: str) -> tuple[int, dict, str]:
    which = () if "--series" in extra else ("--all",)
    done = run_cli("generate", *which, "--now", NOW, "--format", "json", *extra,
                   "--database-url", url, env={"DAGSTER_HOME": str(tmp_path / "dagster")})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _by_key(document: dict) -> dict[str, dict]:
    return {s["key"]: s for s in document["series"]}


def _session_count(url: str, key: str) -> int:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM class_sessions WHERE series_key = :k"),
                             {"k": key}).scalar_one()
    engine.dispose()
    return int(count)


@pytest.mark.parametrize("statement, failed_key, message", [
    ("UPDATE class_series SET start_date = '2026-02-30' WHERE key = 'west-pilates'",
     "west-pilates", "class_series 'west-pilates': start_date '2026-02-30' is not a date"),
    ("UPDATE class_series SET capacity = 'lots' WHERE key = 'west-pilates'",
     "west-pilates", "class_series 'west-pilates': capacity 'lots' is not an integer"),
    ("UPDATE class_series SET exdates = 'not json' WHERE key = 'west-pilates'",
     "west-pilates", "class_series 'west-pilates': exdates 'not json' is not a JSON list"),
    ("UPDATE class_series SET last_generated_through = 'yesterday' WHERE key = 'west-pilates'",
     "west-pilates",
     "class_series 'west-pilates': last_generated_through 'yesterday' is not an instant"),
])
def test_one_corrupted_series_row_fails_that_series_alone_sqlite(
        sqlite_url: str, tmp_path: Path, statement: str, failed_key: str, message: str) -> None:
    _prepare(sqlite_url, tmp_path)
    _execute(sqlite_url, statement)

    code, document, _ = _generate(sqlite_url, tmp_path)

    series = _by_key(document)
    assert code == 1
    assert series[failed_key]["status"] == "failed"
    assert message in series[failed_key]["error"]
    for key in ("east-yoga", "east-early"):
        assert series[key]["status"] == "success", series[key]
        assert series[key]["created"] > 0
        assert _session_count(sqlite_url, key) == series[key]["created"]


def test_a_corrupted_session_row_fails_its_series_alone_sqlite(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    _prepare(sqlite_url, tmp_path)
    code, _, _ = _generate(sqlite_url, tmp_path)
    assert code == 0
    _execute(sqlite_url, "UPDATE class_sessions SET starts_at = 'garbage' WHERE id = ("
                         "SELECT min(id) FROM class_sessions WHERE series_key = 'east-yoga')")

    code, document, _ = _generate(sqlite_url, tmp_path, "--dry-run")
    assert code == 1
    assert "starts_at 'garbage' is not an instant" in _by_key(document)["east-yoga"]["error"]
    assert _by_key(document)["east-early"]["status"] == "success"

    code, document, _ = _generate(sqlite_url, tmp_path)
    series = _by_key(document)
    assert code == 1
    assert series["east-yoga"]["status"] == "failed"
    assert series["east-yoga"]["error"].startswith("class_sessions id ")
    assert "starts_at 'garbage' is not an instant" in series["east-yoga"]["error"]
    assert series["east-early"]["status"] == "success"
    assert series["west-pilates"]["status"] == "success"


def test_a_bad_base_field_fails_exactly_the_series_that_inherit_it_sqlite(
        sqlite_url: str, tmp_path: Path) -> None:
    """East overrides nothing of the horizon, so all inherit it; West's series too.
    The time zone is set by East's branch: a corrupted base time zone therefore
    fails West only."""
    _prepare(sqlite_url, tmp_path)
    _execute(sqlite_url, "UPDATE scheduling_configs SET timezone = x'00ff' WHERE scope = 'base'")

    code, document, _ = _generate(sqlite_url, tmp_path)

    series = _by_key(document)
    assert code == 1
    assert series["west-pilates"]["status"] == "failed"
    assert "scheduling_configs base: timezone" in series["west-pilates"]["error"]
    assert series["east-yoga"]["status"] == "success"
    assert series["east-early"]["status"] == "success"


@pytest.mark.postgres
def test_corrupted_json_columns_fail_their_series_alone_postgres(postgres_url: str,
                                                                 tmp_path: Path) -> None:
    _prepare(postgres_url, tmp_path)
    _execute(postgres_url,
             """UPDATE class_series SET exdates = '{"a": 1}' WHERE key = 'west-pilates'""",
             """UPDATE scheduling_configs SET closed_dates = '["2026-13-01"]'
                WHERE scope = 'branch' AND branch_id = 'east'""")

    code, document, _ = _generate(postgres_url, tmp_path)

    series = _by_key(document)
    assert code == 1
    assert series["west-pilates"]["status"] == "failed"
    assert ("""class_series 'west-pilates': exdates {'a': 1} is not a JSON list of dates"""
            in series["west-pilates"]["error"])
    for key in ("east-yoga", "east-early"):  # closed dates are a union: every East series
        assert series[key]["status"] == "failed"
        assert "scheduling_configs branch 'east': closed_dates" in series[key]["error"]
    _execute(postgres_url, "UPDATE class_series SET exdates = '[]' WHERE key = 'west-pilates'")
    code, document, _ = _generate(postgres_url, tmp_path, "--series", "west-pilates")
    assert code == 0
    assert _by_key(document)["west-pilates"]["created"] > 0


def test_listings_print_readable_rows_and_name_the_others_sqlite(sqlite_url: str,
                                                                 tmp_path: Path) -> None:
    _prepare(sqlite_url, tmp_path)
    code, _, _ = _generate(sqlite_url, tmp_path)
    assert code == 0
    total = sum(_session_count(sqlite_url, k) for k in ("east-yoga", "east-early",
                                                         "west-pilates"))
    _execute(sqlite_url,
             "UPDATE class_sessions SET timezone = 'Not/AZone' WHERE id = 1",
             "UPDATE class_sessions SET starts_at = 'garbage' WHERE id = 2",
             "UPDATE series_conflicts SET dates = '{bad' WHERE id = (SELECT min(id) "
             "FROM series_conflicts)",
             "UPDATE generation_log SET created = 'many' WHERE id = 1")
    env = {"DAGSTER_HOME": str(tmp_path / "dagster")}

    sessions = run_cli("sessions", "--format", "json", "--database-url", sqlite_url, env=env)
    conflicts = run_cli("conflicts", "--database-url", sqlite_url, env=env)
    stats = run_cli("stats", "--format", "json", "--database-url", sqlite_url, env=env)

    for done in (sessions, conflicts, stats):
        assert "Traceback" not in done.stdout + done.stderr
        assert done.returncode == 1, done.stderr
    assert len(json.loads(sessions.stdout)) == total - 2
    assert "class_sessions id 1 " in sessions.stderr
    assert "timezone 'Not/AZone' is not a known time zone" in sessions.stderr
    assert "starts_at 'garbage' is not an instant" in sessions.stderr
    assert "dates '{bad' is not a JSON list of dates" in conflicts.stderr
    assert "generation_log id 1 (series 'east-yoga'): created 'many' is not an integer" in (
        stats.stderr)
    json.loads(stats.stdout)  # still a document
