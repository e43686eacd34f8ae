"""Conflicts: what stops a series (ERROR) and what is generated around (WARN).

Every conflict has a stable ``code``; the codes are listed in ``docs/`` with
what to change. ``dedupe_key`` identifies "the same conflict on the same
configuration", so a nightly run does not notify it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

ERROR = "ERROR"
WARN = "WARN"

# Errors (the series fails alone).
UNKNOWN_BRANCH = "UNKNOWN_BRANCH"
INVALID_TIMEZONE = "INVALID_TIMEZONE"
INVALID_RRULE = "INVALID_RRULE"
END_BEFORE_START = "END_BEFORE_START"
NON_POSITIVE_DURATION = "NON_POSITIVE_DURATION"
INCOMPLETE_BASE_CONFIG = "INCOMPLETE_BASE_CONFIG"
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
        """JSON-friendly form."""
        return {
            "series_key": self.series_key,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "dates": [d.isoformat() for d in self.dates],
            "details": self.details,
        }
