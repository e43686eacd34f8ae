"""One value of a data file checked, and shown back to the operator.

Each check takes the value as the file gives it and returns the field's value, or
raises ``Invalid`` with what is wrong, in the words the operator reads after the
item and the field (``series[2] 'east-yoga': field 'start_time': <message>``).
Nothing here knows about fields or items: the schema (``schema.py``) says which
check a field takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from seriesgen_pipeline.core.clock import parse_hhmm
from seriesgen_pipeline.core.config import validate_field
from seriesgen_pipeline.core.errors import SeriesDefinitionError
from seriesgen_pipeline.core.limits import (
    EARLIEST_DATE,
    INT_MAX,
    LATEST_DATE,
    RULE_LENGTH,
    TEXT_LENGTH,
    IntRange,
)
from seriesgen_pipeline.core.recurrence import parse_rule

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Unicode category Cc (C0, DEL, C1) and lone surrogates, which no database column can hold.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN_CHARACTERS = 60  # longer text is cut in messages


class Invalid(Exception):
    """A value is wrong; the message says why (the caller adds item and field)."""


@dataclass(frozen=True, eq=False)
class UnusableKey:
    """A list or mapping used as a mapping key: reported, never turned into text."""

    kind: str


@dataclass(frozen=True)
class HugeNumber:
    """An integer literal longer than Python converts (``sys.get_int_max_str_digits``)."""

    digits: int


def show(value: Any) -> str:
    """A value as the operator wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARACTERS:
            return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, HugeNumber):
        return f"a number of {value.digits:,} digits"
    if isinstance(value, int) and abs(value) >= 10**18:  # str() of a huge int may refuse
        return "a number of more than 18 digits"
    if isinstance(value, date | int | float):
        return str(value)
    if isinstance(value, UnusableKey):
        return value.kind
    return f"a {type(value).__name__}"


def control_character(text: str) -> str | None:
    """What is wrong with the first control character or lone surrogate of ``text``."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    code = ord(found.group())
    what = "an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"contains {what} (U+{code:04X})"


def text(value: Any, *, max_length: int = TEXT_LENGTH) -> str:
    """Text that is not blank and fits its column."""
    if not isinstance(value, str):
        raise Invalid(f"must be text, not {show(value)} (put it in quotes)")
    if not value.strip():
        raise Invalid("must not be empty")
    if len(value) > max_length:
        raise Invalid(f"is {len(value)} characters long, at most {max_length} are allowed")
    return value


def identifier(value: Any, *, max_length: int) -> str:
    """A key or id: text without surrounding spaces or control characters."""
    checked = text(value, max_length=max_length)
    if checked != checked.strip():
        raise Invalid(f"{checked!r} has leading or trailing spaces")
    if _CONTROL.search(checked) or "..." in checked:
        raise Invalid(f"{checked!r} must not contain control characters or '...'")
    return checked


def whole_number(value: Any, *, within: IntRange | None = None,
                 at_most: int = INT_MAX) -> int:
    """An integer in ``within`` (up to ``INT_MAX`` when it has no upper bound), or
    without ``within`` an integer of at most ``at_most``."""
    if within is not None:
        top = within.high if within.high is not None else INT_MAX
        bounds = f"{within.low}..{top}"
        low: int | None = within.low
    else:
        top, bounds, low = at_most, f"at most {at_most}", None
    if isinstance(value, HugeNumber):
        raise Invalid(f"{show(value)} is out of range, must be {bounds}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"must be a whole number, not {show(value)}")
    if (low is not None and value < low) or value > top:
        raise Invalid(f"{show(value)} is out of range, must be {bounds}")
    return value


def time_of_day(value: Any) -> str:
    """``HH:MM`` text (an unquoted ``18:00`` in YAML is read as this text)."""
    if not isinstance(value, str):
        raise Invalid(f"must be a time of day in quotes, e.g. \"18:00\", not {show(value)}")
    if len(value) > _SHOWN_CHARACTERS:  # parse_hhmm's message would quote all of it
        raise Invalid(f"{show(value)} is not a time of day in HH:MM (00:00..23:59)")
    try:
        parse_hhmm(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return value


def a_date(value: Any) -> date:
    """A YAML date or ``YYYY-MM-DD`` text, without a time of day, within the limits."""
    if isinstance(value, datetime):
        raise Invalid(f"{value} has a time of day; give a date as YYYY-MM-DD")
    if isinstance(value, str):
        try:
            if not _ISO_DATE.match(value):
                raise ValueError(value)
            value = date.fromisoformat(value)
        except ValueError:
            raise Invalid(f"{show(value)} is not a valid date (YYYY-MM-DD)") from None
    if not isinstance(value, date):
        raise Invalid(f"must be a date (YYYY-MM-DD), not {show(value)}")
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise Invalid(f"{value} is out of range, must be {EARLIEST_DATE}..{LATEST_DATE}")
    return value


def a_list_of_dates(value: Any) -> list[Any]:
    """The list itself (each item is checked by ``a_date``)."""
    if not isinstance(value, list):
        raise Invalid(f"must be a list of dates (YYYY-MM-DD), not {show(value)}")
    return value


def boolean(value: Any) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, not {show(value)}")
    return value


def recurrence(value: Any) -> str:
    """An RRULE of the supported subset (``core.recurrence``)."""
    rule = text(value, max_length=RULE_LENGTH)
    try:
        parse_rule(rule)
    except SeriesDefinitionError as exc:
        raise Invalid(exc.reason) from exc
    return rule


def config_range(name: str, value: Any, scope: str) -> None:
    """The core's own check of a configuration value (range, zone...), as a message."""
    try:
        validate_field(name, value, scope)
    except SeriesDefinitionError as exc:
        raise Invalid(f"{exc.reason}; {exc.hint}" if exc.hint else exc.reason) from exc
