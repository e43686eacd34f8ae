"""Domain values as JSON holds them, for every ``as_dict`` of the core.

- A date becomes ``YYYY-MM-DD``, a time of day ``HH:MM``.
- A set of values becomes a sorted list (so that equal sets give equal JSON), a
  tuple or list a list in its own order.
- Anything else (text, numbers, booleans, ``None``, mappings) is kept as it is.

Conversions are looked up by the value's exact type, and a dataclass is read
through its ``__dict__``: ``as_dict`` runs for every series of every run (its
fingerprint, its snapshot), as fast as a hand-written dict.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, time
from typing import Any


def json_value(value: Any) -> Any:
    """``value`` as JSON holds it (see the module docstring)."""
    convert = _CONVERSIONS.get(type(value))
    return value if convert is None else convert(value)


def json_fields(instance: Any, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a dataclass instance (without ``__slots__``), in declaration
    order, as JSON holds them; the fields named in ``skip`` left out."""
    out = dict(instance.__dict__)
    for name, value in out.items():
        convert = _CONVERSIONS.get(type(value))
        if convert is not None:
            out[name] = convert(value)
    for name in skip:
        del out[name]
    return out


def _sorted_list(values: Collection[Any]) -> list[Any]:
    return sorted(json_value(item) for item in values)


def _list(values: Collection[Any]) -> list[Any]:
    return [json_value(item) for item in values]


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


_CONVERSIONS: dict[type, Callable[[Any], Any]] = {
    date: date.isoformat,
    time: _hhmm,
    frozenset: _sorted_list,
    set: _sorted_list,
    tuple: _list,
    list: _list,
}
