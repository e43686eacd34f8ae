"""The class series as the core sees it, and its validation (SPEC §3, §6)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from seriesgen_pipeline.core import conflicts as codes
from seriesgen_pipeline.core.clock import parse_hhmm
from seriesgen_pipeline.core.config import ResolvedConfig
from seriesgen_pipeline.core.errors import SeriesDefinitionError
from seriesgen_pipeline.core.jsonable import json_fields
from seriesgen_pipeline.core.limits import CAPACITY, DURATION_MINUTES
from seriesgen_pipeline.core.recurrence import RecurrenceRule, parse_rule


@dataclass(frozen=True)
class SeriesSpec:
    """The content of one ``class_series`` row that generation depends on."""

    id: int
    key: str
    branch_id: str
    title: str
    instructor: str | None
    room: str | None
    capacity: int | None
    recurrence: str
    start_time: str
    duration_minutes: int | None
    start_date: date
    end_date: date | None
    exdates: tuple[date, ...] = ()
    version: int = 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly content (dates as ISO strings, ``exdates`` sorted)."""
        content = json_fields(self)
        content["exdates"].sort()
        return content

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesSpec:
        """Inverse of ``as_dict``."""
        return cls(
            id=int(data["id"]),
            key=data["key"],
            branch_id=data["branch_id"],
            title=data["title"],
            instructor=data.get("instructor"),
            room=data.get("room"),
            capacity=data.get("capacity"),
            recurrence=data["recurrence"],
            start_time=data["start_time"],
            duration_minutes=data.get("duration_minutes"),
            start_date=date.fromisoformat(data["start_date"]),
            end_date=date.fromisoformat(data["end_date"]) if data.get("end_date") else None,
            exdates=tuple(date.fromisoformat(d) for d in data.get("exdates") or ()),
            version=int(data.get("version") or 1),
        )

    def fingerprint(self) -> str:
        """A hash of everything generation reads from the row (``version`` excluded)."""
        content = self.as_dict()
        content.pop("version")
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ValidSeries:
    """A series checked against its resolved configuration, ready to expand."""

    spec: SeriesSpec
    config: ResolvedConfig
    rule: RecurrenceRule
    duration_minutes: int
    capacity: int


def validate_series(spec: SeriesSpec, config: ResolvedConfig) -> ValidSeries:
    """Check a series row; the errors of SPEC §6 stop this series only.

    Raises:
        SeriesDefinitionError: with a stable ``code`` and the field at fault.
    """
    rule = parse_rule(spec.recurrence)
    try:
        parse_hhmm(spec.start_time)
    except ValueError as exc:
        raise SeriesDefinitionError(
            codes.INVALID_START_TIME, str(exc), field="start_time", scope="series",
            hint="write the start time as HH:MM, e.g. '18:00'",
        ) from exc
    if spec.end_date is not None and spec.end_date < spec.start_date:
        raise SeriesDefinitionError(
            codes.END_BEFORE_START,
            f"end_date {spec.end_date} is before start_date {spec.start_date}",
            field="end_date", scope="series",
            hint="move end_date on or after start_date, or clear it for an open-ended series",
        )
    if spec.duration_minutes is not None:
        duration, scope = spec.duration_minutes, "series"
    else:
        duration, scope = config.default_duration_minutes, config.provenance.get(
            "default_duration_minutes", "base")
    if isinstance(duration, bool) or not isinstance(duration, int) or (
            duration not in DURATION_MINUTES):
        raise SeriesDefinitionError(
            codes.NON_POSITIVE_DURATION,
            f"duration is {duration!r} minutes",
            field="duration_minutes" if scope == "series" else "default_duration_minutes",
            scope=scope,
            hint=f"set a duration of {DURATION_MINUTES} minutes",
        )
    capacity = spec.capacity if spec.capacity is not None else config.default_capacity
    if capacity not in CAPACITY:
        raise SeriesDefinitionError(
            codes.INVALID_CAPACITY, f"capacity is {capacity}", field="capacity", scope="series",
            hint=f"set a capacity of {CAPACITY.low} or more",
        )
    return ValidSeries(spec=spec, config=config, rule=rule, duration_minutes=duration,
                       capacity=capacity)
