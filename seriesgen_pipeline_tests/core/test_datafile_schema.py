"""The data file's schema is declared once, and every problem is told in the project's words.

Contract of ``core.datafile`` (SPEC §10), beyond the load tests of ``service/``:

- The field lists (``SERIES_FIELDS``, ``BRANCH_FIELDS``, ``TOP_LEVEL_FIELDS``), the
  required fields and the configuration fields a section accepts are those the
  schema declares: every declared field is accepted, a required one missing is
  reported as required, an unknown one close to a declared one gets a
  "did you mean".
- Every bad item of a list is reported with its index, not only the first: the
  dates of ``exdates`` and ``closed_dates`` (base, branch and series scopes), the
  items of ``branches`` and ``series``; the valid items are not reported.
- The ranges and lengths are those of ``core/limits.py``: the last allowed value
  loads, the next one is refused; the core's own validation agrees.
- No problem speaks pydantic's words, whatever a field holds.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from datetime import date
from typing import Any

import pytest
import yaml

from seriesgen_pipeline.core import limits
from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues, resolve_config
from seriesgen_pipeline.core.datafile import (
    BRANCH_FIELDS,
    REQUIRED_SERIES_FIELDS,
    SERIES_FIELDS,
    TOP_LEVEL_FIELDS,
    BranchEntry,
    DataFile,
    SeriesEntry,
    parse_data_file,
)
from seriesgen_pipeline.core.datafile.schema import ConfigSection
from seriesgen_pipeline.core.errors import DataFileError, SeriesDefinitionError
from seriesgen_pipeline.core.series import SeriesSpec, validate_series

SERIES: dict[str, Any] = {
    "key": "east-yoga", "branch": "east", "title": "Yoga", "instructor": "Ana",
    "room": "Studio 2", "capacity": 12, "recurrence": "FREQ=WEEKLY;BYDAY=MO",
    "start_time": "18:00", "duration_minutes": 60, "start_date": "2026-02-01",
    "end_date": "2026-06-30", "exdates": ["2026-02-16"], "config": {"horizon_days": 14}}
BRANCH: dict[str, Any] = {"id": "east", "name": "East", "config": {"timezone": "UTC"}}
BASE: dict[str, Any] = {
    "horizon_days": 28, "timezone": "UTC", "default_duration_minutes": 60,
    "default_capacity": 20, "open_time": "06:00", "close_time": "22:00",
    "closed_dates": ["2026-12-25"], "generation_enabled": True, "cleanup_grace_days": 0}
YOGA = "series[0] 'east-yoga'"


def document(*, base: dict[str, Any] | None = None, branches: list[Any] | None = None,
             series: list[Any] | None = None) -> dict[str, Any]:
    return {"base": BASE if base is None else base,
            "branches": [BRANCH] if branches is None else branches,
            "series": [SERIES] if series is None else series}


def parse(data: dict[str, Any]) -> DataFile:
    return parse_data_file(yaml.safe_dump(data, sort_keys=False), source="data.yaml")


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DataFileError) as caught:
        parse(data)
    return caught.value.problems


# ---------------------------------------------------------------- one declaration

def test_the_field_lists_are_those_of_the_declaration() -> None:
    assert SERIES_FIELDS == tuple(f.name for f in fields(SeriesEntry)) == tuple(SERIES)
    assert BRANCH_FIELDS == tuple(f.name for f in fields(BranchEntry)) == tuple(BRANCH)
    assert TOP_LEVEL_FIELDS == ("base", "branches", "series")
    without_default = tuple(f.name for f in fields(SeriesEntry)
                            if f.default is MISSING and f.default_factory is MISSING)
    assert without_default == REQUIRED_SERIES_FIELDS
    assert REQUIRED_SERIES_FIELDS == (
        "key", "branch", "title", "recurrence", "start_time", "start_date")
    assert tuple(f.name for f in fields(ConfigSection)) == CONFIG_FIELDS == tuple(BASE)


def test_a_file_setting_every_declared_field_loads() -> None:
    data = parse(document())

    assert data.base == ConfigValues(**{**BASE, "closed_dates": (date(2026, 12, 25),)})
    assert data.branches == (BranchEntry(id="east", name="East",
                                         config=ConfigValues(timezone="UTC")),)
    assert data.series[0].exdates == (date(2026, 2, 16),)
    assert data.series[0].config == ConfigValues(horizon_days=14)


@pytest.mark.parametrize("name", SERIES_FIELDS)
def test_each_series_field_is_required_exactly_when_declared_without_default(
        name: str) -> None:
    without = {key: value for key, value in SERIES.items() if key != name}
    where = "series[0]" if name == "key" else YOGA  # an item is named by its key
    if name in REQUIRED_SERIES_FIELDS:
        assert problems(document(series=[without])) == [f"{where}: field '{name}' is required"]
        nulled = {**SERIES, name: None}
        assert problems(document(series=[nulled])) == [f"{where}: field '{name}' is required"]
    else:
        assert parse(document(series=[without])).series[0].key == "east-yoga"


@pytest.mark.parametrize(("section", "name"), [
    *[("series", name) for name in SERIES_FIELDS],
    *[("branch", name) for name in BRANCH_FIELDS],
    *[("config", name) for name in CONFIG_FIELDS],
])
def test_a_misspelt_field_is_told_the_declared_one(section: str, name: str) -> None:
    misspelt = name + "s"
    if section == "series":
        data = document(series=[{**SERIES, misspelt: SERIES[name]}])
        where = YOGA
    elif section == "branch":
        data = document(branches=[{**BRANCH, misspelt: BRANCH[name]}])
        where = "branches[0] 'east'"
    else:
        data = document(branches=[{**BRANCH, "config": {misspelt: BASE[name]}}])
        where = "branches[0] 'east': config"

    assert problems(data) == [
        f"{where}: unknown field '{misspelt}' (did you mean '{name}'?)"]


# ---------------------------------------------------------------- every bad item

def test_every_bad_date_of_exdates_is_reported() -> None:
    bad = {**SERIES, "exdates": ["2026-02-16", "16/02/2026", "2026-02-30", None, 5,
                                 "1899-12-31", "2026-03-02"]}

    assert problems(document(series=[bad])) == [
        f"{YOGA}: field 'exdates': item 1: '16/02/2026' is not a valid date (YYYY-MM-DD)",
        f"{YOGA}: field 'exdates': item 2: '2026-02-30' is not a valid date (YYYY-MM-DD)",
        f"{YOGA}: field 'exdates': item 3: must be a date (YYYY-MM-DD), not null",
        f"{YOGA}: field 'exdates': item 4: must be a date (YYYY-MM-DD), not 5",
        f"{YOGA}: field 'exdates': item 5: 1899-12-31 is out of range, must be "
        "1900-01-01..2200-12-31",
    ]


def test_every_bad_date_of_closed_dates_is_reported_in_every_scope() -> None:
    dates = ["2026-12-25", "never", "2026-12-24", "2201-01-01"]
    data = document(base={**BASE, "closed_dates": dates},
                    branches=[{**BRANCH, "config": {"closed_dates": dates}}],
                    series=[{**SERIES, "config": {"closed_dates": dates}}])

    found = problems(data)

    expected = []
    for where in ("base", "branches[0] 'east': config", f"{YOGA}: config"):
        expected += [
            f"{where}: field 'closed_dates': item 1: 'never' is not a valid date (YYYY-MM-DD)",
            f"{where}: field 'closed_dates': item 3: 2201-01-01 is out of range, must be "
            "1900-01-01..2200-12-31"]
    assert found == expected


def test_valid_date_lists_are_sorted_and_without_repeats() -> None:
    data = parse(document(series=[{**SERIES, "exdates": ["2026-03-02", "2026-02-16",
                                                         "2026-03-02"]}]))
    assert data.series[0].exdates == (date(2026, 2, 16), date(2026, 3, 2))


def test_every_bad_item_of_branches_and_series_is_reported() -> None:
    data = document(
        branches=[BRANCH, "west", {"id": "north"}, {**BRANCH, "id": "east"},
                  {"id": "south", "name": "South"}],
        series=[SERIES, {**SERIES, "key": "b", "title": ""}, [1], {**SERIES, "key": "east-yoga"},
                {**SERIES, "key": "c", "duration_minutes": 0}, {**SERIES, "key": "d"}])

    assert problems(data) == [
        "branches[1]: must be a mapping with id and name, not 'west'",
        "branches[2] 'north': field 'name' is required",
        "branches[3] 'east': field 'id': 'east' is already used by branches[0]",
        "series[1] 'b': field 'title': must not be empty",
        "series[2]: must be a mapping of series fields, not a list",
        "series[3] 'east-yoga': field 'key': 'east-yoga' is already used by series[0]",
        "series[4] 'c': field 'duration_minutes': 0 is out of range, must be 1..1440",
    ]


def test_problems_across_fields_and_items_come_after_the_fields_own() -> None:
    bad = {"teacher": "x", **SERIES, "title": 5, "end_date": "2026-01-31",
           "config": {"bogus": 1, "horizon_days": 0}}

    assert problems(document(series=[SERIES, bad])) == [
        "series[1] 'east-yoga': unknown field 'teacher'",
        "series[1] 'east-yoga': field 'title': must be text, not 5 (put it in quotes)",
        "series[1] 'east-yoga': config: unknown field 'bogus'",
        "series[1] 'east-yoga': config: field 'horizon_days': horizon_days is 0, "
        "must be 1..730",
        "series[1] 'east-yoga': field 'end_date': 2026-01-31 is before start_date 2026-02-01",
        "series[1] 'east-yoga': field 'key': 'east-yoga' is already used by series[0]",
    ]


# ---------------------------------------------------------------- shared limits

@pytest.mark.parametrize(("name", "last", "message"), [
    ("duration_minutes", limits.DURATION_MINUTES.high,
     f"is out of range, must be {limits.DURATION_MINUTES}"),
    ("title", "t" * limits.TEXT_LENGTH,
     f"characters long, at most {limits.TEXT_LENGTH} are allowed"),
    ("key", "k" * limits.KEY_LENGTH, f"characters long, at most {limits.KEY_LENGTH} are allowed"),
    ("branch", "b" * limits.BRANCH_ID_LENGTH,
     f"characters long, at most {limits.BRANCH_ID_LENGTH} are allowed"),
    ("capacity", limits.INT_MAX, f"is out of range, must be 0..{limits.INT_MAX}"),
])
def test_series_fields_stop_at_the_shared_limits(name: str, last: Any, message: str) -> None:
    beyond = last + 1 if isinstance(last, int) else last + last[0]
    branch = {**BRANCH, "id": SERIES["branch"] if name != "branch" else last}

    assert parse(document(branches=[branch], series=[{**SERIES, name: last}])).series

    found = problems(document(branches=[branch], series=[{**SERIES, name: beyond}]))
    assert len(found) == 1 and found[0].endswith(message), found


def test_the_core_checks_stored_durations_against_the_same_range() -> None:
    config = resolve_config(ConfigValues(**{**BASE, "closed_dates": ()}))
    spec = SeriesSpec(id=1, key="k", branch_id="east", title="t", instructor=None, room=None,
                      capacity=None, recurrence="FREQ=DAILY", start_time="10:00",
                      duration_minutes=limits.DURATION_MINUTES.high,
                      start_date=date(2026, 1, 1), end_date=None)
    assert validate_series(spec, config).duration_minutes == limits.DURATION_MINUTES.high

    with pytest.raises(SeriesDefinitionError) as caught:
        validate_series(SeriesSpec(**{**spec.__dict__, "duration_minutes":
                                      limits.DURATION_MINUTES.high + 1}), config)
    assert caught.value.hint == f"set a duration of {limits.DURATION_MINUTES} minutes"
    with pytest.raises(SeriesDefinitionError, match="default_duration_minutes is 1441"):
        resolve_config(ConfigValues(**{**BASE, "closed_dates": (),
                                       "default_duration_minutes": 1441}))


# ---------------------------------------------------------------- no pydantic wording

_HOSTILE = [None, 0, -1, 10**30, True, "", " x", "x" * 600, "a\x00b", "25:00", "2026-02-30",
            "FREQ=YEARLY", "Mars/Olympus", [], ["bad"], {}, {"a": 1}, 1.5, "{brace}"]
_PYDANTIC_WORDS = ("Input should", "Field required", "validation error", "pydantic",
                   "Value error", "type=", "Keys should", "Unexpected keyword")


@pytest.mark.parametrize("value", _HOSTILE, ids=repr)
def test_no_problem_speaks_pydantics_words(value: Any) -> None:
    data = document(
        base={name: value for name in BASE},
        branches=[{name: value for name in BRANCH}],
        series=[{name: value for name in SERIES}, {**SERIES, value if isinstance(
            value, str) else "extra": 1}])

    try:
        parse(data)
    except DataFileError as exc:
        for problem in exc.problems:
            assert not any(word in problem for word in _PYDANTIC_WORDS), problem
