"""Parsing of wall-clock times and instants shared by the core."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> time:
    """Parse ``HH:MM`` (24-hour, zero-padded) into a naive local time.

    Raises:
        ValueError: the text is not a valid ``HH:MM``.
    """
    match = _HHMM.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a time of day in HH:MM (00:00..23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive value is read as UTC. Returns aware UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """Format an aware instant as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
