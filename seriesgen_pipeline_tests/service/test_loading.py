"""Loading data files (SPEC §10) into a real SQLite file and a real PostgreSQL database.

Contract:

- Loading the demo file creates its 2 branches, 5 series (``version`` 1) and the
  base, branch and series configuration scopes it sets.
- Loading the same file again writes nothing: same rows, same ``version`` and
  ``updated_at``. YAML and JSON spellings of one file are the same file.
- Editing one series in the file bumps that series' ``version`` and
  ``updated_at`` only; series absent from the file, and configuration scopes the
  file does not mention, are left alone.
- A bad file is rejected whole: every problem is reported, each naming the item
  and the field (or, for a syntax error, the file and line), and no table
  changes — not even the rows of the file's valid parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from seriesgen_pipeline.core.datafile import parse_data_file
from seriesgen_pipeline.core.errors import DataFileError
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service.loading import LoadSummary, load_data, load_file

# The demo data of examples/demo.yaml, kept here so the tests stand alone.
DEMO_YAML = """\
base:
  horizon_days: 28
  timezone: UTC
  default_duration_minutes: 60
  default_capacity: 20
  open_time: "06:00"
  close_time: "22:00"
  closed_dates: ["2026-12-25", "2027-01-01"]
  generation_enabled: true
  cleanup_grace_days: 0
branches:
  - id: east
    name: East
    config:
      timezone: America/New_York
      horizon_days: 56
      open_time: "07:00"
      closed_dates: ["2026-11-26"]
  - id: west
    name: West
    config:
      timezone: Europe/London
      default_capacity: 12
series:
  - key: east-yoga-basics
    branch: east
    title: Yoga Basics
    instructor: Ana
    room: Studio 2
    recurrence: "FREQ=WEEKLY;BYDAY=MO,WE"
    start_time: "18:00"
    start_date: 2026-01-05
    end_date: 2026-06-30
  - key: east-early-spin
    branch: east
    title: Early Spin
    instructor: Ben
    room: Bike Room
    recurrence: "FREQ=WEEKLY;BYDAY=SU"
    start_time: "06:30"
    duration_minutes: 45
    start_date: 2026-01-04
    config: {horizon_days: 14}
  - key: east-night-owls
    branch: east
    title: Night Owls Meditation
    room: Studio 2
    recurrence: "FREQ=WEEKLY;BYDAY=SU"
    start_time: "02:30"
    duration_minutes: 30
    start_date: 2026-02-01
    end_date: 2026-04-30
  - key: west-pilates
    branch: west
    title: Pilates
    instructor: Cleo
    room: Room A
    recurrence: "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH"
    start_time: "01:30"
    start_date: 2026-01-06
  - key: west-monthly-workshop
    branch: west
    title: Monthly Workshop
    instructor: Dev
    room: Room A
    recurrence: "FREQ=MONTHLY;BYDAY=1SA"
    start_time: "10:00"
    duration_minutes: 180
    start_date: 2026-01-01
    end_date: 2027-12-31
"""

# A valid follow-up file: every part of it would change the demo database. The
# malformed cases below break it in one place, so a load that was not all or
# nothing would show up as changed rows.
EDIT_YAML = """\
base:
  horizon_days: 42
branches:
  - id: east
    name: East Side
    config: {timezone: America/New_York, open_time: "07:30"}
  - id: south
    name: South
series:
  - key: east-yoga
    branch: east
    title: Yoga
    instructor: Ana
    recurrence: "FREQ=WEEKLY;BYDAY=MO"
    start_time: "18:00"
    duration_minutes: 60
    capacity: 12
    start_date: 2026-02-01
    end_date: 2026-06-30
    exdates: ["2026-02-16"]
    config: {horizon_days: 14}
  - key: west-pilates
    branch: west
    title: Pilates Plus
    instructor: Cleo
    room: Room A
    recurrence: "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH"
    start_time: "01:30"
    start_date: 2026-01-06
"""

TABLES = (repo.branches_t, repo.configs_t, repo.series_t)


def write(tmp_path: Path, text: str, name: str = "data.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def table_state(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a load writes, as stored (unreadable values too), in order."""
    state = {}
    with engine.connect() as conn:
        for table in TABLES:
            order = [table.c[name] for name in ("id", "key") if name in table.c]
            columns = [repo.uncoerced(column) for column in table.c]
            state[table.name] = [tuple(row) for row in
                                 conn.execute(sa.select(*columns).order_by(*order))]
    return state


