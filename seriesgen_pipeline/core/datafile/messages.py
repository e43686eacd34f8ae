"""The problems of a data file in the operator's words.

Every problem names where it is, then what is wrong:

- an item: ``series[2] 'east-yoga'`` (``series[2]`` when its key is not usable);
- a section inside it: ``series[2] 'east-yoga': config``;
- a field: ``field 'start_time': <message>``, ``field 'recurrence' is required``;
- an item of a list field: ``field 'exdates': item 1: <message>``;
- a field name: ``unknown field 'teacher'``, with ``(did you mean 'title'?)`` when a
  declared field is close, or ``field 'title' is given more than once``.

Validation (``fields.py``) raises pydantic errors of the kinds below, each
carrying its message; ``problems_of`` turns them into these lines. Pydantic's
own wording never reaches the operator: an error of another kind is a bug here,
and fails loudly.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from seriesgen_pipeline.core.datafile.values import UnusableKey, show

VALUE = "data_file_value"
"""A field's value is wrong."""
REQUIRED = "data_file_required"
"""A required field is null (pydantic's own ``missing``: it is absent)."""
NAMES = "data_file_names"
"""An unknown or repeated field of a section."""
ACROSS_FIELDS = "data_file_across_fields"
"""A field is wrong given another field of the item."""
ACROSS_ITEMS = "data_file_across_items"
"""A field is wrong given another item of the list."""
OWN_KINDS = frozenset({VALUE, REQUIRED, NAMES, ACROSS_FIELDS, ACROSS_ITEMS})
_MISSING = "missing"  # pydantic's kind for an absent required field
_LATER = {ACROSS_FIELDS: 1, ACROSS_ITEMS: 2}  # after the item's own problems, in this order


def label(section: str, index: int, item: Any, id_field: str) -> str:
    """``series[2] 'east-yoga'``, or ``series[2]`` when the item has no usable key."""
    if isinstance(item, Mapping):
        ident = item.get(id_field)
        if isinstance(ident, str) and ident.strip():
            return f"{section}[{index}] {show(ident)}"
    return f"{section}[{index}]"


def field_name_problems(data: Mapping[Any, Any], allowed: tuple[str, ...]) -> list[str]:
    """The unknown fields of a mapping (in its order), then its repeated ones."""
    found = []
    for name in data:
        if name not in allowed:
            close = (difflib.get_close_matches(name, allowed, n=1)
                     if isinstance(name, str) else [])
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            found.append(f"unknown field {_field_name(name)}{hint}")
    for name in getattr(data, "repeated", ()):
        found.append(f"field {_field_name(name)} is given more than once")
    return found


def _field_name(name: Any) -> str:
    if isinstance(name, UnusableKey):
        return f"{name.kind} used as a field name"
    return show(name)


def problems_of(where: str, error: ValidationError) -> list[str]:
    """The problems of one item (or section) ``where``: in the order validation found
    them (its fields' order), those across fields, then across items, last."""
    found = error.errors(include_url=False, include_context=False, include_input=False)
    found.sort(key=lambda details: _LATER.get(details["type"], 0))
    return [f"{where}: {_problem(details)}" for details in found]


def _problem(details: ErrorDetails) -> str:
    """One problem: the sections and the field of its location, then its message."""
    kind, location, message = details["type"], details["loc"], details["msg"]
    if kind not in OWN_KINDS and kind != _MISSING:
        raise TypeError(f"the data file's schema let a pydantic error through: {details}")
    if kind == NAMES:  # located at its section
        return ": ".join([*map(str, location), message])
    at = max(index for index, part in enumerate(location) if isinstance(part, str))
    sections = "".join(f"{part}: " for part in location[:at])
    field = f"field '{location[at]}'"
    if kind in (REQUIRED, _MISSING):
        return f"{sections}{field} is required"
    items = "".join(f"item {part}: " for part in location[at + 1:])
    return f"{sections}{field}: {items}{message}"
