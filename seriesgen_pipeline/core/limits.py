"""The ranges and lengths of a series and its configuration, declared once.

The data file refuses a value outside them (``core.datafile``), the core checks
them again on stored rows (another writer may have written anything:
``core.series``, ``core.config``), and the text columns of the application
database are as wide as the text limits (``persistence/models.py``).

- Whole numbers are stored in 32-bit ``INTEGER`` columns: at most ``INT_MAX``
  whatever their own range.
- ``cleanup_grace_days`` stops at ``GRACE_DAYS.high`` so that ``end_date`` plus
  the grace is still a date (Python's dates end in 9999).
- Every date of a data file lies in ``EARLIEST_DATE..LATEST_DATE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

INT_MAX = 2**31 - 1
"""The largest value of a 32-bit ``INTEGER`` column (PostgreSQL)."""


@dataclass(frozen=True)
class IntRange:
    """The whole numbers ``low..high``; no upper bound when ``high`` is ``None``."""

    low: int
    high: int | None = None

    def __contains__(self, value: int) -> bool:
        return self.low <= value and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        """``1..1440``, or ``>= 0`` without an upper bound (as messages write it)."""
        return f"{self.low}..{self.high}" if self.high is not None else f">= {self.low}"


DURATION_MINUTES = IntRange(1, 1440)
"""``duration_minutes`` of a series and ``default_duration_minutes``."""
HORIZON_DAYS = IntRange(1, 730)
CAPACITY = IntRange(0)
"""``capacity`` of a series and ``default_capacity``."""
GRACE_DAYS = IntRange(0, 36_500)
"""``cleanup_grace_days``."""

KEY_LENGTH = 200
"""A series key (and every column that copies it)."""
BRANCH_ID_LENGTH = 64
TEXT_LENGTH = 200
"""A title, instructor, room or branch name."""
RULE_LENGTH = 500
"""A recurrence rule."""
TIMEZONE_LENGTH = 64
TIME_OF_DAY_LENGTH = len("HH:MM")

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)
"""The span of every date of a data file (``start_date``, ``exdates``, ``closed_dates``...)."""
