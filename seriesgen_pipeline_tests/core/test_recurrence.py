"""Contract of ``core.recurrence`` (SPEC §4, FR-003).

``parse_rule`` accepts exactly the RRULE subset: ``FREQ`` in DAILY/WEEKLY/MONTHLY,
``INTERVAL``, ``BYDAY`` (ordinals only with MONTHLY), ``BYMONTHDAY`` (not with
WEEKLY) and ``COUNT``; anything else (``UNTIL``, unknown parts, YEARLY, bad
values, an empty rule) raises ``InvalidRecurrenceError`` (code ``INVALID_RRULE``)
whose message quotes the rule and names the part at fault.

``expand_dates`` yields the local dates of the rule inside
``[from_date, to_date]`` ∩ ``[start_date, end_date]`` (both ends inclusive);
``INTERVAL`` and ``COUNT`` are anchored on ``start_date`` whatever the window;
months without the requested day are skipped. Expected dates below were read
off a calendar, not computed with the code under test.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from dateutil import rrule as rr

from seriesgen_pipeline.core.errors import InvalidRecurrenceError
from seriesgen_pipeline.core.recurrence import (
    RecurrenceRule,
    expand_dates,
    first_date,
    parse_rule,
)


def d(text: str) -> date:
    return date.fromisoformat(text)


def dates(*texts: str) -> list[date]:
    return [d(t) for t in texts]


def expand(
    rule: str, start: str, end: str | None, window_from: str, window_to: str
) -> list[date]:
    return list(expand_dates(
        parse_rule(rule), start_date=d(start), end_date=d(end) if end else None,
        from_date=d(window_from), to_date=d(window_to),
    ))


# parse_rule: accepted ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "freq", "interval", "byday", "bymonthday", "count"),
    [
        ("FREQ=DAILY", "DAILY", 1, (), (), None),
        ("FREQ=DAILY;INTERVAL=3", "DAILY", 3, (), (), None),
        ("FREQ=WEEKLY;BYDAY=MO,WE", "WEEKLY", 1, ((None, "MO"), (None, "WE")), (), None),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=10", "WEEKLY", 2, ((None, "TU"),), (),
         10),
        ("freq=weekly;byday=fr", "WEEKLY", 1, ((None, "FR"),), (), None),
        ("FREQ=MONTHLY;BYDAY=1MO,-1FR", "MONTHLY", 1, ((1, "MO"), (-1, "FR")), (), None),
        ("FREQ=MONTHLY;BYDAY=+2SU", "MONTHLY", 1, ((2, "SU"),), (), None),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15,-1", "MONTHLY", 1, (), (1, 15, -1), None),
        ("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3", "MONTHLY", 1, (), (31,), 3),
        ("FREQ=MONTHLY;BYDAY=SA", "MONTHLY", 1, ((None, "SA"),), (), None),
        ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "DAILY", 1,
         ((None, "MO"), (None, "TU"), (None, "WE"), (None, "TH"), (None, "FR")), (), None),
        (" FREQ=DAILY;COUNT=5; ", "DAILY", 1, (), (), 5),
    ],
)
def test_parse_rule_accepts_the_subset(
    text: str, freq: str, interval: int, byday: tuple[tuple[int | None, str], ...],
    bymonthday: tuple[int, ...], count: int | None,
) -> None:
    rule = parse_rule(text)
    assert isinstance(rule, RecurrenceRule)
    assert rule.freq == freq
    assert rule.interval == interval
    assert rule.byday == byday
    assert rule.bymonthday == bymonthday
    assert rule.count == count


# parse_rule: rejected ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("FREQ=WEEKLY;BYDAY=MO;UNTIL=20261231T000000Z", "UNTIL"),
        ("FREQ=DAILY;UNTIL=20261231", "start_date..end_date"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
        ("FREQ=WEEKLY;WKST=SU", "WKST"),
        ("FREQ=DAILY;DTSTART=20260101T000000", "DTSTART"),
        ("FREQ=MONTHLY;BYSETPOS=1;BYDAY=MO", "BYSETPOS"),
        ("FREQ=YEARLY", "YEARLY"),
        ("FREQ=HOURLY", "HOURLY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "1MO"),
        ("FREQ=DAILY;BYDAY=-1FR", "-1FR"),
        ("FREQ=WEEKLY;BYMONTHDAY=15", "BYMONTHDAY"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=-2", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=two", "INTERVAL"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=WEEKLY;BYDAY=XY", "XY"),
        ("FREQ=WEEKLY;BYDAY=MON", "MON"),
        ("FREQ=WEEKLY;BYDAY=MO,", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=0MO", "0MO"),
        ("FREQ=MONTHLY;BYDAY=6MO", "6MO"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "32"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("BYDAY=MO", "FREQ"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("FREQ=DAILY;INTERVAL", "INTERVAL"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_parse_rule_rejects_with_a_helpful_message(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRecurrenceError) as info:
        parse_rule(text)
    err = info.value
    assert err.code == "INVALID_RRULE"
    assert err.field == "recurrence"
    assert err.rule == text
    message = str(err)
    assert fragment in message
    assert "recurrence" in message
    assert "FREQ=DAILY|WEEKLY|MONTHLY" in message  # the fix hint


def test_until_message_explains_the_span() -> None:
    with pytest.raises(InvalidRecurrenceError) as info:
        parse_rule("FREQ=WEEKLY;BYDAY=MO;UNTIL=20261231T000000Z")
    assert "start_date..end_date" in info.value.reason


def test_ordinal_with_weekly_says_monthly_only() -> None:
    with pytest.raises(InvalidRecurrenceError) as info:
        parse_rule("FREQ=WEEKLY;BYDAY=2TU")
    assert "MONTHLY" in info.value.reason


# expand_dates --------------------------------------------------------------------


def test_weekly_interval_2_is_anchored_on_start_date_whatever_the_window() -> None:
    rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"
    # start 2026-01-05 (a Monday): 01-05, 01-19, 02-02, 02-16, 03-02, ...
    assert expand(rule, "2026-01-05", None, "2026-01-01", "2026-02-20") == dates(
        "2026-01-05", "2026-01-19", "2026-02-02", "2026-02-16")
    assert expand(rule, "2026-01-05", None, "2026-01-12", "2026-02-10") == dates(
        "2026-01-19", "2026-02-02")
    # A window starting on an "off" Monday must not re-anchor the rule.
    assert expand(rule, "2026-01-05", None, "2026-01-26", "2026-03-03") == dates(
        "2026-02-02", "2026-02-16", "2026-03-02")


def test_weekly_interval_2_start_mid_week_uses_the_start_week() -> None:
    # start 2026-01-07 (Wednesday), week of 01-05 is week 0: WE 01-07, MO+WE 01-19/01-21, ...
    assert expand("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "2026-01-07", None,
                  "2026-01-01", "2026-02-05") == dates(
        "2026-01-07", "2026-01-19", "2026-01-21", "2026-02-02", "2026-02-04")


def test_daily_interval_3_is_anchored_on_start_date() -> None:
    # 01-01, 01-04, 01-07, 01-10, 01-13, 01-16, 01-19
    assert expand("FREQ=DAILY;INTERVAL=3", "2026-01-01", None,
                  "2026-01-11", "2026-01-19") == dates("2026-01-13", "2026-01-16", "2026-01-19")


def test_monthly_interval_2_is_anchored_on_start_date() -> None:
    assert expand("FREQ=MONTHLY;INTERVAL=2", "2026-01-15", None,
                  "2026-02-01", "2026-07-31") == dates("2026-03-15", "2026-05-15", "2026-07-15")


def test_count_is_counted_from_start_date_not_from_window() -> None:
    rule = "FREQ=DAILY;COUNT=5"
    assert expand(rule, "2026-01-01", None, "2025-12-01", "2026-12-31") == dates(
        "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05")
    assert expand(rule, "2026-01-01", None, "2026-01-03", "2026-12-31") == dates(
        "2026-01-03", "2026-01-04", "2026-01-05")
    assert expand(rule, "2026-01-01", None, "2026-01-06", "2026-12-31") == []


def test_count_counts_rule_dates_not_calendar_days() -> None:
    # start 2026-01-01 is a Thursday: the first four MO/WE are 01-05, 01-07, 01-12, 01-14.
    rule = "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"
    assert expand(rule, "2026-01-01", None, "2026-01-01", "2026-03-01") == dates(
        "2026-01-05", "2026-01-07", "2026-01-12", "2026-01-14")
    assert expand(rule, "2026-01-01", None, "2026-01-10", "2026-03-01") == dates(
        "2026-01-12", "2026-01-14")


def test_count_and_end_date_whichever_comes_first() -> None:
    rule = "FREQ=WEEKLY;BYDAY=MO;COUNT=3"
    # Mondays from 2026-01-01: 01-05, 01-12, 01-19, ...
    assert expand(rule, "2026-01-01", "2026-01-14", "2026-01-01", "2026-03-01") == dates(
        "2026-01-05", "2026-01-12")
    assert expand(rule, "2026-01-01", "2026-06-30", "2026-01-01", "2026-03-01") == dates(
        "2026-01-05", "2026-01-12", "2026-01-19")


def test_bymonthday_31_skips_short_months() -> None:
    assert expand("FREQ=MONTHLY;BYMONTHDAY=31", "2026-01-01", "2026-12-31",
                  "2026-01-01", "2026-12-31") == dates(
        "2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31",
        "2026-10-31", "2026-12-31")


def test_bymonthday_minus_1_is_the_last_day_of_each_month() -> None:
    assert expand("FREQ=MONTHLY;BYMONTHDAY=-1", "2028-01-01", None,
                  "2028-01-01", "2028-04-30") == dates(
        "2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30")


def test_last_friday_of_the_month() -> None:
    assert expand("FREQ=MONTHLY;BYDAY=-1FR", "2026-01-01", None,
                  "2026-01-01", "2026-06-30") == dates(
        "2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24", "2026-05-29", "2026-06-26")


def test_first_monday_and_second_sunday() -> None:
    assert expand("FREQ=MONTHLY;BYDAY=1MO", "2026-01-01", None,
                  "2026-01-01", "2026-04-30") == dates(
        "2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06")
    assert expand("FREQ=MONTHLY;BYDAY=2SU", "2026-01-01", None,
                  "2026-01-01", "2026-04-30") == dates(
        "2026-01-11", "2026-02-08", "2026-03-08", "2026-04-12")


def test_fifth_monday_only_in_months_that_have_one() -> None:
    # 2026: months with five Mondays in Jan..Jun are March (30) and June (29).
    assert expand("FREQ=MONTHLY;BYDAY=5MO", "2026-01-01", None,
                  "2026-01-01", "2026-06-30") == dates("2026-03-30", "2026-06-29")


def test_end_date_is_inclusive() -> None:
    assert expand("FREQ=DAILY", "2026-01-01", "2026-01-03",
                  "2025-12-01", "2026-02-01") == dates("2026-01-01", "2026-01-02", "2026-01-03")
    # end_date on a rule date is included; the next one is not.
    assert expand("FREQ=WEEKLY;BYDAY=MO", "2026-01-01", "2026-01-12",
                  "2026-01-01", "2026-02-01") == dates("2026-01-05", "2026-01-12")


def test_window_bounds_are_inclusive() -> None:
    assert expand("FREQ=DAILY", "2026-01-01", None,
                  "2026-01-10", "2026-01-12") == dates("2026-01-10", "2026-01-11", "2026-01-12")
    assert expand("FREQ=DAILY", "2026-01-01", None,
                  "2026-01-10", "2026-01-10") == dates("2026-01-10")


def test_nothing_outside_the_span() -> None:
    assert expand("FREQ=DAILY", "2026-03-01", "2026-03-31", "2026-01-01", "2026-02-28") == []
    assert expand("FREQ=DAILY", "2026-03-01", "2026-03-31", "2026-04-01", "2026-04-30") == []
    assert expand("FREQ=DAILY", "2026-03-10", "2026-03-01", "2026-01-01", "2026-12-31") == []


def test_weekly_without_byday_uses_the_start_weekday() -> None:
    # 2026-01-07 is a Wednesday.
    assert expand("FREQ=WEEKLY", "2026-01-07", None, "2026-01-01", "2026-01-31") == dates(
        "2026-01-07", "2026-01-14", "2026-01-21", "2026-01-28")


def test_first_date_finds_the_first_non_skipped_date() -> None:
    rule = parse_rule("FREQ=WEEKLY;BYDAY=MO")
    assert first_date(rule, start_date=d("2026-01-01"), end_date=None) == d("2026-01-05")
    assert first_date(rule, start_date=d("2026-01-01"), end_date=None,
                      skip=frozenset({d("2026-01-05")})) == d("2026-01-12")
    assert first_date(rule, start_date=d("2026-01-01"), end_date=d("2026-01-04")) is None
    feb = parse_rule("FREQ=MONTHLY;BYMONTHDAY=31")
    assert first_date(feb, start_date=d("2026-02-01"), end_date=d("2026-02-28")) is None


# The expansion starts its walk at a later start on the rule's lattice (whole
# intervals after start_date) instead of walking the series' whole past. The
# reference below is dateutil itself, from the true start_date, cut to the window.
_REFERENCE_RULES = [
    ("FREQ=DAILY", {"freq": rr.DAILY}),
    ("FREQ=DAILY;INTERVAL=3", {"freq": rr.DAILY, "interval": 3}),
    ("FREQ=DAILY;INTERVAL=2;BYDAY=MO,TH", {"freq": rr.DAILY, "interval": 2,
                                           "byweekday": [rr.MO, rr.TH]}),
    ("FREQ=WEEKLY", {"freq": rr.WEEKLY}),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SA", {"freq": rr.WEEKLY, "interval": 2,
                                            "byweekday": [rr.TU, rr.SA]}),
    ("FREQ=WEEKLY;INTERVAL=3", {"freq": rr.WEEKLY, "interval": 3}),
    ("FREQ=MONTHLY", {"freq": rr.MONTHLY}),
    ("FREQ=MONTHLY;INTERVAL=2", {"freq": rr.MONTHLY, "interval": 2}),
    ("FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR", {"freq": rr.MONTHLY, "interval": 3,
                                            "byweekday": [rr.FR(-1)]}),
    ("FREQ=MONTHLY;BYMONTHDAY=31", {"freq": rr.MONTHLY, "bymonthday": [31]}),
    ("FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=1,-1", {"freq": rr.MONTHLY, "interval": 5,
                                                 "bymonthday": [1, -1]}),
    ("FREQ=WEEKLY;BYDAY=MO;COUNT=40", {"freq": rr.WEEKLY, "byweekday": [rr.MO],
                                       "count": 40}),
]


@pytest.mark.parametrize(("text", "params"), _REFERENCE_RULES,
                         ids=[text for text, _ in _REFERENCE_RULES])
def test_windows_far_from_the_start_match_dateutil_from_the_start(
        text: str, params: dict[str, Any]) -> None:
    rule = parse_rule(text)
    # Starts on the 29th-31st (months without that day) and mid-week; windows
    # months and years later, a few days to a year long.
    for start in (date(2023, 1, 31), date(2023, 8, 29), date(2024, 2, 29), date(2024, 5, 15)):
        reference = [d.date() for d in rr.rrule(dtstart=datetime.combine(start, time()),
                                                cache=False, **params)
                     .between(datetime.combine(date(2023, 1, 1), time()),
                              datetime.combine(date(2031, 1, 1), time()), inc=True)]
        for low, days in ((date(2024, 3, 1), 14), (date(2025, 7, 17), 365),
                          (date(2026, 12, 30), 3), (date(2029, 2, 28), 40)):
            high = low + timedelta(days=days)
            got = list(expand_dates(rule, start_date=start, end_date=None, from_date=low,
                                    to_date=high))
            want = [d for d in reference if low <= d <= high]
            assert got == want, (text, start, low)
