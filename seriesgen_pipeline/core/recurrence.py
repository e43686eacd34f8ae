"""The RRULE subset of SPEC §4, parsed strictly and expanded with ``dateutil.rrule``.

Supported: ``FREQ`` (DAILY, WEEKLY, MONTHLY), ``INTERVAL``, ``BYDAY`` (with
ordinals such as ``1MO`` or ``-1FR`` for MONTHLY only), ``BYMONTHDAY`` and
``COUNT``. The span comes from the series' ``start_date``/``end_date``, so
``UNTIL`` (and ``DTSTART``) are refused. ``COUNT`` counts the rule's dates from
``start_date``; exception dates are removed afterwards (RFC 5545).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil import rrule as du

from seriesgen_pipeline.core.errors import InvalidRecurrenceError

_FREQS = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY}
_WEEKDAYS = {"MO": du.MO, "TU": du.TU, "WE": du.WE, "TH": du.TH, "FR": du.FR, "SA": du.SA,
             "SU": du.SU}
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_INT = re.compile(r"^[+-]?\d{1,9}$")


@dataclass(frozen=True)
class RecurrenceRule:
    """A parsed rule: ``byday`` holds ``(ordinal or None, weekday code)`` pairs."""

    text: str
    freq: str
    interval: int = 1
    byday: tuple[tuple[int | None, str], ...] = ()
    bymonthday: tuple[int, ...] = ()
    count: int | None = None


def parse_rule(text: str) -> RecurrenceRule:
    """Parse and validate an RRULE of the supported subset.

    Raises:
        InvalidRecurrenceError: naming the part that is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRecurrenceError(str(text), "the rule is empty")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for chunk in body.split(";"):
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise InvalidRecurrenceError(text, f"{chunk!r} is not NAME=VALUE")
        if name in parts:
            raise InvalidRecurrenceError(text, f"{name} is given twice")
        parts[name] = value.strip().upper()
    unsupported = sorted(set(parts) - {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT"})
    if unsupported:
        why = {"UNTIL": "UNTIL is not used: the span is start_date..end_date"}
        raise InvalidRecurrenceError(
            text, why.get(unsupported[0], f"unsupported part {unsupported[0]}")
        )
    freq = parts.get("FREQ")
    if freq is None:
        raise InvalidRecurrenceError(text, "FREQ is required")
    if freq not in _FREQS:
        raise InvalidRecurrenceError(text, f"FREQ={freq} is not DAILY, WEEKLY or MONTHLY")
    interval = _positive(text, parts, "INTERVAL", default=1, high=1000)
    count = _positive(text, parts, "COUNT", default=None, high=100000)
    byday: list[tuple[int | None, str]] = []
    for item in _items(parts.get("BYDAY")):
        match = _BYDAY.match(item)
        if not match:
            raise InvalidRecurrenceError(text, f"BYDAY value {item!r} is not a weekday")
        ordinal = int(match.group(1)) if match.group(1) else None
        if ordinal is not None:
            if freq != "MONTHLY":
                raise InvalidRecurrenceError(
                    text, f"BYDAY ordinal {item!r} is only allowed with FREQ=MONTHLY"
                )
            if ordinal == 0 or not -5 <= ordinal <= 5:
                raise InvalidRecurrenceError(
                    text, f"BYDAY ordinal in {item!r} must be 1..5 or -5..-1")
        byday.append((ordinal, match.group(2)))
    bymonthday: list[int] = []
    for item in _items(parts.get("BYMONTHDAY")):
        if not _INT.match(item) or int(item) == 0 or not -31 <= int(item) <= 31:
            raise InvalidRecurrenceError(
                text, f"BYMONTHDAY value {item!r} must be 1..31 or -31..-1")
        bymonthday.append(int(item))
    if bymonthday and freq == "WEEKLY":
        raise InvalidRecurrenceError(text, "BYMONTHDAY is not allowed with FREQ=WEEKLY")
    return RecurrenceRule(
        text=text, freq=freq, interval=interval or 1, byday=tuple(byday),
        bymonthday=tuple(bymonthday), count=count,
    )


def _items(value: str | None) -> list[str]:
    if value is None:
        return []
    return [item.strip() for item in value.split(",")]


def _positive(text: str, parts: dict[str, str], name: str, *, default: int | None,
              high: int) -> int | None:
    if name not in parts:
        return default
    raw = parts[name]
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise InvalidRecurrenceError(text, f"{name}={raw} must be an integer 1..{high}")
    return int(raw)


def _build(rule: RecurrenceRule, start: date, end: date | None, *,
           bymonthday: tuple[int, ...] = ()) -> du.rrule:
    weekdays = [
        _WEEKDAYS[code](ordinal) if ordinal is not None else _WEEKDAYS[code]
        for ordinal, code in rule.byday
    ]
    return du.rrule(
        _FREQS[rule.freq],  # type: ignore[arg-type]  # the stubs list freq as a literal
        dtstart=datetime.combine(start, time()),
        interval=rule.interval,
        byweekday=weekdays or None,
        bymonthday=list(bymonthday or rule.bymonthday) or None,
        count=rule.count,
        # dateutil deprecates COUNT with UNTIL; with COUNT the caller cuts at end_date.
        until=datetime.combine(end, time()) if end is not None and rule.count is None else None,
        cache=False,
    )


def expand_dates(
    rule: RecurrenceRule,
    *,
    start_date: date,
    end_date: date | None,
    from_date: date,
    to_date: date,
) -> Iterator[date]:
    """Yield the local dates the rule schedules in ``[from_date, to_date]``.

    Dates are those of the whole series span (``start_date``..``end_date``), so
    ``COUNT`` and ``INTERVAL`` are anchored on ``start_date`` whatever the window.
    """
    if end_date is not None and end_date < start_date:
        return
    low = max(from_date, start_date)
    high = to_date if end_date is None else min(to_date, end_date)
    if high < low:
        return
    anchor, bymonthday = _anchor(rule, start_date, low)
    expanded = _build(rule, anchor, end_date, bymonthday=bymonthday)
    for moment in expanded.xafter(datetime.combine(low, time()), inc=True):
        day = moment.date()
        if day > high:
            return
        yield day


def _anchor(rule: RecurrenceRule, start: date, low: date) -> tuple[date, tuple[int, ...]]:
    """A start no later than ``low`` from which the rule schedules the same dates
    from ``low`` on, and the BYMONTHDAY that keeps them so.

    The rule's dates form a lattice anchored on ``start`` (every INTERVAL days,
    weeks or months); moving the start forward by whole intervals keeps the
    lattice, so the expansion need not walk the series' whole past to reach a
    window. A MONTHLY rule that takes its day of month from the start keeps it
    through an explicit BYMONTHDAY. ``COUNT`` counts from the first date: its
    start stays.
    """
    if rule.count is not None or low <= start:
        return start, ()
    if rule.freq in ("DAILY", "WEEKLY"):
        step = rule.interval * (1 if rule.freq == "DAILY" else 7)
        return start + timedelta(days=(low - start).days // step * step), ()
    months = (low.year - start.year) * 12 + low.month - start.month
    shift = months // rule.interval * rule.interval
    if shift == 0:
        return start, ()
    index = start.year * 12 + start.month - 1 + shift
    bymonthday = () if rule.byday or rule.bymonthday else (start.day,)
    return date(index // 12, index % 12 + 1, 1), bymonthday


def first_date(rule: RecurrenceRule, *, start_date: date, end_date: date | None,
               skip: frozenset[date] = frozenset()) -> date | None:
    """The first date the rule schedules in the span that is not in ``skip``.

    Used to report a series that has no occurrence at all. Open-ended rules are
    searched for 20 years, which covers every rule of the subset.
    """
    horizon = end_date if end_date is not None else start_date + timedelta(days=366 * 20)
    for day in expand_dates(rule, start_date=start_date, end_date=end_date,
                            from_date=start_date, to_date=horizon):
        if day not in skip:
            return day
    return None
