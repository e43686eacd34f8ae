"""The markers a field of the schema is declared with: the project's checks run by pydantic.

``schema.py`` declares each field once, as ``Annotated[type, marker...]``; pydantic
validates every field of an item and collects every problem. A problem is a
``PydanticCustomError`` of one of the kinds below whose message is the project's
own; ``messages.py`` puts the item and the field in front of it.

- ``Check(function, **options)``: ``function`` (``values.py``) turns the value into
  the field's value or refuses it. Text is checked for control characters first,
  whatever the field. A null is an absent value: ``None`` when the field's type
  admits it, else the field is required.
- ``DateList()``: a list of dates; every bad item is reported with its index; the
  dates are de-duplicated and sorted; a null is the empty list.
- ``SCOPE_VALUE``: a configuration value; a null inherits (refused in the base
  section, which has nothing to inherit from), the core checks the range.
- ``Section()``: a dataclass read from a mapping: its unknown and repeated fields
  are reported before the problems of its fields (in declaration order).
- ``UNIQUE_IN_LIST``: the value is used by one item of its list only (a problem
  across items, which ``messages.py`` lists after the item's own).

Validation context (``validate_python(..., context=...)``): ``scope`` (``base``,
``branch`` or ``series``), and for a list item ``item`` (``series[3]``) and
``seen`` (value -> item of the values ``UNIQUE_IN_LIST`` has met in the list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date
from functools import partial
from typing import Any, get_args

from pydantic import AfterValidator, GetCoreSchemaHandler, ValidationError, ValidationInfo
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema
from pydantic_core import ErrorDetails as ValidationErrorDetails

from seriesgen_pipeline.core.datafile import values
from seriesgen_pipeline.core.datafile.messages import (
    ACROSS_ITEMS,
    NAMES,
    OWN_KINDS,
    REQUIRED,
    VALUE,
    field_name_problems,
)

_NULL_IS_REQUIRED = object()


def problem(kind: str, message: str) -> PydanticCustomError:
    """A problem of ``kind`` whose message is ``message`` word for word."""
    return PydanticCustomError(kind, message)  # no context: nothing in it is formatted


def _refusing(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check`` with its ``values.Invalid`` turned into a problem."""
    def validate(value: Any) -> Any:
        try:
            return check(value)
        except values.Invalid as exc:
            raise problem(VALUE, str(exc)) from None
    return validate


def _checked(check: Callable[[Any], Any], null: Any) -> Callable[[Any], Any]:
    """``check`` preceded by the null and control-character rules (module docstring)."""
    def validate(value: Any) -> Any:
        if value is None:
            if null is _NULL_IS_REQUIRED:
                raise problem(REQUIRED, "is required")
            return null
        if isinstance(value, str):
            control = values.control_character(value)
            if control is not None:
                raise problem(VALUE, control)
        try:
            return check(value)
        except values.Invalid as exc:
            raise problem(VALUE, str(exc)) from None
    return validate


class Check:
    """A field checked by a function of ``values.py`` (see the module docstring)."""

    def __init__(self, check: Callable[..., Any], **options: Any) -> None:
        self.check = partial(check, **options) if options else check

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        null = None if type(None) in get_args(source) else _NULL_IS_REQUIRED
        return core_schema.no_info_plain_validator_function(_checked(self.check, null))


class DateList:
    """A list of dates (``exdates``, ``closed_dates``): see the module docstring."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        items = core_schema.list_schema(
            core_schema.no_info_plain_validator_function(_refusing(values.a_date)))
        return core_schema.no_info_before_validator_function(
            _checked(values.a_list_of_dates, null=[]),
            core_schema.no_info_after_validator_function(_sorted_unique, items))


def _sorted_unique(dates: list[date]) -> tuple[date, ...]:
    return tuple(sorted(set(dates)))


class _ScopeValue:
    """A configuration value: see ``SCOPE_VALUE`` in the module docstring."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_wrap_validator_function(_scope_value, handler(source))


def _context(info: ValidationInfo) -> dict[str, Any]:
    if not isinstance(info.context, dict):
        raise TypeError("the data file is validated with a context (see the module docstring)")
    return info.context


def _scope_value(value: Any, inner: Callable[[Any], Any], info: ValidationInfo) -> Any:
    scope = _context(info)["scope"]
    if value is None:
        if scope == "base":
            raise problem(VALUE, "must not be null in the base section (the base has nothing "
                                 "to inherit from; omit the field to keep the stored value)")
        return None
    checked = inner(value)
    if info.field_name is None:
        raise TypeError("SCOPE_VALUE marks a field of a section")
    try:
        values.config_range(info.field_name, checked, scope)
    except values.Invalid as exc:
        raise problem(VALUE, str(exc)) from None
    return checked


SCOPE_VALUE = _ScopeValue()


def _unique_in_list(value: Any, info: ValidationInfo) -> Any:
    context = _context(info)
    seen: dict[Any, str] = context["seen"]
    if value in seen:
        raise problem(ACROSS_ITEMS, f"{value!r} is already used by {seen[value]}")
    seen[value] = context["item"]
    return value


UNIQUE_IN_LIST = AfterValidator(_unique_in_list)
"""The value is used by one item of its list only (a branch id, a series key)."""


class Section:
    """A dataclass read from a mapping of fields: see the module docstring."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        names = tuple(f.name for f in fields(source))
        return core_schema.no_info_wrap_validator_function(
            partial(_section, names, frozenset(names)), handler(source))


def _section(names: tuple[str, ...], known: frozenset[str], data: Mapping[Any, Any],
             inner: Callable[[Any], Any]) -> Any:
    """Validate the known fields of ``data`` after reporting its unknown and repeated ones."""
    if known.issuperset(data) and not getattr(data, "repeated", None):
        return inner(data)  # the usual case, kept fast for large files
    found = field_name_problems(data, names)  # at least one: unknown or repeated
    try:
        inner({name: value for name, value in data.items() if name in known})
    except ValidationError as exc:
        raise _names_first(found, exc.errors(include_url=False)) from None
    raise _names_first(found, [])


def _names_first(found: list[str], errors: list[ValidationErrorDetails]) -> ValidationError:
    """One error listing the section's field-name problems, then ``errors``."""
    details = [InitErrorDetails(type=problem(NAMES, message), loc=(), input=None)
               for message in found]
    for error in errors:
        kind = error["type"]
        if kind in OWN_KINDS:
            details.append(InitErrorDetails(type=problem(kind, error["msg"]), loc=error["loc"],
                                            input=error["input"]))
        else:  # pydantic's own (``missing``), kept as it is
            kept = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
            if "ctx" in error:
                kept["ctx"] = error["ctx"]
            details.append(kept)
    return ValidationError.from_exception_data("data file", details)
