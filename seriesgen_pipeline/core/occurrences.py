"""A validated series expanded into concrete occurrences over a window (SPEC §4, §5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.clock import parse_hhmm
from seriesgen_pipeline.core.recurrence import expand_dates, first_date
from seriesgen_pipeline.core.series import ValidSeries
from seriesgen_pipeline.core.timezones import (
    LocalTimeKind,
    PlacedTime,
    load_zone,
    place_local_time,
)


@dataclass(frozen=True)
class Occurrence:
    """One session the rule wants to exist.

    Attributes:
        occurrence_key: the local date the rule scheduled, ``YYYY-MM-DD``.
        starts_at: UTC instant.
        ends_at: ``starts_at`` + duration (elapsed time).
        local_start: the aware local start actually used (after a DST shift).
    """

    occurrence_key: str
    starts_at: datetime
    ends_at: datetime
    local_start: datetime


@dataclass(frozen=True)
class Window:
    """``[start, end]`` in UTC: sessions exist for occurrences starting inside it."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class WarnDates:
    """What is behind a series' warnings in one window, apart from double bookings.

    The local dates of the date-based warnings, and whether the rule schedules no
    session at all: what a later run needs to report the warnings of a whole
    window after expanding only the part of it beyond the previous window (see
    ``continue_expansion``). Plain values, so it can be stored.
    """

    closed: tuple[date, ...] = ()
    shifted: tuple[date, ...] = ()
    dropped: tuple[date, ...] = ()
    ambiguous: tuple[date, ...] = ()
    outside: tuple[date, ...] = ()
    no_occurrences: bool = False

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able form."""
        payload: dict[str, Any] = {name: [d.isoformat() for d in getattr(self, name)]
                                   for name in _WARN_KINDS if getattr(self, name)}
        if self.no_occurrences:
            payload["no_occurrences"] = True
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> WarnDates:
        """The inverse of ``to_payload``."""
        return _warn_dates({name: tuple(date.fromisoformat(d) for d in payload.get(name, ()))
                            for name in _WARN_KINDS},
                           bool(payload.get("no_occurrences", False)))


_WARN_KINDS = ("closed", "shifted", "dropped", "ambiguous", "outside")


def _warn_dates(by_kind: dict[str, tuple[date, ...]], no_occurrences: bool) -> WarnDates:
    return WarnDates(by_kind["closed"], by_kind["shifted"], by_kind["dropped"],
                     by_kind["ambiguous"], by_kind["outside"], no_occurrences)


@dataclass(frozen=True)
class Expansion:
    """The occurrences of a series in a window and the warnings met on the way.

    ``dates`` are the dates behind the date-based warnings, over the whole window.
    """

    occurrences: tuple[Occurrence, ...]
    conflicts: tuple[c.Conflict, ...]
    dates: WarnDates = field(default_factory=WarnDates)


def window_for(now: datetime, horizon_days: int) -> Window:
    """The generation window of a series as of ``now``."""
    return Window(start=now, end=now + timedelta(days=horizon_days))


def expand_occurrences(series: ValidSeries, window: Window) -> Expansion:
    """Expand a series over ``window`` in local wall time, then convert to UTC.

    Exception dates are skipped silently (they are intended); closed dates are
    skipped and reported; nonexistent local times are shifted forward by the gap
    and reported, or dropped (and reported) when the local date itself is
    skipped; ambiguous local times take the first instant and are reported;
    occurrences outside business hours are generated and reported.
    """
    occurrences, dates = _scan(series, window)
    spec, config = series.spec, series.config
    # An occurrence in the window is a date of the span that is neither an exdate
    # nor closed: only without one is the whole span searched.
    none = not occurrences and first_date(
        series.rule, start_date=spec.start_date, end_date=spec.end_date,
        skip=frozenset(spec.exdates) | config.closed_dates) is None
    dates = replace(dates, no_occurrences=none)
    return Expansion(occurrences, _warnings(series, dates), dates)


def continue_expansion(series: ValidSeries, window: Window, *, since: datetime,
                       carried: WarnDates, carried_from: datetime | None = None) -> Expansion:
    """The occurrences of ``window`` after ``since``, with the warnings of all of ``window``.

    ``carried`` are the warning dates of an earlier expansion of the same series
    whose window ended at ``since`` and started at or before ``window.start``
    (at ``carried_from``, when known).
    Together with the dates found after ``since``, the dates of ``carried`` still
    inside ``window`` give exactly the warnings a full ``expand_occurrences`` of
    ``window`` reports, at the cost of expanding only ``(since, window.end]``.
    Whether the rule schedules nothing at all does not depend on the window: it
    is carried as it is.
    """
    later = Window(since + timedelta(microseconds=1), window.end)
    # An empty slice (the window ends where the last generation did) holds nothing.
    occurrences, found = _scan(series, later) if later.start <= later.end else ((), WarnDates())
    # An earlier window that starts where this one does (a rerun at the same instant)
    # lies inside it: every date it carries is still inside.
    same_start = carried_from is not None and carried_from >= window.start
    kept = carried if same_start else _still_inside(series, carried, window)
    dates = _warn_dates({name: tuple(sorted({*getattr(kept, name), *getattr(found, name)}))
                         for name in _WARN_KINDS}, carried.no_occurrences)
    return Expansion(occurrences, _warnings(series, dates), dates)


def _scan(series: ValidSeries, window: Window) -> tuple[tuple[Occurrence, ...], WarnDates]:
    spec, config = series.spec, series.config
    zone = load_zone(config.timezone, scope=config.provenance.get("timezone"))
    start_time = parse_hhmm(spec.start_time)
    duration = timedelta(minutes=series.duration_minutes)
    # Local dates around the window; a day either side covers every UTC offset.
    from_date = window.start.astimezone(zone).date() - timedelta(days=1)
    to_date = window.end.astimezone(zone).date() + timedelta(days=1)
    exdates = set(spec.exdates)
    closed: list[date] = []
    shifted: list[date] = []
    dropped: list[date] = []
    ambiguous: list[date] = []
    outside: list[date] = []
    occurrences: list[Occurrence] = []
    hours = (config.open_time, config.close_time)
    for day in expand_dates(series.rule, start_date=spec.start_date, end_date=spec.end_date,
                            from_date=from_date, to_date=to_date):
        if day in exdates:
            continue
        wall = datetime.combine(day, start_time)
        placed = _place(wall, zone)
        if placed.utc is None or placed.local is None:
            if _in_window(wall, zone, window):
                dropped.append(day)
            continue
        if not window.start <= placed.utc <= window.end:
            continue
        if day in config.closed_dates:
            closed.append(day)
            continue
        if placed.kind is LocalTimeKind.SHIFTED:
            shifted.append(day)
        elif placed.kind is LocalTimeKind.AMBIGUOUS:
            ambiguous.append(day)
        ends_at = placed.utc + duration
        if _outside_hours(placed.local, ends_at.astimezone(zone), *hours):
            outside.append(day)
        occurrences.append(Occurrence(day.isoformat(), placed.utc, ends_at, placed.local))
    return tuple(occurrences), WarnDates(tuple(closed), tuple(shifted), tuple(dropped),
                                         tuple(ambiguous), tuple(outside))


def _still_inside(series: ValidSeries, dates: WarnDates, window: Window) -> WarnDates:
    """The dates of ``dates`` whose occurrence still starts inside ``window``."""
    zone = load_zone(series.config.timezone)
    start_time = parse_hhmm(series.spec.start_time)

    # A local date at least two days after the window's first UTC date starts
    # after it in any zone; carried dates end no later than the window does.
    surely_inside = window.start.date() + timedelta(days=2)

    def inside(day: date) -> bool:
        if day >= surely_inside:
            return True
        wall = datetime.combine(day, start_time)
        placed = _place(wall, zone)
        if placed.utc is None:
            return _in_window(wall, zone, window)
        return window.start <= placed.utc <= window.end

    return _warn_dates({name: tuple(d for d in getattr(dates, name) if inside(d))
                        for name in _WARN_KINDS}, dates.no_occurrences)


@lru_cache(maxsize=131_072)
def _place(wall: datetime, zone: ZoneInfo) -> PlacedTime:
    """``place_local_time``, cached: it is pure, and series of one zone share start
    times and dates (a night of 10,000 series places about 1.5 M wall times, a
    few tens of thousands of them distinct)."""
    return place_local_time(wall, zone)


def _in_window(wall: datetime, zone: object, window: Window) -> bool:
    # A dropped day has no instant; judge it by the instant before the gap.
    probe = wall.replace(tzinfo=zone, fold=0)  # type: ignore[arg-type]
    return window.start <= probe <= window.end


def _outside_hours(local_start: datetime, local_end: datetime, open_time: time,
                   close_time: time) -> bool:
    """Outside ``open_time``..``close_time``; a close time of 00:00 means midnight (24:00)."""
    if local_start.time() < open_time:
        return True
    closes_at_midnight = close_time == time(0)
    if local_end.date() != local_start.date():
        ends_at_midnight = (local_end.date() == local_start.date() + timedelta(days=1)
                            and local_end.time() == time(0))
        return not (closes_at_midnight and ends_at_midnight)
    return not closes_at_midnight and local_end.time() > close_time


# The warnings of the DST policy, in the order they are reported: the kind of date
# behind each (a field of ``WarnDates``), its code, its message (``str.format`` with
# ``start``, ``zone`` and ``days``), and whether its details name the start time.
_DST_WARNINGS = (
    ("shifted", c.NONEXISTENT_LOCAL_TIME,
     "{start} does not exist in {zone} on {days} (clocks go forward); those sessions start "
     "later by the length of the gap. Move start_time out of the gap to keep the time", True),
    ("dropped", c.SKIPPED_LOCAL_DATE,
     "{start} on {days} does not exist in {zone}, and moving it forward by the gap lands on "
     "another local date; the occurrence is dropped", False),
    ("ambiguous", c.AMBIGUOUS_LOCAL_TIME,
     "{start} happens twice in {zone} on {days} (clocks go back); the first of the two is "
     "used. Move start_time out of the repeated hour to avoid the doubt", True),
)


def _warnings(series: ValidSeries, dates: WarnDates) -> tuple[c.Conflict, ...]:
    """The warnings of a window whose dates behind them are ``dates``, in report order."""
    spec, config = series.spec, series.config
    found: list[c.Conflict] = []

    def warn(code: str, message: str, days: tuple[date, ...] = (),
             details: dict[str, Any] | None = None) -> None:
        found.append(c.Conflict(spec.key, code, c.WARN, message, days, details or {}))

    if dates.closed:
        scope = config.provenance["closed_dates"]
        warn(c.CLOSED_DATE, f"{len(dates.closed)} occurrence(s) fall on closed dates and are "
             f"skipped (closed_dates set at {scope} scope); add them to the series' exdates "
             "to silence this", tuple(dates.closed), {"scope": scope})
    for kind, code, message, names_start in _DST_WARNINGS:
        days: tuple[date, ...] = getattr(dates, kind)
        if days:
            details = {"timezone": config.timezone}
            if names_start:
                details["start_time"] = spec.start_time
            warn(code, message.format(start=spec.start_time, zone=config.timezone,
                                      days=_days(days)), tuple(days), details)
    if dates.outside:
        hours = f"{config.open_time:%H:%M}-{config.close_time:%H:%M}"
        warn(c.OUTSIDE_BUSINESS_HOURS,
             f"sessions at {spec.start_time} for {series.duration_minutes} min fall outside "
             f"business hours {hours} (open_time set at {config.provenance['open_time']} "
             f"scope, close_time at {config.provenance['close_time']} scope); change "
             "start_time or the hours",
             # The hours concern the rule, not dates: the dates go in the details only.
             (), {"dates": [d.isoformat() for d in dates.outside],
                  "open_time": f"{config.open_time:%H:%M}",
                  "close_time": f"{config.close_time:%H:%M}"})
    if dates.no_occurrences:
        warn(c.NO_OCCURRENCES,
             f"the rule {spec.recurrence!r} schedules no session between {spec.start_date} "
             f"and {spec.end_date or 'open end'} (after exdates and closed dates); check the "
             "rule and the dates")
    return tuple(found)


def _days(days: Iterable[date]) -> str:
    listed = [d.isoformat() for d in days]
    return ", ".join(listed[:5]) + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")
