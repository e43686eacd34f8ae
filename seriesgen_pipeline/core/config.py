"""Scheduling configuration: three scopes resolved field by field (FR-001).

Every field is resolved on its own: the most specific scope that sets it
(non-null) wins, series > branch > base. ``closed_dates`` is the exception: the
union of the three scopes. The result records where each field came from and a
stable hash of its content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time
from types import MappingProxyType
from typing import Any

from seriesgen_pipeline.core import conflicts as codes
from seriesgen_pipeline.core.clock import parse_hhmm
from seriesgen_pipeline.core.errors import (
    IncompleteBaseConfigError,
    SeriesDefinitionError,
    UnreadableValueError,
)
from seriesgen_pipeline.core.jsonable import json_fields
from seriesgen_pipeline.core.limits import (
    CAPACITY,
    DURATION_MINUTES,
    GRACE_DAYS,
    HORIZON_DAYS,
    IntRange,
)
from seriesgen_pipeline.core.timezones import load_zone


@dataclass(frozen=True)
class ConfigValues:
    """The fields one scope sets; ``None`` means "inherit".

    ``unreadable`` holds the fields whose stored value could not be read: such a
    field counts as set by this scope, so exactly the series that would inherit it
    from here fail with its error, and the others are not affected.
    """

    horizon_days: int | None = None
    timezone: str | None = None
    default_duration_minutes: int | None = None
    default_capacity: int | None = None
    open_time: str | None = None
    close_time: str | None = None
    closed_dates: tuple[date, ...] | None = None
    generation_enabled: bool | None = None
    cleanup_grace_days: int | None = None
    unreadable: Mapping[str, UnreadableValueError] = field(
        default_factory=lambda: MappingProxyType({}), compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (dates as ISO strings)."""
        return json_fields(self, skip=("unreadable",))


CONFIG_FIELDS = tuple(f.name for f in fields(ConfigValues) if f.name != "unreadable")
"""The configuration fields, in the order the data file and the messages list them."""


@dataclass(frozen=True)
class ResolvedConfig:
    """A complete configuration with the scope each field came from."""

    horizon_days: int
    timezone: str
    default_duration_minutes: int
    default_capacity: int
    open_time: time
    close_time: time
    closed_dates: frozenset[date]
    generation_enabled: bool
    cleanup_grace_days: int
    provenance: dict[str, str] = field(compare=False)
    config_hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly values (no provenance, no hash)."""
        return json_fields(self, skip=("provenance", "config_hash"))


_RANGES: dict[str, IntRange] = {
    "horizon_days": HORIZON_DAYS,
    "default_duration_minutes": DURATION_MINUTES,
    "default_capacity": CAPACITY,
    "cleanup_grace_days": GRACE_DAYS,
}


def validate_field(name: str, value: Any, scope: str) -> None:
    """Check one configuration value; raise a ``SeriesDefinitionError`` naming field and scope."""
    if value is None:
        return
    if name in _RANGES:
        allowed = _RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise SeriesDefinitionError(
                codes.INVALID_CONFIG, f"{name} must be an integer, not {value!r}",
                field=name, scope=scope,
            )
        if value not in allowed:
            code = (codes.NON_POSITIVE_DURATION
                    if name == "default_duration_minutes" and value < allowed.low
                    else codes.INVALID_CONFIG)
            raise SeriesDefinitionError(
                code, f"{name} is {value}, must be {allowed}", field=name, scope=scope,
            )
    elif name == "timezone":
        load_zone(value, scope=scope)
    elif name in ("open_time", "close_time"):
        try:
            parse_hhmm(value)
        except ValueError as exc:
            raise SeriesDefinitionError(
                codes.INVALID_CONFIG, str(exc), field=name, scope=scope
            ) from exc
    elif name == "generation_enabled" and not isinstance(value, bool):
        raise SeriesDefinitionError(
            codes.INVALID_CONFIG, f"generation_enabled must be true or false, not {value!r}",
            field=name, scope=scope,
        )


def resolve_config(
    base: ConfigValues,
    branch: ConfigValues | None = None,
    series: ConfigValues | None = None,
) -> ResolvedConfig:
    """Resolve the configuration of one series, field by field.

    Args:
        base: the base scope; it must set every field.
        branch: the series' branch scope, if any.
        series: the series scope, if any.

    Returns:
        The resolved configuration, its provenance (field -> scope; for
        ``closed_dates`` the ``+``-joined scopes that contributed, or ``base``
        when none lists a date) and its ``config_hash``.

    Raises:
        IncompleteBaseConfigError: the base leaves a field unset.
        SeriesDefinitionError: a value is out of range, naming field and scope.
    """
    missing = [name for name in CONFIG_FIELDS
               if getattr(base, name) is None and name not in base.unreadable]
    if missing:
        raise IncompleteBaseConfigError(missing)
    layers = [("series", series), ("branch", branch), ("base", base)]
    for _, layer in layers:
        if layer is not None and "closed_dates" in layer.unreadable:
            raise layer.unreadable["closed_dates"]  # a union: every scope's list is read
    values: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for name in CONFIG_FIELDS:
        if name == "closed_dates":
            continue
        for scope, layer in layers:
            if layer is not None and name in layer.unreadable:
                raise layer.unreadable[name]
            value = getattr(layer, name) if layer is not None else None
            if value is not None:
                validate_field(name, value, scope)
                values[name] = value
                provenance[name] = scope
                break
    closed: set[date] = set()
    contributors = []
    for scope, layer in reversed(layers):
        dates = layer.closed_dates if layer is not None else None
        if dates:
            closed.update(dates)
            contributors.append(scope)
    provenance["closed_dates"] = "+".join(contributors) or "base"
    resolved = ResolvedConfig(
        horizon_days=values["horizon_days"],
        timezone=values["timezone"],
        default_duration_minutes=values["default_duration_minutes"],
        default_capacity=values["default_capacity"],
        open_time=parse_hhmm(values["open_time"]),
        close_time=parse_hhmm(values["close_time"]),
        closed_dates=frozenset(closed),
        generation_enabled=values["generation_enabled"],
        cleanup_grace_days=values["cleanup_grace_days"],
        provenance=provenance,
    )
    return _with_hash(resolved)


class BranchResolver:
    """``resolve_config`` for the many series of one read of the scopes.

    A series without a scope of its own has its branch's configuration: that one is
    resolved once per branch and shared (its provenance included, which no caller
    changes). A series with its own scope is resolved on its own. Branches are told
    apart by identity: the scopes of one read.
    """

    def __init__(self, base: ConfigValues) -> None:
        self._base = base
        self._by_branch: dict[int, tuple[ConfigValues | None, ResolvedConfig]] = {}

    def __call__(self, branch: ConfigValues | None, series: ConfigValues | None = None
                 ) -> ResolvedConfig:
        """The configuration of a series of ``branch`` with scope ``series``; raises
        as ``resolve_config`` does (an error is not kept: it is raised again)."""
        if series is not None:
            return resolve_config(self._base, branch, series)
        kept = self._by_branch.get(id(branch))
        if kept is not None and kept[0] is branch:
            return kept[1]
        resolved = resolve_config(self._base, branch)
        self._by_branch[id(branch)] = (branch, resolved)
        return resolved


def _with_hash(resolved: ResolvedConfig) -> ResolvedConfig:
    canonical = json.dumps(resolved.as_dict(), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return ResolvedConfig(**{**resolved.__dict__, "config_hash": digest})

