"""Wall-clock time to UTC under the DST policy of SPEC §4.

- A local time that does not exist (spring forward) moves forward by the length
  of the gap: 02:30 becomes 03:30 in New York, 02:15 becomes 02:45 on Lord Howe
  Island. This is what ``zoneinfo`` does with ``fold=0`` (RFC 5545 §3.3.5).
- If that shift lands on another local date (the whole day is skipped, as in
  Pacific/Apia on 2011-12-30) the occurrence is dropped.
- A local time that happens twice (fall back) is the first of the two.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from seriesgen_pipeline.core.errors import InvalidTimezoneError


class LocalTimeKind(enum.Enum):
    """What happened when a wall-clock time was placed on the time line."""

    EXACT = "exact"
    SHIFTED = "shifted"  # did not exist; moved forward by the gap
    AMBIGUOUS = "ambiguous"  # happened twice; the first instant is used
    DROPPED = "dropped"  # the local date itself does not exist


@dataclass(frozen=True)
class PlacedTime:
    """A wall-clock time placed in a zone.

    Attributes:
        kind: see ``LocalTimeKind``.
        utc: the UTC instant (``None`` when dropped).
        local: the aware local time actually used (after a shift).
    """

    kind: LocalTimeKind
    utc: datetime | None
    local: datetime | None


@lru_cache(maxsize=1)
def tz_version() -> str:
    """The version of the time-zone database ``zoneinfo`` reads (e.g. ``2025b``).

    The system database when ``zoneinfo.TZPATH`` has one, else the ``tzdata`` package.
    """
    import zoneinfo
    from importlib import metadata
    from pathlib import Path

    for root in zoneinfo.TZPATH:
        index = Path(root) / "tzdata.zi"
        if index.is_file():
            with index.open() as handle:
                first = handle.readline().strip()
            if first.startswith("# version"):
                return first.split()[-1]
    try:
        return "pkg-" + metadata.version("tzdata")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def load_zone(name: str, *, scope: str | None = None) -> ZoneInfo:
    """Return the IANA zone ``name``.

    Raises:
        InvalidTimezoneError: ``name`` is not a zone (``scope`` says where it was set).
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidTimezoneError(str(name), scope)
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimezoneError(name, scope) from exc


def place_local_time(wall: datetime, zone: ZoneInfo) -> PlacedTime:
    """Place a naive local wall-clock time in ``zone`` following the DST policy.

    Args:
        wall: naive local date and time, as the rule scheduled it.
        zone: the zone the wall time lives in.

    Returns:
        The placed time; ``kind`` tells whether it was exact, shifted forward
        over a gap, the first of two ambiguous instants, or dropped.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    back = utc.astimezone(zone)
    if back.replace(tzinfo=None) != wall:
        if back.date() != wall.date():
            return PlacedTime(LocalTimeKind.DROPPED, None, None)
        return PlacedTime(LocalTimeKind.SHIFTED, utc, back)
    second = wall.replace(tzinfo=zone, fold=1)
    if second.utcoffset() != first.utcoffset():
        return PlacedTime(LocalTimeKind.AMBIGUOUS, utc, back)
    return PlacedTime(LocalTimeKind.EXACT, utc, back)
