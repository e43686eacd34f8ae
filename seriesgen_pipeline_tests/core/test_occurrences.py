"""Contract of ``core.occurrences`` and ``core.series.validate_series`` (SPEC §4–§6).

- The window is ``[now, now + horizon_days]`` in UTC, both ends inclusive: an
  occurrence exists when its UTC ``starts_at`` is inside it and its local date is
  inside the series span; occurrence keys are local dates, so in zones far from
  UTC the key may differ from the UTC date.
- ``exdates`` are skipped silently; ``closed_dates`` (local dates) are skipped
  and reported as ``CLOSED_DATE`` with the dates in the window and the scope that
  set them.
- Sessions outside business hours are still generated and reported as
  ``OUTSIDE_BUSINESS_HOURS`` listing the affected dates.
- A rule that schedules nothing in its whole span (after exdates and closed
  dates) is reported as ``NO_OCCURRENCES``.
- ``validate_series`` stops a series with a coded error naming the field and
  scope: ``END_BEFORE_START``, ``NON_POSITIVE_DURATION``, ``INVALID_RRULE``,
  ``INVALID_START_TIME``, ``INVALID_CAPACITY``; a non-positive *default* duration
  is refused earlier, by ``resolve_config``, naming the scope that set it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.config import ConfigValues, ResolvedConfig, resolve_config
from seriesgen_pipeline.core.errors import InvalidRecurrenceError, SeriesDefinitionError
from seriesgen_pipeline.core.occurrences import (
    Expansion,
    Window,
    continue_expansion,
    expand_occurrences,
    window_for,
)
from seriesgen_pipeline.core.series import SeriesSpec, ValidSeries, validate_series
from seriesgen_pipeline.core.snapshot import build_snapshot

BASE = ConfigValues(
    horizon_days=28,
    timezone="UTC",
    default_duration_minutes=60,
    default_capacity=20,
    open_time="06:00",
    close_time="22:00",
    closed_dates=(),
    generation_enabled=True,
    cleanup_grace_days=0,
)


def utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.utcoffset() == timedelta(0)
    return value


def d(text: str) -> date:
    return date.fromisoformat(text)


def config(branch: ConfigValues | None = None, **base: Any) -> ResolvedConfig:
    return resolve_config(replace(BASE, **base), branch)


def spec(**overrides: Any) -> SeriesSpec:
    values: dict[str, Any] = {
        "id": 1, "key": "east-yoga", "branch_id": "east", "title": "Yoga Basics",
        "instructor": "Ana", "room": "Studio 2", "capacity": None,
        "recurrence": "FREQ=DAILY", "start_time": "18:00", "duration_minutes": 60,
        "start_date": d("2026-03-01"), "end_date": None, "exdates": (),
    }
    values.update(overrides)
    return SeriesSpec(**values)


def expand(series_spec: SeriesSpec, cfg: ResolvedConfig, now: str, horizon: int) -> Expansion:
    return expand_occurrences(validate_series(series_spec, cfg), window_for(utc(now), horizon))


def keys(expansion: Expansion) -> list[str]:
    return [o.occurrence_key for o in expansion.occurrences]


def codes(expansion: Expansion) -> list[str]:
    return [conflict.code for conflict in expansion.conflicts]


def by_code(expansion: Expansion, code: str) -> c.Conflict:
    found = [conflict for conflict in expansion.conflicts if conflict.code == code]
    assert len(found) == 1, codes(expansion)
    return found[0]


# windowing -----------------------------------------------------------------------------


def test_window_for_is_now_to_now_plus_horizon() -> None:
    now = utc("2026-03-10T12:00Z")
    assert window_for(now, 28) == Window(start=now, end=utc("2026-04-07T12:00Z"))


@pytest.mark.parametrize(
    ("now", "horizon", "expected"),
    [
        # an occurrence exactly at now and one exactly at now + horizon are both in
        ("2026-03-10T18:00Z", 3, ["2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13"]),
        ("2026-03-10T18:01Z", 3, ["2026-03-11", "2026-03-12", "2026-03-13"]),
        ("2026-03-10T17:59Z", 3, ["2026-03-10", "2026-03-11", "2026-03-12"]),
        ("2026-03-10T18:00Z", 1, ["2026-03-10", "2026-03-11"]),
        ("2026-02-20T00:00Z", 10, ["2026-03-01"]),  # span starts 03-01
    ],
)
def test_window_bounds_in_utc(now: str, horizon: int, expected: list[str]) -> None:
    expansion = expand(spec(), config(), now, horizon)
    assert keys(expansion) == expected
    for occurrence in expansion.occurrences:
        assert occurrence.starts_at == utc(f"{occurrence.occurrence_key}T18:00Z")
        assert occurrence.ends_at == utc(f"{occurrence.occurrence_key}T19:00Z")


def test_window_in_a_zone_ahead_of_utc_uses_local_dates_as_keys() -> None:
    # Asia/Tokyo is UTC+9 all year: 07:00 local = 22:00Z the day before.
    expansion = expand(spec(start_time="07:00"), config(timezone="Asia/Tokyo"),
                       "2026-03-10T00:00Z", 2)
    assert [(o.occurrence_key, o.starts_at, o.ends_at) for o in expansion.occurrences] == [
        ("2026-03-11", utc("2026-03-10T22:00Z"), utc("2026-03-10T23:00Z")),
        ("2026-03-12", utc("2026-03-11T22:00Z"), utc("2026-03-11T23:00Z")),
    ]


def test_window_in_utc_minus_11() -> None:
    # Pacific/Pago_Pago is UTC-11, no DST: 20:00 local on 03-09 = 2026-03-10T07:00Z.
    expansion = expand(spec(start_time="20:00"), config(timezone="Pacific/Pago_Pago"),
                       "2026-03-10T00:00Z", 1)
    assert [(o.occurrence_key, o.starts_at) for o in expansion.occurrences] == [
        ("2026-03-09", utc("2026-03-10T07:00Z")),
    ]


def test_window_in_utc_plus_14() -> None:
    # Pacific/Kiritimati is UTC+14, no DST: 01:00 local on 03-11 = 2026-03-10T11:00Z.
    expansion = expand(spec(start_time="01:00"),
                       config(timezone="Pacific/Kiritimati", open_time="00:00"),
                       "2026-03-10T00:00Z", 1)
    assert [(o.occurrence_key, o.starts_at) for o in expansion.occurrences] == [
        ("2026-03-11", utc("2026-03-10T11:00Z")),
    ]
    assert expansion.conflicts == ()


def test_span_clips_the_window() -> None:
    expansion = expand(spec(start_date=d("2026-03-12"), end_date=d("2026-03-14")), config(),
                       "2026-03-10T00:00Z", 28)
    assert keys(expansion) == ["2026-03-12", "2026-03-13", "2026-03-14"]
    assert expansion.conflicts == ()


def test_series_starting_after_the_window_has_no_occurrence_and_no_warning() -> None:
    expansion = expand(spec(start_date=d("2026-06-01")), config(), "2026-03-10T00:00Z", 28)
    assert expansion.occurrences == ()
    assert expansion.conflicts == ()


def test_duration_defaults_to_the_resolved_default() -> None:
    cfg = config(ConfigValues(default_duration_minutes=45))
    expansion = expand(spec(duration_minutes=None), cfg, "2026-03-10T00:00Z", 1)
    assert [(o.starts_at, o.ends_at) for o in expansion.occurrences] == [
        (utc("2026-03-10T18:00Z"), utc("2026-03-10T18:45Z")),
    ]


def test_local_start_is_in_the_resolved_zone() -> None:
    expansion = expand(spec(), config(timezone="America/New_York"), "2026-03-10T00:00Z", 2)
    assert [o.local_start.isoformat() for o in expansion.occurrences] == [
        "2026-03-10T18:00:00-04:00", "2026-03-11T18:00:00-04:00",
    ]
    assert [o.starts_at for o in expansion.occurrences] == [
        utc("2026-03-10T22:00Z"), utc("2026-03-11T22:00Z"),
    ]


# exdates and closed dates ---------------------------------------------------------


def test_exdates_are_skipped_silently() -> None:
    expansion = expand(spec(exdates=(d("2026-03-11"), d("2026-03-13"))), config(),
                       "2026-03-10T00:00Z", 5)
    assert keys(expansion) == ["2026-03-10", "2026-03-12", "2026-03-14"]
    assert expansion.conflicts == ()


def test_closed_dates_are_skipped_and_reported_with_the_dates() -> None:
    cfg = config(closed_dates=(d("2026-03-11"), d("2026-03-13"), d("2026-12-25")))
    expansion = expand(spec(), cfg, "2026-03-10T00:00Z", 5)
    assert keys(expansion) == ["2026-03-10", "2026-03-12", "2026-03-14"]
    assert codes(expansion) == [c.CLOSED_DATE]
    conflict = by_code(expansion, c.CLOSED_DATE)
    # only the closed dates inside the window are reported
    assert conflict.dates == (d("2026-03-11"), d("2026-03-13"))
    assert conflict.severity == c.WARN
    assert conflict.series_key == "east-yoga"
    assert conflict.details["scope"] == "base"


def test_closed_date_scope_is_reported() -> None:
    cfg = config(ConfigValues(closed_dates=(d("2026-03-11"),)))
    conflict = by_code(expand(spec(), cfg, "2026-03-10T00:00Z", 5), c.CLOSED_DATE)
    assert conflict.details["scope"] == "branch"
    assert "branch" in conflict.message


def test_closed_date_is_a_local_date() -> None:
    # Tokyo 07:00 on 2026-03-12 is 2026-03-11T22:00Z; closing 03-12 removes it.
    cfg = config(timezone="Asia/Tokyo", closed_dates=(d("2026-03-12"),))
    expansion = expand(spec(start_time="07:00"), cfg, "2026-03-10T00:00Z", 3)
    assert keys(expansion) == ["2026-03-11", "2026-03-13"]
    assert by_code(expansion, c.CLOSED_DATE).dates == (d("2026-03-12"),)


def test_exdate_on_a_closed_date_stays_silent() -> None:
    cfg = config(closed_dates=(d("2026-03-11"),))
    expansion = expand(spec(exdates=(d("2026-03-11"),)), cfg, "2026-03-10T00:00Z", 3)
    assert keys(expansion) == ["2026-03-10", "2026-03-12"]
    assert expansion.conflicts == ()


def test_closed_date_outside_the_window_is_not_reported() -> None:
    cfg = config(closed_dates=(d("2026-03-20"),))
    expansion = expand(spec(), cfg, "2026-03-10T00:00Z", 3)
    assert keys(expansion) == ["2026-03-10", "2026-03-11", "2026-03-12"]
    assert expansion.conflicts == ()


# business hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_time", "duration", "open_time", "close_time", "outside"),
    [
        ("21:30", 60, "06:00", "22:00", True),  # ends 22:30, after close
        ("21:00", 60, "06:00", "22:00", False),  # ends exactly at close
        ("05:59", 60, "06:00", "22:00", True),  # starts before open
        ("06:00", 60, "06:00", "22:00", False),  # starts exactly at open
        ("12:00", 600, "06:00", "22:00", False),  # 12:00-22:00
        ("12:00", 601, "06:00", "22:00", True),  # 12:00-22:01
        ("23:30", 60, "00:00", "23:59", True),  # runs past midnight
        ("07:00", 60, "07:00", "08:00", False),
        ("06:30", 60, "07:00", "21:00", True),
    ],
)
def test_outside_business_hours(
    start_time: str, duration: int, open_time: str, close_time: str, outside: bool
) -> None:
    cfg = config(open_time=open_time, close_time=close_time)
    expansion = expand(spec(start_time=start_time, duration_minutes=duration), cfg,
                       "2026-03-10T00:00Z", 2)
    # generated either way
    assert keys(expansion) == ["2026-03-10", "2026-03-11"]
    if outside:
        conflict = by_code(expansion, c.OUTSIDE_BUSINESS_HOURS)
        assert conflict.severity == c.WARN
        assert conflict.details["dates"] == ["2026-03-10", "2026-03-11"]
        assert conflict.details["open_time"] == open_time
        assert conflict.details["close_time"] == close_time
        assert f"{open_time}-{close_time}" in conflict.message
    else:
        assert expansion.conflicts == ()


@pytest.mark.parametrize(("start_time", "duration"), [("18:00", 60), ("23:00", 60)])
def test_close_time_midnight_means_end_of_day(start_time: str, duration: int) -> None:
    # Hours 06:00-00:00 are "open until midnight": a session ending at midnight is inside
    # (as the core already treats it), so an earlier one on the same day must be too.
    cfg = config(open_time="06:00", close_time="00:00")
    expansion = expand(spec(start_time=start_time, duration_minutes=duration), cfg,
                       "2026-03-10T00:00Z", 1)
    assert keys(expansion) == ["2026-03-10"]
    assert expansion.conflicts == ()


def test_outside_business_hours_names_the_scopes_of_the_hours() -> None:
    cfg = config(ConfigValues(open_time="19:00"))
    conflict = by_code(expand(spec(), cfg, "2026-03-10T00:00Z", 1), c.OUTSIDE_BUSINESS_HOURS)
    assert "open_time set at branch scope" in conflict.message
    assert "close_time at base scope" in conflict.message


def test_business_hours_are_local_wall_clock() -> None:
    # 18:00 New York is 22:00Z (EDT) / 23:00Z (EST): inside 06:00-22:00 local.
    cfg = config(timezone="America/New_York")
    expansion = expand(spec(), cfg, "2026-03-01T00:00Z", 14)
    assert len(expansion.occurrences) == 14
    assert expansion.conflicts == ()


# NO_OCCURRENCES --------------------------------------------------------------------


def test_rule_with_no_occurrence_in_its_span_is_reported() -> None:
    series = spec(recurrence="FREQ=MONTHLY;BYMONTHDAY=31", start_date=d("2026-02-01"),
                  end_date=d("2026-02-28"))
    expansion = expand(series, config(), "2026-01-25T00:00Z", 60)
    assert expansion.occurrences == ()
    assert codes(expansion) == [c.NO_OCCURRENCES]
    conflict = by_code(expansion, c.NO_OCCURRENCES)
    assert conflict.severity == c.WARN
    assert conflict.dates == ()
    assert "FREQ=MONTHLY;BYMONTHDAY=31" in conflict.message


def test_rule_whose_every_date_is_excluded_is_reported() -> None:
    series = spec(recurrence="FREQ=DAILY;COUNT=2", start_date=d("2026-03-10"),
                  exdates=(d("2026-03-10"), d("2026-03-11")))
    expansion = expand(series, config(), "2026-03-01T00:00Z", 28)
    assert expansion.occurrences == ()
    assert codes(expansion) == [c.NO_OCCURRENCES]


def test_rule_whose_every_date_is_closed_is_reported_twice_over() -> None:
    series = spec(recurrence="FREQ=DAILY;COUNT=2", start_date=d("2026-03-10"))
    cfg = config(closed_dates=(d("2026-03-10"), d("2026-03-11")))
    expansion = expand(series, cfg, "2026-03-01T00:00Z", 28)
    assert expansion.occurrences == ()
    assert sorted(codes(expansion)) == sorted([c.CLOSED_DATE, c.NO_OCCURRENCES])
    assert by_code(expansion, c.CLOSED_DATE).dates == (d("2026-03-10"), d("2026-03-11"))


def test_occurrences_beyond_the_window_are_not_no_occurrences() -> None:
    series = spec(recurrence="FREQ=MONTHLY;BYMONTHDAY=31", start_date=d("2026-02-01"),
                  end_date=d("2026-03-31"))
    expansion = expand(series, config(), "2026-02-01T00:00Z", 7)
    assert expansion.occurrences == ()
    assert expansion.conflicts == ()


# validate_series -------------------------------------------------------------------


def test_valid_series_takes_defaults_from_config() -> None:
    cfg = config(ConfigValues(default_duration_minutes=45, default_capacity=12))
    valid = validate_series(spec(duration_minutes=None, capacity=None), cfg)
    assert isinstance(valid, ValidSeries)
    assert valid.duration_minutes == 45
    assert valid.capacity == 12
    assert valid.rule.freq == "DAILY"
    explicit = validate_series(spec(duration_minutes=90, capacity=0), cfg)
    assert explicit.duration_minutes == 90
    assert explicit.capacity == 0


def test_end_before_start_is_an_error() -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        validate_series(spec(start_date=d("2026-03-02"), end_date=d("2026-03-01")), config())
    err = info.value
    assert err.code == c.END_BEFORE_START
    assert err.field == "end_date"
    assert err.scope == "series"
    assert "2026-03-01" in str(err)
    assert "2026-03-02" in str(err)


def test_end_equal_to_start_is_a_one_day_series() -> None:
    valid = validate_series(spec(start_date=d("2026-03-10"), end_date=d("2026-03-10")),
                            config())
    expansion = expand_occurrences(valid, window_for(utc("2026-03-01T00:00Z"), 28))
    assert keys(expansion) == ["2026-03-10"]


@pytest.mark.parametrize("duration", [0, -30, 1441])
def test_bad_series_duration_is_an_error(duration: int) -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        validate_series(spec(duration_minutes=duration), config())
    err = info.value
    assert err.code == c.NON_POSITIVE_DURATION
    assert err.field == "duration_minutes"
    assert err.scope == "series"
    assert str(duration) in str(err)


@pytest.mark.parametrize("scope", ["base", "branch"])
def test_zero_default_duration_is_refused_by_resolve_config(scope: str) -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        if scope == "base":
            config(default_duration_minutes=0)
        else:
            config(ConfigValues(default_duration_minutes=0))
    err = info.value
    # The duration check of a default happens in resolve_config; the code it uses for the
    # field's range is INVALID_CONFIG (NON_POSITIVE_DURATION would be acceptable too).
    assert err.code in {"INVALID_CONFIG", c.NON_POSITIVE_DURATION}
    assert err.field == "default_duration_minutes"
    assert err.scope == scope
    assert f"{scope} scope" in str(err)


@pytest.mark.parametrize(
    "rule",
    ["FREQ=YEARLY", "FREQ=WEEKLY;UNTIL=20261231T000000Z", "FREQ=WEEKLY;BYDAY=1MO", ""],
)
def test_invalid_rrule_is_an_error(rule: str) -> None:
    with pytest.raises(InvalidRecurrenceError) as info:
        validate_series(spec(recurrence=rule), config())
    assert info.value.code == c.INVALID_RRULE
    assert info.value.field == "recurrence"
    assert info.value.scope == "series"


@pytest.mark.parametrize("start_time", ["25:00", "6:00", "18:60", "18h00"])
def test_invalid_start_time_is_an_error(start_time: str) -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        validate_series(spec(start_time=start_time), config())
    assert info.value.code == "INVALID_START_TIME"
    assert info.value.field == "start_time"


def test_negative_series_capacity_is_an_error() -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        validate_series(spec(capacity=-1), config())
    assert info.value.code == "INVALID_CAPACITY"
    assert info.value.field == "capacity"
    assert info.value.scope == "series"


# a rerun at the same instant ------------------------------------------------------------

def test_a_rerun_at_the_same_instant_carries_every_warning_date_as_it_is() -> None:
    # New York: 2026-03-08 02:30 does not exist (shifted to 03:30 EDT); 2026-03-11 closed.
    cfg = config(timezone="America/New_York", closed_dates=(d("2026-03-11"),))
    series = validate_series(spec(start_time="02:30"), cfg)
    window = window_for(utc("2026-03-02T12:00:00+00:00"), 14)
    full = expand_occurrences(series, window)
    assert full.dates.shifted == (d("2026-03-08"),)
    assert full.dates.closed == (d("2026-03-11"),)
    again = continue_expansion(series, window, since=window.end, carried=full.dates,
                               carried_from=window.start)
    assert again.occurrences == ()
    assert again.dates == full.dates
    assert again.conflicts == full.conflicts


def test_a_snapshot_is_validated_once() -> None:
    snap = build_snapshot(spec(), taken_at=utc("2026-03-02T12:00:00+00:00"), base=BASE,
                          branch=None, series=None, branch_known=True)
    assert snap.error is None
    assert snap.valid() is snap.valid()