def series_rows(engine: sa.Engine) -> dict[str, sa.RowMapping]:
    with engine.connect() as conn:
        return {row["key"]: row for row in conn.execute(sa.select(repo.series_t)).mappings()}


def config_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    """The configuration rows, ``closed_dates`` as stored (``config_values_from_row`` reads)."""
    columns = [repo.uncoerced(c) if c.name == "closed_dates" else c for c in repo.configs_t.c]
    with engine.connect() as conn:
        return list(conn.execute(sa.select(*columns).order_by(repo.configs_t.c.id)).mappings())


@pytest.fixture
def loaded(sqlite_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """A migrated SQLite file holding the demo data."""
    engine = create_db_engine(sqlite_url)
    upgrade_database(engine)
    load_file(engine, write(tmp_path, DEMO_YAML, "demo.yaml"))
    yield engine
    engine.dispose()


# ---------------------------------------------------------------- loading and upserts
# ``engine`` (conftest) runs each of these on a SQLite file and on PostgreSQL.

def test_demo_file_creates_branches_series_and_every_config_scope(
        engine: sa.Engine, tmp_path: Path) -> None:
    summary = load_file(engine, write(tmp_path, DEMO_YAML, "demo.yaml"))

    assert summary == LoadSummary(branches_created=2, series_created=5, configs_written=4)
    with engine.connect() as conn:
        branches = conn.execute(sa.select(repo.branches_t.c.id, repo.branches_t.c.name))
        assert {branch_id: name for branch_id, name in branches} == {
            "east": "East", "west": "West"}
    series = series_rows(engine)
    assert sorted(series) == sorted([
        "east-yoga-basics", "east-early-spin", "east-night-owls", "west-pilates",
        "west-monthly-workshop"])
    assert {row["version"] for row in series.values()} == {1}
    yoga = series["east-yoga-basics"]
    assert (yoga["branch_id"], yoga["start_time"], yoga["start_date"], yoga["end_date"],
            yoga["duration_minutes"], yoga["exdates"]) == (
        "east", "18:00", date(2026, 1, 5), date(2026, 6, 30), None, [])
    assert yoga["created_at"].tzinfo is not None

    configs = {(r["scope"], r["branch_id"], r["series_id"]): r for r in config_rows(engine)}
    spin_id = series["east-early-spin"]["id"]
    assert set(configs) == {("base", None, None), ("branch", "east", None),
                            ("branch", "west", None), ("series", None, spin_id)}
    base = repo.config_values_from_row(configs[("base", None, None)])
    assert base.closed_dates == (date(2026, 12, 25), date(2027, 1, 1))
    assert base.open_time == "06:00" and base.generation_enabled is True
    east = repo.config_values_from_row(configs[("branch", "east", None)])
    assert (east.timezone, east.horizon_days, east.default_capacity) == (
        "America/New_York", 56, None)
    assert configs[("series", None, spin_id)]["horizon_days"] == 14


def test_loading_the_same_file_twice_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = write(tmp_path, DEMO_YAML, "demo.yaml")
    load_file(engine, path)
    before = table_state(engine)

    summary = load_file(engine, path)

    assert summary == LoadSummary(series_unchanged=5)
    assert table_state(engine) == before  # versions and updated_at included


def test_editing_one_series_bumps_only_its_version(engine: sa.Engine, tmp_path: Path) -> None:
    load_file(engine, write(tmp_path, DEMO_YAML, "demo.yaml"))
    before = series_rows(engine)
    edited = DEMO_YAML.replace('start_time: "01:30"', 'start_time: "02:00"')
    assert edited != DEMO_YAML

    summary = load_file(engine, write(tmp_path, edited, "edited.yaml"))

    assert summary == LoadSummary(series_updated=1, series_unchanged=4)
    after = series_rows(engine)
    assert after["west-pilates"]["version"] == 2
    assert after["west-pilates"]["start_time"] == "02:00"
    assert after["west-pilates"]["updated_at"] > before["west-pilates"]["updated_at"]
    assert after["west-pilates"]["created_at"] == before["west-pilates"]["created_at"]
    assert after["west-pilates"]["id"] == before["west-pilates"]["id"]
    for key in set(before) - {"west-pilates"}:
        assert after[key] == before[key]


def _corrupt(engine: sa.Engine, *statements: str) -> None:
    """Values another writer stored that cannot be read (JSON that is not a list of dates)."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_a_load_repairs_series_and_scopes_another_writer_corrupted(
        engine: sa.Engine, tmp_path: Path) -> None:
    path = write(tmp_path, DEMO_YAML, "demo.yaml")
    load_file(engine, path)
    corrupt = ["UPDATE class_series SET exdates = '[\"garbage\"]' WHERE key = 'east-yoga-basics'",
               "UPDATE scheduling_configs SET closed_dates = '[\"2026-13-01\"]' "
               "WHERE scope = 'branch' AND branch_id = 'east'"]
    if engine.dialect.name == "sqlite":  # PostgreSQL's DATE column cannot hold it
        corrupt.append("UPDATE class_series SET start_date = '2026-02-30' "
                       "WHERE key = 'west-pilates'")
    _corrupt(engine, *corrupt)
    with engine.connect() as conn:
        inputs = repo.load_scheduling_inputs(conn)
    assert inputs.unreadable and inputs.branch_configs["east"].unreadable

    summary = load_file(engine, path)

    repaired = 2 if engine.dialect.name == "sqlite" else 1
    assert summary == LoadSummary(series_updated=repaired, series_unchanged=5 - repaired,
                                  configs_written=1)
    with engine.connect() as conn:
        inputs = repo.load_scheduling_inputs(conn)
    assert inputs.unreadable == {}
    assert not inputs.branch_configs["east"].unreadable
    assert inputs.branch_configs["east"].closed_dates == (date(2026, 11, 26),)
    specs = {spec.key: spec for spec in inputs.series}
    assert specs["east-yoga-basics"].exdates == ()
    assert specs["west-pilates"].start_date == date(2026, 1, 6)
    assert load_file(engine, path) == LoadSummary(series_unchanged=5)


def test_a_base_field_that_cannot_be_read_must_be_set_by_the_file(
        engine: sa.Engine, tmp_path: Path) -> None:
    demo = write(tmp_path, DEMO_YAML, "demo.yaml")
    load_file(engine, demo)
    _corrupt(engine, "UPDATE scheduling_configs SET closed_dates = '{\"a\": 1}' "
                     "WHERE scope = 'base'")
    before = table_state(engine)

    with pytest.raises(DataFileError) as caught:
        load_file(engine, write(tmp_path, EDIT_YAML))  # its base sets horizon_days only

    # SQLite hands back the JSON text, psycopg the decoded object.
    stored = """'{"a": 1}'""" if engine.dialect.name == "sqlite" else "{'a': 1}"
    assert caught.value.problems == [
        "base: field 'closed_dates': the stored value cannot be read (scheduling_configs "
        f"base: closed_dates {stored} is not a JSON list of dates); set it in the file's "
        "base section"]
    assert table_state(engine) == before
    assert load_file(engine, demo).configs_written == 1  # the demo's base sets it
    with engine.connect() as conn:
        base = repo.load_scheduling_inputs(conn).base
    assert base is not None and not base.unreadable
    assert base.closed_dates == (date(2026, 12, 25), date(2027, 1, 1))


def test_a_rejected_file_writes_nothing_even_when_only_the_database_can_tell(
        engine: sa.Engine, tmp_path: Path) -> None:
    load_file(engine, write(tmp_path, DEMO_YAML, "demo.yaml"))
    before = table_state(engine)
    # Valid on its own; only the database knows that branch "north" does not exist.
    bad = EDIT_YAML.replace("    branch: east\n    title: Yoga\n",
                            "    branch: north\n    title: Yoga\n")
    assert bad != EDIT_YAML

    with pytest.raises(DataFileError) as caught:
        load_file(engine, write(tmp_path, bad))

    assert caught.value.problems == [
        "series[0] 'east-yoga': field 'branch': unknown branch 'north' (neither in the file's "
        "branches nor in the database; known branches: east, south, west)"]
    assert table_state(engine) == before


# ---------------------------------------------------------------- more upsert rules (SQLite)

def test_follow_up_file_upserts_and_leaves_the_rest_alone(loaded: sa.Engine,
                                                          tmp_path: Path) -> None:
    before = series_rows(loaded)
    spin_config = [r for r in config_rows(loaded) if r["scope"] == "series"]

    summary = load_file(loaded, write(tmp_path, EDIT_YAML))

    assert summary == LoadSummary(branches_created=1, branches_updated=1, series_created=1,
                                  series_updated=1, configs_written=3)
    after = series_rows(loaded)
    for key in ("east-yoga-basics", "east-early-spin", "east-night-owls",
                "west-monthly-workshop"):
        assert after[key] == before[key]  # not in the file: left alone
    assert after["west-pilates"]["title"] == "Pilates Plus"
    assert after["west-pilates"]["version"] == 2
    new = after["east-yoga"]
    assert (new["version"], new["capacity"], new["exdates"]) == (1, 12, [date(2026, 2, 16)])
    assert new["id"] > max(row["id"] for row in before.values())

    configs = config_rows(loaded)
    base = repo.config_values_from_row(next(r for r in configs if r["scope"] == "base"))
    assert base.horizon_days == 42  # set by the file
    assert base.timezone == "UTC"  # not in the file: kept
    east = repo.config_values_from_row(
        next(r for r in configs if r["scope"] == "branch" and r["branch_id"] == "east"))
    assert (east.open_time, east.horizon_days, east.closed_dates) == ("07:30", None, None)
    west = next(r for r in configs if r["scope"] == "branch" and r["branch_id"] == "west")
    assert west["default_capacity"] == 12  # the file gives west no config: left alone
    series_configs = [r for r in configs if r["scope"] == "series"]
    assert spin_config[0] in series_configs  # east-early-spin is not in the file
    assert {r["series_id"] for r in series_configs} == {
        after["east-early-spin"]["id"], new["id"]}


def test_an_empty_config_clears_a_scope_and_an_absent_one_keeps_it(loaded: sa.Engine,
                                                                   tmp_path: Path) -> None:
    cleared = DEMO_YAML.replace("config: {horizon_days: 14}", "config: {}")
    summary = load_file(loaded, write(tmp_path, cleared))
    assert summary.configs_written == 1
    spin = series_rows(loaded)["east-early-spin"]
    assert spin["version"] == 1  # configuration is not series content
    row = next(r for r in config_rows(loaded) if r["series_id"] == spin["id"])
    assert repo.config_values_from_row(row) == repo.config_values_from_row(
        {**row, "horizon_days": None})

    without = DEMO_YAML.replace("    config: {horizon_days: 14}\n", "")
    assert load_file(loaded, write(tmp_path, without)).configs_written == 0


def test_json_and_yaml_spellings_load_the_same_rows(tmp_path: Path) -> None:
    document = yaml.safe_load(DEMO_YAML)
    as_json = json.dumps(document, default=str, indent=2)
    via_json = create_db_engine(f"sqlite:///{tmp_path}/json.db")
    upgrade_database(via_json)

    summary = load_file(via_json, write(tmp_path, as_json, "demo.json"))

    assert summary == LoadSummary(branches_created=2, series_created=5, configs_written=4)
    assert load_file(via_json, write(tmp_path, DEMO_YAML, "demo.yaml")) == LoadSummary(
        series_unchanged=5)
    via_json.dispose()


def test_unquoted_times_read_as_times_not_base_60_numbers(loaded: sa.Engine,
                                                          tmp_path: Path) -> None:
    unquoted = DEMO_YAML.replace('start_time: "18:00"', "start_time: 18:00")
    assert load_file(loaded, write(tmp_path, unquoted)) == LoadSummary(series_unchanged=5)


def test_an_empty_database_needs_a_complete_base(sqlite_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(sqlite_url)
    upgrade_database(engine)
    partial = DEMO_YAML.replace("  default_capacity: 20\n", "").replace(
        "  cleanup_grace_days: 0\n", "")
    before = table_state(engine)

    with pytest.raises(DataFileError) as caught:
        load_file(engine, write(tmp_path, partial))

    assert [p.split(":")[0:2] for p in caught.value.problems] == [
        ["base", " field 'default_capacity' is required"],
        ["base", " field 'cleanup_grace_days' is required"],
    ]
    assert table_state(engine) == before
    engine.dispose()


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = EDIT_YAML.replace('start_time: "18:00"', 'start_time: "25:00"').replace(
        "name: South", "name: South\n    colour: red").replace(
        "horizon_days: 42", "horizon_days: 0")
    with pytest.raises(DataFileError) as caught:
        parse_data_file(text, source="data.yaml")
    assert caught.value.problems == [
        "base: field 'horizon_days': horizon_days is 0, must be 1..730",
        "branches[1] 'south': unknown field 'colour'",
        "series[0] 'east-yoga': field 'start_time': '25:00' is not a time of day in HH:MM "
        "(00:00..23:59)",
    ]


def test_a_missing_file_is_named(loaded: sa.Engine, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DataFileError, match=r"nope\.yaml: no such file"):
        load_file(loaded, missing)


# ---------------------------------------------------------------- malformed files (SQLite)

def _edit(old: str, new: str) -> str:
    assert old in EDIT_YAML, old
    return EDIT_YAML.replace(old, new, 1)


YOGA = "series[0] 'east-yoga'"
MALFORMED = [
    pytest.param(_edit("branches:", "bogus: 1\nbranches:"), "data.yaml",
                 ["top level: unknown field 'bogus'"], id="unknown-top-level-field"),
    pytest.param(_edit("horizon_days: 42", "horizon: 42"), "data.yaml",
                 ["base: unknown field 'horizon' (did you mean 'horizon_days'?)"],
                 id="unknown-base-field"),
    pytest.param(_edit("name: South", "name: South\n    colour: red"), "data.yaml",
                 ["branches[1] 'south': unknown field 'colour'"], id="unknown-branch-field"),
    pytest.param(_edit("instructor: Ana", "teacher: Ana"), "data.yaml",
                 [f"{YOGA}: unknown field 'teacher'"], id="unknown-series-field"),
    pytest.param(_edit('open_time: "07:30"', "opening: 1"), "data.yaml",
                 ["branches[0] 'east': config: unknown field 'opening'"],
                 id="unknown-config-field"),
    pytest.param(_edit("capacity: 12", "capacity: twelve"), "data.yaml",
                 [f"{YOGA}: field 'capacity': must be a whole number, not 'twelve'"],
                 id="wrong-type-text-for-int"),
    pytest.param(_edit("duration_minutes: 60", "duration_minutes: true"), "data.yaml",
                 [f"{YOGA}: field 'duration_minutes': must be a whole number, not true"],
                 id="wrong-type-bool-for-int"),
    pytest.param(_edit("title: Yoga\n", "title: [Yoga]\n"), "data.yaml",
                 [f"{YOGA}: field 'title': must be text, not a list"], id="wrong-type-list"),
    pytest.param(_edit('exdates: ["2026-02-16"]', 'exdates: "2026-02-16"'), "data.yaml",
                 [f"{YOGA}: field 'exdates': must be a list of dates (YYYY-MM-DD), not "
                  "'2026-02-16'"], id="wrong-type-date-list"),
    pytest.param(_edit('start_time: "18:00"', 'start_time: "25:00"'), "data.yaml",
                 [f"{YOGA}: field 'start_time': '25:00' is not a time of day in HH:MM"],
                 id="bad-time"),
    pytest.param(_edit("start_date: 2026-02-01", "start_date: 2026-02-30"), "data.yaml",
                 [f"{YOGA}: field 'start_date': '2026-02-30' is not a valid date (YYYY-MM-DD)"],
                 id="bad-date-unquoted"),
    pytest.param(_edit('exdates: ["2026-02-16"]', 'exdates: ["2026-02-16", "16/02/2026"]'),
                 "data.yaml",
                 [f"{YOGA}: field 'exdates': item 1: '16/02/2026' is not a valid date"],
                 id="bad-date-in-list"),
    pytest.param(_edit("start_date: 2026-02-01", "start_date: 2026-02-01T18:00:00"),
                 "data.yaml", [f"{YOGA}: field 'start_date': 2026-02-01 18:00:00 has a time "
                               "of day"], id="datetime-for-date"),
    pytest.param(_edit("config: {timezone: America/New_York",
                       "config: {timezone: Mars/Olympus"), "data.yaml",
                 ["branches[0] 'east': config: field 'timezone': unknown time zone "
                  "'Mars/Olympus'"], id="invalid-zone"),
    pytest.param(_edit('recurrence: "FREQ=WEEKLY;BYDAY=MO"', 'recurrence: "FREQ=YEARLY"'),
                 "data.yaml",
                 [f"{YOGA}: field 'recurrence': invalid recurrence 'FREQ=YEARLY': FREQ=YEARLY "
                  "is not DAILY, WEEKLY or MONTHLY"], id="invalid-rrule"),
    pytest.param(_edit("end_date: 2026-06-30", "end_date: 2026-01-31"), "data.yaml",
                 [f"{YOGA}: field 'end_date': 2026-01-31 is before start_date 2026-02-01"],
                 id="end-before-start"),
    pytest.param(_edit("duration_minutes: 60", "duration_minutes: 0"), "data.yaml",
                 [f"{YOGA}: field 'duration_minutes': 0 is out of range, must be 1..1440"],
                 id="duration-zero"),
    pytest.param(_edit("capacity: 12", "capacity: -1"), "data.yaml",
                 [f"{YOGA}: field 'capacity': -1 is out of range"], id="negative-capacity"),
    pytest.param(_edit("config: {horizon_days: 14}", "config: {horizon_days: 0}"), "data.yaml",
                 [f"{YOGA}: config: field 'horizon_days': horizon_days is 0, must be 1..730"],
                 id="config-out-of-range"),
    pytest.param(_edit("key: west-pilates", "key: east-yoga"), "data.yaml",
                 ["series[1] 'east-yoga': field 'key': 'east-yoga' is already used by "
                  "series[0]"], id="duplicate-series-key"),
    pytest.param(_edit("id: south", "id: east"), "data.yaml",
                 ["branches[1] 'east': field 'id': 'east' is already used by branches[0]"],
                 id="duplicate-branch-id"),
    pytest.param(_edit("title: Yoga\n", "title: Yoga\n    title: Yoga again\n"), "data.yaml",
                 [f"{YOGA}: field 'title' is given more than once"], id="field-given-twice"),
    pytest.param(_edit('    recurrence: "FREQ=WEEKLY;BYDAY=MO"\n', ""), "data.yaml",
                 [f"{YOGA}: field 'recurrence' is required"], id="missing-required-field"),
    pytest.param(_edit("    branch: east\n    title: Yoga\n", "    title: Yoga\n"),
                 "data.yaml", [f"{YOGA}: field 'branch' is required"], id="missing-branch"),
    pytest.param(_edit("  - id: south\n", "  - id: south\n  name: [\n"), "data.yaml",
                 ["data.yaml: YAML syntax error at line"], id="yaml-syntax-error"),
    pytest.param('{"base": {"horizon_days": 42,}}', "data.json",
                 ["data.json: JSON syntax error at line 1, column 30"], id="json-syntax-error"),
    pytest.param("- east\n- west\n", "data.yaml",
                 ["data.yaml: the top level must be a mapping with base, branches and series, "
                  "not a list"], id="not-a-mapping"),
    pytest.param("# nothing here\n", "data.yaml", ["data.yaml: the file is empty"],
                 id="empty-file"),
    pytest.param(_edit("series:\n", "series:\n  - just a title\n"), "data.yaml",
                 ["series[0]: must be a mapping of series fields, not 'just a title'"],
                 id="series-item-not-a-mapping"),
    pytest.param(_edit("branches:", "? [a, b]\n: 1\nbranches:"), "data.yaml",
                 ["top level: unknown field a list used as a field name"],
                 id="list-as-a-field-name"),
    pytest.param(_edit("start_date: 2026-02-01", f"start_date: {'x' * 10_000}"), "data.yaml",
                 [f"{YOGA}: field 'start_date': '{'x' * 60}'... (10,000 characters) is not a "
                  "valid date (YYYY-MM-DD)"], id="long-text-cut-in-messages"),
]


def test_the_malformed_cases_break_a_valid_file(loaded: sa.Engine, tmp_path: Path) -> None:
    """The template is valid, so each case below fails for its own edit only."""
    assert load_file(loaded, write(tmp_path, EDIT_YAML)) != LoadSummary()


@pytest.mark.parametrize(("text", "name", "expected"), MALFORMED)
def test_a_malformed_file_is_rejected_whole(loaded: sa.Engine, tmp_path: Path, text: str,
                                            name: str, expected: list[str]) -> None:
    before = table_state(loaded)

    with pytest.raises(DataFileError) as caught:
        load_file(loaded, write(tmp_path, text, name))

    # File-level problems name the file by the path given; compare its name only.
    problems = [p.replace(f"{tmp_path}/", "") for p in caught.value.problems]
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected, strict=True):
        assert problem.startswith(fragment), problems
    assert str(caught.value).startswith("invalid data file:")
    assert table_state(loaded) == before


def test_a_parsed_file_with_an_unknown_branch_is_refused_by_load_data(
        loaded: sa.Engine) -> None:
    data = parse_data_file(EDIT_YAML, source="edit.yaml")
    data = replace(data, series=(replace(data.series[0], branch="north"),))
    before = table_state(loaded)
    with pytest.raises(DataFileError, match="series\\[0\\] 'east-yoga': field 'branch'"):
        load_data(loaded, data)
    assert table_state(loaded) == before
