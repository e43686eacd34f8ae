"""Contract of the DST policy (SPEC §4), checked on real zones and dates.

- A wall-clock time that does not exist (spring forward) is moved forward by the
  length of the gap (New York 02:30 -> 03:30, Lord Howe 02:15 -> 02:45, Troll
  01:30 -> 03:30) and reported as ``NONEXISTENT_LOCAL_TIME`` with its dates.
- A wall-clock time that happens twice (fall back) is the first of the two and is
  reported as ``AMBIGUOUS_LOCAL_TIME`` with its dates.
- When the shift lands on another local date (Pacific/Apia skipped 2011-12-30)
  the occurrence is dropped and reported as ``SKIPPED_LOCAL_DATE``.
- A session lasts its duration of elapsed time: ``ends_at = starts_at + duration``.
- The occurrence key is the local date the rule scheduled.

Every expected instant is a literal worked out by hand from the zone's rules (and
cross-checked against the installed tz database with the standard library), never
computed with the code under test.

Midnight gaps used (verified with Python's ``zoneinfo`` against the system tz
database 2025b and the ``tzdata`` package 2026f, which agree): America/Havana
springs forward 2026-03-08 00:00 CST -> 01:00 CDT (05:00Z), America/Santiago
2026-09-06 00:00 -04 -> 01:00 -03 (04:00Z); so local 00:00 does not exist on
those dates. America/Santiago falls back 2026-04-05 00:00 -03 -> 2026-04-04
23:00 -04, so 23:30 on 2026-04-04 happens twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.config import ConfigValues, resolve_config
from seriesgen_pipeline.core.generation import desired_sessions
from seriesgen_pipeline.core.occurrences import Window, expand_occurrences, window_for
from seriesgen_pipeline.core.series import SeriesSpec, ValidSeries, validate_series
from seriesgen_pipeline.core.timezones import LocalTimeKind, place_local_time

EXACT = LocalTimeKind.EXACT
SHIFTED = LocalTimeKind.SHIFTED
AMBIGUOUS = LocalTimeKind.AMBIGUOUS
DROPPED = LocalTimeKind.DROPPED


def utc(text: str) -> datetime:
    """A literal UTC instant, e.g. ``2026-03-08T07:30Z``."""
    value = datetime.fromisoformat(text)
    assert value.utcoffset() == timedelta(0)
    return value


def wall(text: str) -> datetime:
    """A naive local wall-clock time, e.g. ``2026-03-08 02:30``."""
    day, clock = text.split()
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock))


def d(text: str) -> date:
    return date.fromisoformat(text)


# place_local_time -------------------------------------------------------------------

PLACEMENTS = [
    # zone, local wall time, kind, UTC instant, local time used (ISO with offset)
    pytest.param("America/New_York", "2026-03-07 02:30", EXACT,
                 "2026-03-07T07:30Z", "2026-03-07T02:30:00-05:00", id="new-york-day-before"),
    pytest.param("America/New_York", "2026-03-08 02:30", SHIFTED,
                 "2026-03-08T07:30Z", "2026-03-08T03:30:00-04:00", id="new-york-spring-forward"),
    pytest.param("America/New_York", "2026-03-08 02:00", SHIFTED,
                 "2026-03-08T07:00Z", "2026-03-08T03:00:00-04:00", id="new-york-gap-start"),
    pytest.param("America/New_York", "2026-03-08 03:00", EXACT,
                 "2026-03-08T07:00Z", "2026-03-08T03:00:00-04:00", id="new-york-gap-end"),
    pytest.param("America/New_York", "2026-11-01 01:30", AMBIGUOUS,
                 "2026-11-01T05:30Z", "2026-11-01T01:30:00-04:00", id="new-york-fall-back"),
    pytest.param("America/New_York", "2026-11-01 02:00", EXACT,
                 "2026-11-01T07:00Z", "2026-11-01T02:00:00-05:00", id="new-york-after-fold"),
    pytest.param("Europe/London", "2026-03-29 01:30", SHIFTED,
                 "2026-03-29T01:30Z", "2026-03-29T02:30:00+01:00", id="london-spring-forward"),
    pytest.param("Europe/London", "2026-10-25 01:30", AMBIGUOUS,
                 "2026-10-25T00:30Z", "2026-10-25T01:30:00+01:00", id="london-fall-back"),
    pytest.param("Europe/London", "2026-10-25 00:30", EXACT,
                 "2026-10-24T23:30Z", "2026-10-25T00:30:00+01:00", id="london-before-fold"),
    pytest.param("Asia/Kolkata", "2026-03-08 09:00", EXACT,
                 "2026-03-08T03:30Z", "2026-03-08T09:00:00+05:30", id="kolkata-half-hour"),
    pytest.param("Asia/Kathmandu", "2026-03-08 09:00", EXACT,
                 "2026-03-08T03:15Z", "2026-03-08T09:00:00+05:45", id="kathmandu-45-min"),
    pytest.param("Australia/Lord_Howe", "2026-10-04 02:15", SHIFTED,
                 "2026-10-03T15:45Z", "2026-10-04T02:45:00+11:00", id="lord-howe-30-min-gap"),
    pytest.param("Australia/Lord_Howe", "2026-04-05 01:45", AMBIGUOUS,
                 "2026-04-04T14:45Z", "2026-04-05T01:45:00+11:00", id="lord-howe-30-min-fold"),
    pytest.param("Australia/Sydney", "2026-10-04 02:30", SHIFTED,
                 "2026-10-03T16:30Z", "2026-10-04T03:30:00+11:00", id="sydney-spring-forward"),
    pytest.param("Australia/Sydney", "2026-04-05 02:30", AMBIGUOUS,
                 "2026-04-04T15:30Z", "2026-04-05T02:30:00+11:00", id="sydney-fall-back"),
    pytest.param("America/Havana", "2026-03-08 00:00", SHIFTED,
                 "2026-03-08T05:00Z", "2026-03-08T01:00:00-04:00", id="havana-midnight-gap"),
    pytest.param("America/Havana", "2026-03-08 00:30", SHIFTED,
                 "2026-03-08T05:30Z", "2026-03-08T01:30:00-04:00", id="havana-in-midnight-gap"),
    pytest.param("America/Santiago", "2026-09-06 00:00", SHIFTED,
                 "2026-09-06T04:00Z", "2026-09-06T01:00:00-03:00", id="santiago-midnight-gap"),
    pytest.param("America/Santiago", "2026-04-04 23:30", AMBIGUOUS,
                 "2026-04-05T02:30Z", "2026-04-04T23:30:00-03:00", id="santiago-fold-at-midnight"),
    pytest.param("Pacific/Apia", "2011-12-29 10:00", EXACT,
                 "2011-12-29T20:00Z", "2011-12-29T10:00:00-10:00", id="apia-day-before-skip"),
    pytest.param("Pacific/Apia", "2011-12-31 10:00", EXACT,
                 "2011-12-30T20:00Z", "2011-12-31T10:00:00+14:00", id="apia-day-after-skip"),
    pytest.param("Antarctica/Troll", "2026-03-29 01:30", SHIFTED,
                 "2026-03-29T01:30Z", "2026-03-29T03:30:00+02:00", id="troll-2-hour-gap"),
    pytest.param("Antarctica/Troll", "2026-03-29 02:59", SHIFTED,
                 "2026-03-29T02:59Z", "2026-03-29T04:59:00+02:00", id="troll-gap-last-minute"),
    pytest.param("Antarctica/Troll", "2026-10-25 02:00", AMBIGUOUS,
                 "2026-10-25T00:00Z", "2026-10-25T02:00:00+02:00", id="troll-2-hour-fold"),
    pytest.param("UTC", "2026-03-29 01:30", EXACT,
                 "2026-03-29T01:30Z", "2026-03-29T01:30:00+00:00", id="utc"),
]


@pytest.mark.parametrize(("zone", "local", "kind", "instant", "used"), PLACEMENTS)
def test_place_local_time(zone: str, local: str, kind: LocalTimeKind, instant: str,
                          used: str) -> None:
    placed = place_local_time(wall(local), ZoneInfo(zone))
    assert placed.kind is kind
    assert placed.utc == utc(instant)
    assert placed.utc is not None and placed.utc.utcoffset() == timedelta(0)
    assert placed.local is not None
    assert placed.local.isoformat() == used
    assert placed.local.tzinfo == ZoneInfo(zone)


@pytest.mark.parametrize("local", ["2011-12-30 00:00", "2011-12-30 10:00", "2011-12-30 23:59"])
def test_place_local_time_drops_a_date_that_does_not_exist(local: str) -> None:
    placed = place_local_time(wall(local), ZoneInfo("Pacific/Apia"))
    assert placed.kind is DROPPED
    assert placed.utc is None
    assert placed.local is None


# expand_occurrences / desired_sessions ---------------------------------------------


@dataclass(frozen=True)
class Case:
    zone: str
    rule: str
    start_time: str
    start: str
    end: str
    # occurrence key, local start used (ISO with offset), UTC start, UTC end
    expected: list[tuple[str, str, str, str]]
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    duration: int = 60


NONEXISTENT = c.NONEXISTENT_LOCAL_TIME
AMBIG = c.AMBIGUOUS_LOCAL_TIME
SKIPPED = c.SKIPPED_LOCAL_DATE

CASES = [
    pytest.param(Case(
        "America/New_York", "FREQ=DAILY", "02:30", "2026-03-07", "2026-03-09",
        [("2026-03-07", "2026-03-07T02:30:00-05:00", "2026-03-07T07:30Z", "2026-03-07T08:30Z"),
         ("2026-03-08", "2026-03-08T03:30:00-04:00", "2026-03-08T07:30Z", "2026-03-08T08:30Z"),
         ("2026-03-09", "2026-03-09T02:30:00-04:00", "2026-03-09T06:30Z", "2026-03-09T07:30Z")],
        {NONEXISTENT: ("2026-03-08",)},
    ), id="new-york-daily-spring-forward"),
    pytest.param(Case(
        "America/New_York", "FREQ=DAILY", "01:30", "2026-10-31", "2026-11-02",
        [("2026-10-31", "2026-10-31T01:30:00-04:00", "2026-10-31T05:30Z", "2026-10-31T06:30Z"),
         ("2026-11-01", "2026-11-01T01:30:00-04:00", "2026-11-01T05:30Z", "2026-11-01T06:30Z"),
         ("2026-11-02", "2026-11-02T01:30:00-05:00", "2026-11-02T06:30Z", "2026-11-02T07:30Z")],
        {AMBIG: ("2026-11-01",)},
    ), id="new-york-daily-fall-back"),
    pytest.param(Case(
        "Europe/London", "FREQ=DAILY", "01:30", "2026-03-28", "2026-03-30",
        [("2026-03-28", "2026-03-28T01:30:00+00:00", "2026-03-28T01:30Z", "2026-03-28T02:30Z"),
         ("2026-03-29", "2026-03-29T02:30:00+01:00", "2026-03-29T01:30Z", "2026-03-29T02:30Z"),
         ("2026-03-30", "2026-03-30T01:30:00+01:00", "2026-03-30T00:30Z", "2026-03-30T01:30Z")],
        {NONEXISTENT: ("2026-03-29",)},
    ), id="london-daily-spring-forward"),
    pytest.param(Case(
        "Europe/London", "FREQ=DAILY", "01:30", "2026-10-24", "2026-10-26",
        [("2026-10-24", "2026-10-24T01:30:00+01:00", "2026-10-24T00:30Z", "2026-10-24T01:30Z"),
         ("2026-10-25", "2026-10-25T01:30:00+01:00", "2026-10-25T00:30Z", "2026-10-25T01:30Z"),
         ("2026-10-26", "2026-10-26T01:30:00+00:00", "2026-10-26T01:30Z", "2026-10-26T02:30Z")],
        {AMBIG: ("2026-10-25",)},
    ), id="london-daily-fall-back"),
    pytest.param(Case(
        "America/New_York", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "02:30",
        "2026-02-22", "2026-03-31",
        [("2026-02-22", "2026-02-22T02:30:00-05:00", "2026-02-22T07:30Z", "2026-02-22T08:30Z"),
         ("2026-03-08", "2026-03-08T03:30:00-04:00", "2026-03-08T07:30Z", "2026-03-08T08:30Z"),
         ("2026-03-22", "2026-03-22T02:30:00-04:00", "2026-03-22T06:30Z", "2026-03-22T07:30Z")],
        {NONEXISTENT: ("2026-03-08",)},
    ), id="new-york-weekly-interval-2-hits-gap"),
    pytest.param(Case(
        "America/New_York", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "02:30",
        "2026-03-01", "2026-03-31",
        [("2026-03-01", "2026-03-01T02:30:00-05:00", "2026-03-01T07:30Z", "2026-03-01T08:30Z"),
         ("2026-03-15", "2026-03-15T02:30:00-04:00", "2026-03-15T06:30Z", "2026-03-15T07:30Z"),
         ("2026-03-29", "2026-03-29T02:30:00-04:00", "2026-03-29T06:30Z", "2026-03-29T07:30Z")],
        {},
    ), id="new-york-weekly-interval-2-skips-gap"),
    pytest.param(Case(
        "Europe/London", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "01:30", "2026-10-11", "2026-11-08",
        [("2026-10-11", "2026-10-11T01:30:00+01:00", "2026-10-11T00:30Z", "2026-10-11T01:30Z"),
         ("2026-10-25", "2026-10-25T01:30:00+01:00", "2026-10-25T00:30Z", "2026-10-25T01:30Z"),
         ("2026-11-08", "2026-11-08T01:30:00+00:00", "2026-11-08T01:30Z", "2026-11-08T02:30Z")],
        {AMBIG: ("2026-10-25",)},
    ), id="london-weekly-interval-2-fall-back"),
    pytest.param(Case(
        "America/New_York", "FREQ=MONTHLY;BYDAY=2SU", "02:30", "2026-01-01", "2026-04-30",
        [("2026-01-11", "2026-01-11T02:30:00-05:00", "2026-01-11T07:30Z", "2026-01-11T08:30Z"),
         ("2026-02-08", "2026-02-08T02:30:00-05:00", "2026-02-08T07:30Z", "2026-02-08T08:30Z"),
         ("2026-03-08", "2026-03-08T03:30:00-04:00", "2026-03-08T07:30Z", "2026-03-08T08:30Z"),
         ("2026-04-12", "2026-04-12T02:30:00-04:00", "2026-04-12T06:30Z", "2026-04-12T07:30Z")],
        {NONEXISTENT: ("2026-03-08",)},
    ), id="new-york-monthly-second-sunday"),
    pytest.param(Case(
        "Europe/London", "FREQ=MONTHLY;BYDAY=-1SU", "01:30", "2026-09-01", "2026-11-30",
        [("2026-09-27", "2026-09-27T01:30:00+01:00", "2026-09-27T00:30Z", "2026-09-27T01:30Z"),
         ("2026-10-25", "2026-10-25T01:30:00+01:00", "2026-10-25T00:30Z", "2026-10-25T01:30Z"),
         ("2026-11-29", "2026-11-29T01:30:00+00:00", "2026-11-29T01:30Z", "2026-11-29T02:30Z")],
        {AMBIG: ("2026-10-25",)},
    ), id="london-monthly-last-sunday-fall-back"),
    pytest.param(Case(
        "Europe/London", "FREQ=MONTHLY;BYDAY=-1SU", "01:30", "2026-02-01", "2026-04-30",
        [("2026-02-22", "2026-02-22T01:30:00+00:00", "2026-02-22T01:30Z", "2026-02-22T02:30Z"),
         ("2026-03-29", "2026-03-29T02:30:00+01:00", "2026-03-29T01:30Z", "2026-03-29T02:30Z"),
         ("2026-04-26", "2026-04-26T01:30:00+01:00", "2026-04-26T00:30Z", "2026-04-26T01:30Z")],
        {NONEXISTENT: ("2026-03-29",)},
    ), id="london-monthly-last-sunday-spring-forward"),
    pytest.param(Case(
        "Australia/Sydney", "FREQ=DAILY", "02:30", "2026-10-03", "2026-10-05",
        [("2026-10-03", "2026-10-03T02:30:00+10:00", "2026-10-02T16:30Z", "2026-10-02T17:30Z"),
         ("2026-10-04", "2026-10-04T03:30:00+11:00", "2026-10-03T16:30Z", "2026-10-03T17:30Z"),
         ("2026-10-05", "2026-10-05T02:30:00+11:00", "2026-10-04T15:30Z", "2026-10-04T16:30Z")],
        {NONEXISTENT: ("2026-10-04",)},
    ), id="sydney-daily-spring-forward"),
    pytest.param(Case(
        "Australia/Sydney", "FREQ=DAILY", "02:30", "2026-04-04", "2026-04-06",
        [("2026-04-04", "2026-04-04T02:30:00+11:00", "2026-04-03T15:30Z", "2026-04-03T16:30Z"),
         ("2026-04-05", "2026-04-05T02:30:00+11:00", "2026-04-04T15:30Z", "2026-04-04T16:30Z"),
         ("2026-04-06", "2026-04-06T02:30:00+10:00", "2026-04-05T16:30Z", "2026-04-05T17:30Z")],
        {AMBIG: ("2026-04-05",)},
    ), id="sydney-daily-fall-back"),
    pytest.param(Case(
        "Australia/Lord_Howe", "FREQ=DAILY", "02:15", "2026-10-03", "2026-10-05",
        [("2026-10-03", "2026-10-03T02:15:00+10:30", "2026-10-02T15:45Z", "2026-10-02T16:15Z"),
         ("2026-10-04", "2026-10-04T02:45:00+11:00", "2026-10-03T15:45Z", "2026-10-03T16:15Z"),
         ("2026-10-05", "2026-10-05T02:15:00+11:00", "2026-10-04T15:15Z", "2026-10-04T15:45Z")],
        {NONEXISTENT: ("2026-10-04",)}, duration=30,
    ), id="lord-howe-daily-30-minute-gap"),
    pytest.param(Case(
        "Asia/Kolkata", "FREQ=DAILY", "09:00", "2026-03-07", "2026-03-08",
        [("2026-03-07", "2026-03-07T09:00:00+05:30", "2026-03-07T03:30Z", "2026-03-07T04:30Z"),
         ("2026-03-08", "2026-03-08T09:00:00+05:30", "2026-03-08T03:30Z", "2026-03-08T04:30Z")],
        {},
    ), id="kolkata-daily"),
    pytest.param(Case(
        "Asia/Kathmandu", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "09:00", "2026-03-01", "2026-03-31",
        [("2026-03-01", "2026-03-01T09:00:00+05:45", "2026-03-01T03:15Z", "2026-03-01T04:15Z"),
         ("2026-03-15", "2026-03-15T09:00:00+05:45", "2026-03-15T03:15Z", "2026-03-15T04:15Z"),
         ("2026-03-29", "2026-03-29T09:00:00+05:45", "2026-03-29T03:15Z", "2026-03-29T04:15Z")],
        {},
    ), id="kathmandu-weekly-interval-2"),
    pytest.param(Case(
        "America/Havana", "FREQ=DAILY", "00:00", "2026-03-07", "2026-03-09",
        [("2026-03-07", "2026-03-07T00:00:00-05:00", "2026-03-07T05:00Z", "2026-03-07T06:00Z"),
         ("2026-03-08", "2026-03-08T01:00:00-04:00", "2026-03-08T05:00Z", "2026-03-08T06:00Z"),
         ("2026-03-09", "2026-03-09T00:00:00-04:00", "2026-03-09T04:00Z", "2026-03-09T05:00Z")],
        {NONEXISTENT: ("2026-03-08",)},
    ), id="havana-daily-midnight-gap"),
    pytest.param(Case(
        "America/Santiago", "FREQ=DAILY", "00:00", "2026-09-05", "2026-09-07",
        [("2026-09-05", "2026-09-05T00:00:00-04:00", "2026-09-05T04:00Z", "2026-09-05T05:00Z"),
         ("2026-09-06", "2026-09-06T01:00:00-03:00", "2026-09-06T04:00Z", "2026-09-06T05:00Z"),
         ("2026-09-07", "2026-09-07T00:00:00-03:00", "2026-09-07T03:00Z", "2026-09-07T04:00Z")],
        {NONEXISTENT: ("2026-09-06",)},
    ), id="santiago-daily-midnight-gap"),
    pytest.param(Case(
        "America/Santiago", "FREQ=DAILY", "23:30", "2026-04-03", "2026-04-05",
        [("2026-04-03", "2026-04-03T23:30:00-03:00", "2026-04-04T02:30Z", "2026-04-04T02:50Z"),
         ("2026-04-04", "2026-04-04T23:30:00-03:00", "2026-04-05T02:30Z", "2026-04-05T02:50Z"),
         ("2026-04-05", "2026-04-05T23:30:00-04:00", "2026-04-06T03:30Z", "2026-04-06T03:50Z")],
        {AMBIG: ("2026-04-04",)}, duration=20,
    ), id="santiago-daily-fold-before-midnight"),
    pytest.param(Case(
        "Pacific/Apia", "FREQ=DAILY", "10:00", "2011-12-28", "2011-12-31",
        [("2011-12-28", "2011-12-28T10:00:00-10:00", "2011-12-28T20:00Z", "2011-12-28T21:00Z"),
         ("2011-12-29", "2011-12-29T10:00:00-10:00", "2011-12-29T20:00Z", "2011-12-29T21:00Z"),
         ("2011-12-31", "2011-12-31T10:00:00+14:00", "2011-12-30T20:00Z", "2011-12-30T21:00Z")],
        {SKIPPED: ("2011-12-30",)},
    ), id="apia-daily-skipped-day"),
    pytest.param(Case(
        "Antarctica/Troll", "FREQ=DAILY", "01:30", "2026-03-28", "2026-03-30",
        [("2026-03-28", "2026-03-28T01:30:00+00:00", "2026-03-28T01:30Z", "2026-03-28T02:30Z"),
         ("2026-03-29", "2026-03-29T03:30:00+02:00", "2026-03-29T01:30Z", "2026-03-29T02:30Z"),
         ("2026-03-30", "2026-03-30T01:30:00+02:00", "2026-03-29T23:30Z", "2026-03-30T00:30Z")],
        {NONEXISTENT: ("2026-03-29",)},
    ), id="troll-daily-2-hour-gap"),
    pytest.param(Case(
        "Antarctica/Troll", "FREQ=DAILY", "02:00", "2026-10-24", "2026-10-26",
        [("2026-10-24", "2026-10-24T02:00:00+02:00", "2026-10-24T00:00Z", "2026-10-24T01:00Z"),
         ("2026-10-25", "2026-10-25T02:00:00+02:00", "2026-10-25T00:00Z", "2026-10-25T01:00Z"),
         ("2026-10-26", "2026-10-26T02:00:00+00:00", "2026-10-26T02:00Z", "2026-10-26T03:00Z")],
        {AMBIG: ("2026-10-25",)},
    ), id="troll-daily-2-hour-fold"),
    pytest.param(Case(
        "Europe/London", "FREQ=DAILY", "00:30", "2026-10-25", "2026-10-25",
        [("2026-10-25", "2026-10-25T00:30:00+01:00", "2026-10-24T23:30Z", "2026-10-25T01:00Z")],
        {}, duration=90,
    ), id="london-90-minutes-across-fall-back-is-elapsed-time"),
    pytest.param(Case(
        "America/New_York", "FREQ=DAILY", "01:30", "2026-03-08", "2026-03-08",
        [("2026-03-08", "2026-03-08T01:30:00-05:00", "2026-03-08T06:30Z", "2026-03-08T08:00Z")],
        {}, duration=90,
    ), id="new-york-90-minutes-across-spring-forward-is-elapsed-time"),
]


def make_series(
    zone: str, rule: str, start_time: str, start: date, end: date | None, duration: int = 60,
    *, open_time: str = "00:00", close_time: str = "23:59",
) -> ValidSeries:
    config = resolve_config(ConfigValues(
        horizon_days=730, timezone=zone, default_duration_minutes=60, default_capacity=10,
        open_time=open_time, close_time=close_time, closed_dates=(),
        generation_enabled=True, cleanup_grace_days=0,
    ))
    spec = SeriesSpec(
        id=7, key="dst-series", branch_id="east", title="Yoga Basics", instructor="Ana",
        room="Studio 2", capacity=None, recurrence=rule, start_time=start_time,
        duration_minutes=duration, start_date=start, end_date=end,
    )
    return validate_series(spec, config)


def wide_window(case: Case) -> Window:
    start = datetime.fromisoformat(f"{case.start}T00:00:00+00:00") - timedelta(days=3)
    return window_for(start, 200)


def series_for(case: Case) -> ValidSeries:
    return make_series(case.zone, case.rule, case.start_time, d(case.start), d(case.end),
                       case.duration)


def warnings_of(conflicts: tuple[c.Conflict, ...]) -> dict[str, tuple[date, ...]]:
    return {conflict.code: conflict.dates for conflict in conflicts}


@pytest.mark.parametrize("case", CASES)
def test_expand_occurrences_across_dst(case: Case) -> None:
    expansion = expand_occurrences(series_for(case), wide_window(case))
    got = [
        (o.occurrence_key, o.local_start.isoformat(), o.starts_at, o.ends_at)
        for o in expansion.occurrences
    ]
    assert got == [(key, local, utc(s), utc(e)) for key, local, s, e in case.expected]
    for occurrence in expansion.occurrences:
        assert occurrence.starts_at.utcoffset() == timedelta(0)
        assert occurrence.ends_at - occurrence.starts_at == timedelta(minutes=case.duration)
    assert warnings_of(expansion.conflicts) == {
        code: tuple(d(x) for x in days) for code, days in case.warnings.items()
    }
    for conflict in expansion.conflicts:
        assert conflict.severity == c.WARN
        assert conflict.series_key == "dst-series"
        for day in conflict.dates:
            assert day.isoformat() in conflict.message
        assert case.zone in conflict.message


@pytest.mark.parametrize("case", CASES)
def test_desired_sessions_across_dst(case: Case) -> None:
    result = desired_sessions(series_for(case), wide_window(case))
    got = [(s.occurrence_key, s.starts_at, s.ends_at) for s in result.sessions]
    assert got == [(key, utc(s), utc(e)) for key, _, s, e in case.expected]
    for session in result.sessions:
        assert session.timezone == case.zone
        assert session.title == "Yoga Basics"
        assert session.room == "Studio 2"
        assert session.instructor == "Ana"
        assert session.branch_id == "east"
        assert session.capacity == 10
    assert warnings_of(result.conflicts) == {
        code: tuple(d(x) for x in days) for code, days in case.warnings.items()
    }


def test_dst_warning_only_when_the_affected_date_is_in_the_window() -> None:
    series = make_series("America/New_York", "FREQ=DAILY", "02:30", d("2026-01-01"), None)
    inside = expand_occurrences(series, window_for(utc("2026-03-01T00:00Z"), 14))
    assert warnings_of(inside.conflicts) == {NONEXISTENT: (d("2026-03-08"),)}
    after = expand_occurrences(series, window_for(utc("2026-03-09T12:00Z"), 7))
    assert warnings_of(after.conflicts) == {}
    assert [o.occurrence_key for o in after.occurrences] == [
        "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13", "2026-03-14", "2026-03-15",
        "2026-03-16",
    ]


def test_skipped_date_outside_the_window_is_not_reported() -> None:
    series = make_series("Pacific/Apia", "FREQ=DAILY", "10:00", d("2011-12-01"), None)
    # now = 2011-12-31 14:00 local: 2011-12-30 is expanded (a day of margin) but its
    # wall time (10:00 -10 before the skip = 2011-12-30T20:00Z) is before now.
    expansion = expand_occurrences(series, window_for(utc("2011-12-31T00:00Z"), 3))
    assert warnings_of(expansion.conflicts) == {}
    # 2011-12-31 10:00 +14 = 2011-12-30T20:00Z is before now; the next three are in.
    assert [(o.occurrence_key, o.starts_at) for o in expansion.occurrences] == [
        ("2012-01-01", utc("2011-12-31T20:00Z")),
        ("2012-01-02", utc("2012-01-01T20:00Z")),
        ("2012-01-03", utc("2012-01-02T20:00Z")),
    ]


def test_several_dst_dates_are_all_listed() -> None:
    # Second Sunday of March at 02:30 in New York: 2026-03-08 and 2027-03-14 are both
    # spring-forward days (2027: second Sunday of March is the 14th).
    series = make_series("America/New_York", "FREQ=MONTHLY;BYDAY=2SU", "02:30",
                         d("2026-01-01"), d("2027-12-31"))
    expansion = expand_occurrences(series, window_for(utc("2026-01-01T00:00Z"), 730))
    assert warnings_of(expansion.conflicts)[NONEXISTENT] == (d("2026-03-08"), d("2027-03-14"))
    by_key = {o.occurrence_key: o for o in expansion.occurrences}
    assert by_key["2027-03-14"].starts_at == utc("2027-03-14T07:30Z")
    assert by_key["2027-03-14"].local_start.isoformat() == "2027-03-14T03:30:00-04:00"
    assert len(expansion.occurrences) == 24
