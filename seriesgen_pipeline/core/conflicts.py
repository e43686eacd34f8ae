"""Conflicts: what stops a series (ERROR) and what is generated around (WARN).

Every conflict has a stable ``code``; the codes are listed in ``docs/`` with
what to change. ``dedupe_key`` identifies "the same conflict on the same
configuration", so a nightly run does not notify it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from seriesgen_pipeline.core.jsonable import json_fields

ERROR = "ERROR"
WARN = "WARN"

# Errors (the series fails alone).
UNKNOWN_BRANCH = "UNKNOWN_BRANCH"
INVALID_TIMEZONE = "INVALID_TIMEZONE"
INVALID_RRULE = "INVALID_RRULE"
END_BEFORE_START = "END_BEFORE_START"
NON_POSITIVE_DURATION = "NON_POSITIVE_DURATION"
INCOMPLETE_BASE_CONFIG = "INCOMPLETE_BASE_CONFIG"
INVALID_CONFIG = "INVALID_CONFIG"
INVALID_START_TIME = "INVALID_START_TIME"
INVALID_CAPACITY = "INVALID_CAPACITY"
UNREADABLE_VALUE = "UNREADABLE_VALUE"
# Warnings (generated around).
OUTSIDE_BUSINESS_HOURS = "OUTSIDE_BUSINESS_HOURS"
CLOSED_DATE = "CLOSED_DATE"
NONEXISTENT_LOCAL_TIME = "NONEXISTENT_LOCAL_TIME"
SKIPPED_LOCAL_DATE = "SKIPPED_LOCAL_DATE"
AMBIGUOUS_LOCAL_TIME = "AMBIGUOUS_LOCAL_TIME"
ROOM_DOUBLE_BOOKED = "ROOM_DOUBLE_BOOKED"
INSTRUCTOR_DOUBLE_BOOKED = "INSTRUCTOR_DOUBLE_BOOKED"
NO_OCCURRENCES = "NO_OCCURRENCES"


@dataclass(frozen=True)
class Conflict:
    """One conflict of one series.

    Attributes:
        series_key: the series it concerns.
        code: stable code (see module constants).
        severity: ``ERROR`` or ``WARN``.
        message: what is wrong and what to change, at which scope.
        dates: the affected local dates (empty when the rule itself is at fault).
        details: extra data (other series, times, field, scope).
    """

    series_key: str
    code: str
    severity: str
    message: str
    dates: tuple[date, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def dedupe_key(self, config_hash: str) -> str:
        """Same series, code, configuration and affected dates -> same key."""
        text = "|".join(
            [self.series_key, self.code, config_hash, ",".join(d.isoformat() for d in self.dates)]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (dates as ISO strings)."""
        return json_fields(self)


@dataclass(frozen=True)
class Overlap:
    """A session of ``series_key`` that overlaps one of ``other_series_key``.

    Attributes:
        resource: ``room`` or ``instructor``.
        value: the room or instructor booked twice.
        occurrence_key: the local date of the session of ``series_key``.
        branch_id: the branch both series belong to.
    """

    series_key: str
    other_series_key: str
    resource: str
    value: str
    occurrence_key: str
    branch_id: str


@dataclass(frozen=True)
class DoubleBooking:
    """The sessions of ``series_key`` on ``occurrence_keys`` overlap sessions of
    ``other_series_key`` in one branch's room (or instructor): all the overlaps of one
    series with one other series on one resource, as ``double_booking_conflicts``
    reports them.

    Attributes:
        resource: ``room`` or ``instructor``.
        value: the room or instructor booked twice.
        branch_id: the branch both series belong to.
        occurrence_keys: the local dates of the sessions of ``series_key``.
    """

    series_key: str
    other_series_key: str
    resource: str
    value: str
    branch_id: str
    occurrence_keys: tuple[str, ...]


def double_booking_conflicts(bookings: Iterable[DoubleBooking]) -> list[Conflict]:
    """One conflict per series, resource and other series, listing the affected dates
    (the dates of bookings of one such group are merged)."""
    grouped: dict[tuple[str, str, str, str, str], set[str]] = {}
    for b in bookings:
        group = (b.series_key, b.resource, b.value, b.other_series_key, b.branch_id)
        grouped.setdefault(group, set()).update(b.occurrence_keys)
    found = []
    for (key, resource, value, other, branch), days in sorted(grouped.items()):
        if not days:
            continue
        code = ROOM_DOUBLE_BOOKED if resource == "room" else INSTRUCTOR_DOUBLE_BOOKED
        listed = sorted(days)
        found.append(Conflict(
            key, code, WARN,
            f"{resource} {value!r} is also booked by series {other!r} at overlapping times in "
            f"branch {branch!r} on {len(listed)} date(s) from {listed[0]}; change the "
            f"{resource}, the start_time or the days of one of the two series",
            tuple(date.fromisoformat(d) for d in listed),
            {"other_series": other, resource: value, "branch": branch},
        ))
    return found
