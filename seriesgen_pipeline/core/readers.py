"""Reading stored values that another writer may have corrupted (SPEC §3, §6).

The booking app writes the same tables, by hand or by raw SQL, so a row may hold
a value of the wrong type or shape: a date that does not exist (``2026-02-30``),
a JSON column that is not a list of dates, text in an integer column. Each
reader takes a value as the database driver returned it (already typed, or raw
text when the column was read uncoerced) and returns the typed value, or raises
``UnreadableValue`` with a short reason that completes "<column> '<value>' …".

- A value the driver already typed (a ``date``, an ``int``) is returned as is.
- ``None`` is returned as ``None`` where the column is nullable; the caller decides.
- Nothing here guesses: ``'2026-3-1'`` is not a date, ``'12'`` is an integer only
  where the column is an integer column (SQLite stores text in any column).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any


class UnreadableValue(ValueError):
    """A stored value cannot be read; ``reason`` completes "<column> '<value>' …"."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def read_date(value: Any) -> date | None:
    """A ``DATE`` column: a ``date`` or ISO ``YYYY-MM-DD`` text."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise UnreadableValue("is not a date (YYYY-MM-DD)")


def read_date_list(value: Any) -> list[date] | None:
    """A JSON list of ISO dates (``exdates``, ``closed_dates``)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise UnreadableValue("is not a JSON list of dates") from None
        if value is None:  # a JSON null: the column's way of storing "unset"
            return None
    if not isinstance(value, list):
        raise UnreadableValue("is not a JSON list of dates")
    out = []
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            out.append(item)  # a typed row (the column's own conversion ran)
            continue
        if not isinstance(item, str):
            raise UnreadableValue("is not a JSON list of dates")
        try:
            out.append(date.fromisoformat(item))
        except ValueError:
            raise UnreadableValue(f"is not a JSON list of dates ({item!r:.40})") from None
    return out


def read_int(value: Any) -> int | None:
    """An ``INTEGER`` column (SQLite may hand back text or a float)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise UnreadableValue("is not an integer")


def read_bool(value: Any) -> bool | None:
    """A ``BOOLEAN`` column (SQLite stores 0 or 1)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise UnreadableValue("is not true or false")


def read_text(value: Any) -> str | None:
    """A text column: text without NUL (another writer may store bytes or numbers)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnreadableValue("is not text")
    if "\x00" in value:
        raise UnreadableValue("contains a NUL character")
    return value


def read_instant(value: Any) -> datetime | None:
    """A UTC instant column: an aware or naive-UTC ``datetime``, or ISO text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UnreadableValue("is not an instant (ISO-8601)") from None
    if not isinstance(value, datetime):
        raise UnreadableValue("is not an instant (ISO-8601)")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
