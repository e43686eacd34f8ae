"""The data file of SPEC §10, declared once: every field, its type and its check.

Everything else is read from these declarations: the fields each part of the file
may have (``SERIES_FIELDS``...), the required ones (those without a default), the
order problems are listed in (the order below), and the pydantic validators that
check an item (``SERIES_ITEM``...). The markers of ``fields.py`` say how a field is
checked; the checks themselves are in ``values.py``, the ranges and lengths in
``core/limits.py``.

- A null field is an absent one, except ``config``: absent means "leave the
  stored scope alone", present (even empty or null) replaces the stored scope.
- Inside ``config`` a null field inherits; in ``base`` a field may be omitted (the
  stored base keeps it) but not set to null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler, TypeAdapter, ValidationInfo
from pydantic_core import CoreSchema, core_schema

from seriesgen_pipeline.core.config import ConfigValues
from seriesgen_pipeline.core.datafile import values
from seriesgen_pipeline.core.datafile.fields import (
    SCOPE_VALUE,
    UNIQUE_IN_LIST,
    Check,
    DateList,
    Section,
    problem,
)
from seriesgen_pipeline.core.datafile.messages import ACROSS_FIELDS, VALUE
from seriesgen_pipeline.core.limits import (
    BRANCH_ID_LENGTH,
    CAPACITY,
    DURATION_MINUTES,
    GRACE_DAYS,
    KEY_LENGTH,
    TIMEZONE_LENGTH,
)


@dataclass(frozen=True, kw_only=True)
class ConfigSection:
    """``base``, or the ``config`` of a branch or series: the fields of ``ConfigValues``.

    Whole numbers are checked as such here (and against the 32-bit column), their
    ranges by ``core.config.validate_field`` (``SCOPE_VALUE``), in its words.
    """

    horizon_days: Annotated[int | None, Check(values.whole_number), SCOPE_VALUE] = None
    timezone: Annotated[
        str | None, Check(values.text, max_length=TIMEZONE_LENGTH), SCOPE_VALUE] = None
    default_duration_minutes: Annotated[
        int | None, Check(values.whole_number), SCOPE_VALUE] = None
    default_capacity: Annotated[int | None, Check(values.whole_number), SCOPE_VALUE] = None
    open_time: Annotated[str | None, Check(values.time_of_day), SCOPE_VALUE] = None
    close_time: Annotated[str | None, Check(values.time_of_day), SCOPE_VALUE] = None
    closed_dates: Annotated[tuple[date, ...] | None, DateList(), SCOPE_VALUE] = None
    generation_enabled: Annotated[bool | None, Check(values.boolean), SCOPE_VALUE] = None
    cleanup_grace_days: Annotated[
        int | None, Check(values.whole_number, at_most=GRACE_DAYS.high), SCOPE_VALUE] = None


def config_values(section: ConfigSection) -> ConfigValues:
    """The scope a configuration section sets (``None``: not in the section)."""
    return ConfigValues(**vars(section))


class _ScopeConfig:
    """The ``config`` of a branch or series: a ``ConfigSection``, null for an empty one."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        section = handler.generate_schema(Annotated[ConfigSection, Section()])
        return core_schema.no_info_wrap_validator_function(_scope_config, section)


def _scope_config(value: Any, inner: Callable[[Any], ConfigSection]) -> ConfigValues:
    if value is None:
        return ConfigValues()  # present but empty: every field inherits
    if not isinstance(value, Mapping):
        raise problem(VALUE, f"must be a mapping of configuration fields, not "
                             f"{values.show(value)}")
    return config_values(inner(value))


def _not_before_start(end: date | None, info: ValidationInfo) -> date | None:
    start = info.data.get("start_date")  # there when it is valid
    if end is not None and start is not None and end < start:
        raise problem(ACROSS_FIELDS, f"{end} is before start_date {start}")
    return end


@dataclass(frozen=True, kw_only=True)
class BranchEntry:
    """One item of ``branches``.

    Attributes:
        id: the branch key, e.g. ``east``.
        name: the display name.
        config: the branch scope to store, or ``None`` when the item has no
            ``config`` (the stored scope is left alone).
    """

    id: Annotated[
        str, Check(values.identifier, max_length=BRANCH_ID_LENGTH), UNIQUE_IN_LIST]
    name: Annotated[str, Check(values.text)]
    config: Annotated[ConfigValues | None, _ScopeConfig()] = None


@dataclass(frozen=True, kw_only=True)
class SeriesEntry:
    """One item of ``series``; ``key`` is the upsert key and never changes.

    Attributes:
        config: the series scope to store, or ``None`` when the item has no
            ``config`` (the stored scope is left alone).
    """

    key: Annotated[str, Check(values.identifier, max_length=KEY_LENGTH), UNIQUE_IN_LIST]
    branch: Annotated[str, Check(values.identifier, max_length=BRANCH_ID_LENGTH)]
    title: Annotated[str, Check(values.text)]
    instructor: Annotated[str | None, Check(values.text)] = None
    room: Annotated[str | None, Check(values.text)] = None
    capacity: Annotated[int | None, Check(values.whole_number, within=CAPACITY)] = None
    recurrence: Annotated[str, Check(values.recurrence)]
    start_time: Annotated[str, Check(values.time_of_day)]
    duration_minutes: Annotated[
        int | None, Check(values.whole_number, within=DURATION_MINUTES)] = None
    start_date: Annotated[date, Check(values.a_date)]
    end_date: Annotated[
        date | None, Check(values.a_date), AfterValidator(_not_before_start)] = None
    exdates: Annotated[tuple[date, ...], DateList()] = ()
    config: Annotated[ConfigValues | None, _ScopeConfig()] = None


@dataclass(frozen=True)
class DataFile:
    """A parsed, checked data file.

    Attributes:
        base: the base fields the file sets (``None`` fields are not in the file),
            or ``None`` when the file has no ``base`` section.
        branches: in file order; ``branches[i]`` is the i-th item of the file.
        series: in file order; ``series[i]`` is the i-th item of the file.
    """

    base: ConfigValues | None
    branches: tuple[BranchEntry, ...]
    series: tuple[SeriesEntry, ...]


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


TOP_LEVEL_FIELDS = _names(DataFile)
BRANCH_FIELDS = _names(BranchEntry)
SERIES_FIELDS = _names(SeriesEntry)
REQUIRED_SERIES_FIELDS = tuple(f.name for f in fields(SeriesEntry)
                               if f.default is MISSING and f.default_factory is MISSING)

BASE_SECTION = TypeAdapter(Annotated[ConfigSection, Section()])
"""Validates ``base`` (context: ``scope`` ``base``)."""
BRANCH_ITEM = TypeAdapter(Annotated[BranchEntry, Section()])
"""Validates an item of ``branches`` (context: ``scope``, ``item``, ``seen``)."""
SERIES_ITEM = TypeAdapter(Annotated[SeriesEntry, Section()])
"""Validates an item of ``series`` (context: ``scope``, ``item``, ``seen``)."""
