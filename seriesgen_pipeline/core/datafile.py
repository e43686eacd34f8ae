"""The data file of SPEC §10: base configuration, branches and series, in YAML or JSON.

``parse_data_file`` checks the whole file and reports every problem at once, each
naming the item and the field (``series[2] 'east-yoga': field 'start_time': ...``),
so an operator fixes a file in one pass. Nothing here touches the database: what
only the database can answer (is a branch known, does a base configuration exist
yet) is checked by ``check_branches`` and the loader, inside the load transaction.

Reading rules, chosen so that the file means what it looks like:

- JSON is detected by a ``.json`` suffix of ``source`` or, without a ``.yaml`` /
  ``.yml`` suffix, by a first character ``{`` or ``[``; its syntax errors are
  reported as JSON errors with line and column.
- YAML is read with the safe loader, but an unquoted ``18:00`` stays the text
  ``"18:00"`` (YAML 1.1 would read it as the base-60 number 1080), and an
  unquoted impossible date such as ``2026-02-30`` stays text, so that both are
  reported as a bad time or date instead of a puzzling number or a crash.
- A field given twice in one mapping is an error, not "the last one wins".
- Dates are YAML dates or ``YYYY-MM-DD`` strings; a date with a time of day is
  refused. Date lists are de-duplicated and sorted.
- ``config`` of a branch or series: absent means "leave the stored scope alone";
  present (even empty or ``null``) replaces the stored scope, a ``null`` field
  meaning "inherit". In ``base`` a field may be omitted (the stored base keeps
  it) but not set to ``null``: the base has nothing to inherit from.

Limits, so that a hostile file is refused in well under a second and in bounded
memory instead of exhausting the machine (``DataFileLimits``):

- A file larger than ``max_bytes`` (20 MB) is refused; the loader never reads more.
- Lists and mappings nested deeper than ``max_depth`` (64) are refused: a data
  file needs five levels. YAML is checked on its event stream before any node
  is built, JSON after decoding (and a decoder out of stack is the same error).
- YAML aliases (``*name``) may repeat at most ``max_alias_nodes`` (10,000) nodes
  in all, counted as expanded, anywhere (mapping keys included); an alias inside
  the node it names is refused. So an alias bomb is refused before it expands.
- An integer literal too long for Python to convert, or outside its field's
  range, is reported as out of range (``cleanup_grace_days`` at most 36,500, so
  that ``end_date`` plus the grace is still a date); dates must lie in
  1900-01-01..2200-12-31.
- Text fields (and every other field given as text) must not contain control
  characters (Unicode category Cc: U+0000..U+001F, U+007F..U+009F; tab and
  newline included) or unpaired surrogates: SQLite would store them, PostgreSQL
  refuses NUL, and none of them belongs in a title, key, room or time.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import PurePath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from seriesgen_pipeline.core.clock import parse_hhmm
from seriesgen_pipeline.core.config import (
    CONFIG_FIELDS,
    ConfigValues,
    validate_field,
)
from seriesgen_pipeline.core.errors import DataFileError, SeriesDefinitionError
from seriesgen_pipeline.core.limits import GRACE_DAYS
from seriesgen_pipeline.core.recurrence import parse_rule

try:  # libyaml's parser is an order of magnitude faster on large files
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

TOP_LEVEL_FIELDS = ("base", "branches", "series")
BRANCH_FIELDS = ("id", "name", "config")
SERIES_FIELDS = (
    "key", "branch", "title", "instructor", "room", "capacity", "recurrence", "start_time",
    "duration_minutes", "start_date", "end_date", "exdates", "config",
)
REQUIRED_SERIES_FIELDS = ("key", "branch", "title", "recurrence", "start_time", "start_date")
# Column widths of the application database (persistence/models.py).
_KEY_LENGTH = 200
_BRANCH_ID_LENGTH = 64
_TEXT_LENGTH = 200
_RULE_LENGTH = 500
_INT_MAX = 2**31 - 1  # a 32-bit INTEGER column on PostgreSQL

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)
"""The span of every date of a data file (``start_date``, ``exdates``, ``closed_dates``...)."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Unicode category Cc (C0, DEL, C1) and lone surrogates, which no database column can hold.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FILE_DEPTH = 5  # top level > series list > series > config > closed_dates
_SHOWN_CHARACTERS = 60  # longer text is cut in messages


@dataclass(frozen=True)
class DataFileLimits:
    """What a data file may cost to read; beyond these it is refused whole.

    Attributes:
        max_bytes: the size of the file (UTF-8 bytes).
        max_depth: how deeply lists and mappings may nest (the top level is 1).
        max_alias_nodes: how many nodes YAML aliases may repeat in all, each alias
            counted as the number of nodes it stands for.
    """

    max_bytes: int = 20_000_000
    max_depth: int = 64
    max_alias_nodes: int = 10_000


@dataclass(frozen=True)
class BranchEntry:
    """One item of ``branches``.

    Attributes:
        id: the branch key, e.g. ``east``.
        name: the display name.
        config: the branch scope to store, or ``None`` when the item has no
            ``config`` (the stored scope is left alone).
    """

    id: str
    name: str
    config: ConfigValues | None = None


@dataclass(frozen=True)
class SeriesEntry:
    """One item of ``series``; ``key`` is the upsert key and never changes.

    Attributes:
        config: the series scope to store, or ``None`` when the item has no
            ``config`` (the stored scope is left alone).
    """

    key: str
    branch: str
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
    config: ConfigValues | None = None


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


# ---------------------------------------------------------------- reading

class _Mapping(dict[Any, Any]):
    """A mapping that remembers the keys given more than once."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: list[Any] = []

    def put(self, key: Any, value: Any) -> None:
        if key in self:
            self.repeated.append(key)
        self[key] = value


@dataclass(frozen=True, eq=False)
class _UnusableKey:
    """A list or mapping used as a mapping key: reported, never turned into text."""

    kind: str


@dataclass(frozen=True)
class _HugeNumber:
    """An integer literal longer than Python converts (``sys.get_int_max_str_digits``)."""

    digits: int


class _Loader(_SafeLoader):
    """The safe loader with the reading rules of the module docstring."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    data = _Mapping()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:  # its text could be exponentially long (aliases): name its kind
            key = _UnusableKey(_show(key))
        data.put(key, loader.construct_object(value_node, deep=True))
    return data


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and ":" in text:
        return text  # base-60 in YAML 1.1: "18:00" is a time of day here
    try:
        return SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:
        digits = str(text).lstrip("+-").replace("_", "")
        return _HugeNumber(len(digits)) if digits.isdigit() else text


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)  # e.g. 2026-02-30: reported as a bad date


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _json_object(pairs: list[tuple[str, Any]]) -> _Mapping:
    data = _Mapping()
    for key, value in pairs:
        data.put(key, value)
    return data


def _json_int(text: str) -> int | _HugeNumber:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return _HugeNumber(len(text.lstrip("-")))


def _format_from_suffix(source: str) -> bool | None:
    """True for JSON, False for YAML, None when only the content can tell."""
    suffix = PurePath(source).suffix.lower()
    if suffix == ".json":
        return True
    if suffix in (".yaml", ".yml"):
        return False
    return None


def file_too_large(source: str, limits: DataFileLimits,
                   size: int | None = None) -> DataFileError:
    """The error of a file over ``limits.max_bytes``; ``size`` when it is known."""
    what = f"is {size:,} bytes, larger than" if size is not None else "is larger than"
    return DataFileError([
        f"{source}: the file {what} the limit of {limits.max_bytes:,} bytes "
        "(SERIESGEN_MAX_DATA_FILE_BYTES); split it into several files, or raise the limit"
    ])


def _too_deep(source: str, limits: DataFileLimits, where: str = "") -> DataFileError:
    return DataFileError([
        f"{source}: lists and mappings are nested more than {limits.max_depth} levels "
        f"deep{where}; a data file needs {_FILE_DEPTH}"
    ])


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}"


def _check_yaml_shape(text: str, source: str, limits: DataFileLimits) -> None:
    """Refuse deep nesting and alias expansion on the event stream, before any node exists.

    Each alias counts as the number of nodes its anchor stands for (itself counted
    the same way), so the cost of what the constructor will share is bounded.
    """
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for, once its node is closed
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes seen before it)
    nodes = repeated = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append((event.anchor, nodes))
            nodes += 1
            if len(open_nodes) > limits.max_depth:
                raise _too_deep(source, limits, _at(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = nodes - before
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(anchor == event.anchor for anchor, _ in open_nodes):
                    raise DataFileError([
                        f"{source}: YAML alias *{event.anchor}{_at(event.start_mark)} is "
                        "inside the node it names (a recursive structure)"])
                continue  # an undefined alias: the composer reports it
            nodes += sizes[event.anchor]
            repeated += sizes[event.anchor]
            if repeated > limits.max_alias_nodes:
                raise DataFileError([
                    f"{source}: YAML aliases repeat more than {limits.max_alias_nodes:,} "
                    f"values (alias *{event.anchor}{_at(event.start_mark)}); write the "
                    "repeated parts out, or share configuration through base or a "
                    "branch's config"])


def _check_json_depth(document: Any, text: str, source: str, limits: DataFileLimits) -> None:
    """Refuse a decoded JSON document nested deeper than the limit."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limits.max_depth:
            raise _too_deep(source, limits, _json_depth_position(text, limits.max_depth))
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _json_depth_position(text: str, limit: int) -> str:
    """`` at line L, column C`` of the first bracket that opens level ``limit + 1``."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return f" at line {line}, column {column}"
        elif token in "]}":
            depth -= 1
    return ""


def _read(text: str, source: str, limits: DataFileLimits) -> Any:
    """The document as Python values; raises ``DataFileError`` on a syntax error or a limit."""
    hint = _format_from_suffix(source)
    starts_like_json = text.lstrip()[:1] in ("{", "[")
    if hint is True or (hint is None and starts_like_json):
        try:
            document = json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)
        except RecursionError as exc:  # nested beyond the decoder's stack
            raise _too_deep(source, limits,
                            _json_depth_position(text, limits.max_depth)) from exc
        except json.JSONDecodeError as exc:
            if hint is None:
                try:  # a YAML flow mapping also starts with "{"
                    return _read_yaml(text, source, limits)
                except DataFileError:
                    pass
            raise DataFileError([
                f"{source}: JSON syntax error at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}"
            ]) from exc
        _check_json_depth(document, text, source, limits)
        return document
    return _read_yaml(text, source, limits)


def _read_yaml(text: str, source: str, limits: DataFileLimits) -> Any:
    try:
        _check_yaml_shape(text, source, limits)
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):
            # libyaml's scanner looks ahead and stops at its own limit (1000) first
            raise _too_deep(source, limits) from exc
        raise DataFileError([f"{source}: YAML syntax error{_yaml_where(exc)}"]) from exc


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else str(problem)
    if mark is not None:
        return f" at line {mark.line + 1}, column {mark.column + 1}: {detail}"
    return f": {detail}"


# ---------------------------------------------------------------- value checks

class _Invalid(Exception):
    """A value is wrong; the message says why (the caller adds item and field)."""


_BAD = object()  # marks a value already reported as a problem


def _show(value: Any) -> str:
    """A value as the operator wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARACTERS:
            return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, _HugeNumber):
        return f"a number of {value.digits:,} digits"
    if isinstance(value, int) and abs(value) >= 10**18:  # str() of a huge int may refuse
        return "a number of more than 18 digits"
    if isinstance(value, date | int | float):
        return str(value)
    if isinstance(value, _UnusableKey):
        return value.kind
    return f"a {type(value).__name__}"


def _control_character(text: str) -> str | None:
    """What is wrong with the first control character or lone surrogate of ``text``."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    code = ord(found.group())
    what = "an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"contains {what} (U+{code:04X})"


def _text(value: Any, *, max_length: int = _TEXT_LENGTH) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be text, not {_show(value)} (put it in quotes)")
    if not value.strip():
        raise _Invalid("must not be empty")
    if len(value) > max_length:
        raise _Invalid(f"is {len(value)} characters long, at most {max_length} are allowed")
    return value


def _identifier(value: Any, *, max_length: int) -> str:
    """A key or id: text without surrounding spaces or control characters."""
    text = _text(value, max_length=max_length)
    if text != text.strip():
        raise _Invalid(f"{text!r} has leading or trailing spaces")
    if _CONTROL.search(text) or "..." in text:
        raise _Invalid(f"{text!r} must not contain control characters or '...'")
    return text


def _integer(value: Any, *, low: int | None = None, high: int | None = None) -> int:
    top = high if high is not None else _INT_MAX
    bounds = f"{low}..{top}" if low is not None else f"at most {top}"
    if isinstance(value, _HugeNumber):
        raise _Invalid(f"{_show(value)} is out of range, must be {bounds}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be a whole number, not {_show(value)}")
    if (low is not None and value < low) or value > top:
        raise _Invalid(f"{_show(value)} is out of range, must be {bounds}")
    return value


def _hhmm(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a time of day in quotes, e.g. \"18:00\", not {_show(value)}")
    if len(value) > _SHOWN_CHARACTERS:  # parse_hhmm's message would quote all of it
        raise _Invalid(f"{_show(value)} is not a time of day in HH:MM (00:00..23:59)")
    try:
        parse_hhmm(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from exc
    return value


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise _Invalid(f"{value} has a time of day; give a date as YYYY-MM-DD")
    if isinstance(value, str):
        try:
            if not _ISO_DATE.match(value):
                raise ValueError(value)
            value = date.fromisoformat(value)
        except ValueError:
            raise _Invalid(f"{_show(value)} is not a valid date (YYYY-MM-DD)") from None
    if not isinstance(value, date):
        raise _Invalid(f"must be a date (YYYY-MM-DD), not {_show(value)}")
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _Invalid(f"{value} is out of range, must be {EARLIEST_DATE}..{LATEST_DATE}")
    return value


def _dates(value: Any) -> tuple[date, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Invalid(f"must be a list of dates (YYYY-MM-DD), not {_show(value)}")
    out: set[date] = set()
    for index, item in enumerate(value):
        try:
            out.add(_date(item))
        except _Invalid as exc:
            raise _Invalid(f"item {index}: {exc}") from exc
    return tuple(sorted(out))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, not {_show(value)}")
    return value


def _recurrence(value: Any) -> str:
    text = _text(value, max_length=_RULE_LENGTH)
    try:
        parse_rule(text)
    except SeriesDefinitionError as exc:
        raise _Invalid(exc.reason) from exc
    return text


def _config_value(name: str, value: Any, *, scope: str) -> Any:
    """One configuration field: its type here, its range by ``validate_field``."""
    if name in ("horizon_days", "default_duration_minutes", "default_capacity",
                "cleanup_grace_days"):
        _integer(value, high=GRACE_DAYS.high if name == "cleanup_grace_days" else None)
    elif name == "timezone":
        _text(value, max_length=64)
    elif name in ("open_time", "close_time"):
        _hhmm(value)
    elif name == "closed_dates":
        return _dates(value)
    elif name == "generation_enabled":
        _boolean(value)
    try:
        validate_field(name, value, scope)
    except SeriesDefinitionError as exc:
        raise _Invalid(f"{exc.reason}; {exc.hint}" if exc.hint else exc.reason) from exc
    return value


# ---------------------------------------------------------------- structure checks

class _Checker:
    """Collects the problems of one file while its parts are checked."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def value(self, where: str, name: str, raw: Any, check: Callable[[Any], Any]) -> Any:
        """``check(raw)``, or ``_BAD`` after reporting why it failed.

        Text is first checked for control characters, whatever the field, so that
        the message is the same for a title, a time of day or a time zone.
        """
        control = _control_character(raw) if isinstance(raw, str) else None
        if control is not None:
            self.add(where, f"field '{name}': {control}")
            return _BAD
        try:
            return check(raw)
        except _Invalid as exc:
            self.add(where, f"field '{name}': {exc}")
            return _BAD

    def fields(self, where: str, data: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
        """Report unknown and repeated fields of a mapping."""
        for name in data:
            if name not in allowed:
                close = (difflib.get_close_matches(name, allowed, n=1)
                         if isinstance(name, str) else [])
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.add(where, f"unknown field {_field_name(name)}{hint}")
        for name in getattr(data, "repeated", ()):
            self.add(where, f"field {_field_name(name)} is given more than once")

    def config(self, where: str, data: Mapping[Any, Any], *, scope: str) -> ConfigValues:
        """Check a configuration mapping (base, branch or series scope)."""
        self.fields(where, data, CONFIG_FIELDS)
        values: dict[str, Any] = {}
        for name in CONFIG_FIELDS:
            if name not in data:
                continue
            raw = data[name]
            if raw is None:
                if scope == "base":
                    self.add(where, f"field '{name}': must not be null in the base section "
                                    "(the base has nothing to inherit from; omit the field "
                                    "to keep the stored value)")
                continue
            value = self.value(where, name, raw, partial(_config_value, name, scope=scope))
            if value is not _BAD:
                values[name] = value
        return ConfigValues(**values)


def _field_name(name: Any) -> str:
    if isinstance(name, _UnusableKey):
        return f"{name.kind} used as a field name"
    return _show(name)


def _label(section: str, index: int, item: Any, id_field: str) -> str:
    """``series[2] 'east-yoga'``, or ``series[2]`` when the item has no usable key."""
    if isinstance(item, Mapping):
        ident = item.get(id_field)
        if isinstance(ident, str) and ident.strip():
            return f"{section}[{index}] {_show(ident)}"
    return f"{section}[{index}]"


def _items(check: _Checker, top: Mapping[Any, Any], section: str) -> list[Any]:
    raw = top.get(section)
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.add(section, f"must be a list of {section}, not {_show(raw)}")
        return []
    return raw


def _parse_base(check: _Checker, top: Mapping[Any, Any]) -> ConfigValues | None:
    raw = top.get("base")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        check.add("base", f"must be a mapping of configuration fields, not {_show(raw)}")
        return None
    return check.config("base", raw, scope="base")


def _item_config(check: _Checker, where: str, item: Mapping[Any, Any],
                 *, scope: str) -> ConfigValues | None:
    if "config" not in item:
        return None
    raw = item["config"]
    if raw is None:
        return ConfigValues()  # present but empty: every field inherits
    if not isinstance(raw, Mapping):
        check.add(where, f"field 'config': must be a mapping of configuration fields, "
                         f"not {_show(raw)}")
        return None
    return check.config(f"{where}: config", raw, scope=scope)


_BRANCH_CHECKS: dict[str, Callable[[Any], Any]] = {
    "id": lambda v: _identifier(v, max_length=_BRANCH_ID_LENGTH),
    "name": _text,
}


def _parse_branches(check: _Checker, top: Mapping[Any, Any]) -> list[BranchEntry]:
    out: list[BranchEntry] = []
    first_seen: dict[str, str] = {}
    for index, item in enumerate(_items(check, top, "branches")):
        where = _label("branches", index, item, "id")
        if not isinstance(item, Mapping):
            check.add(where, f"must be a mapping with id and name, not {_show(item)}")
            continue
        check.fields(where, item, BRANCH_FIELDS)
        values: dict[str, Any] = {}
        for name, checker in _BRANCH_CHECKS.items():
            if item.get(name) is None:
                check.add(where, f"field '{name}' is required")
                values[name] = _BAD
            else:
                values[name] = check.value(where, name, item[name], checker)
        config = _item_config(check, where, item, scope="branch")
        branch_id = values["id"]
        if isinstance(branch_id, str):
            if branch_id in first_seen:
                check.add(where, f"field 'id': {branch_id!r} is already used by "
                                 f"{first_seen[branch_id]}")
            else:
                first_seen[branch_id] = f"branches[{index}]"
        if all(v is not _BAD for v in values.values()):
            out.append(BranchEntry(id=values["id"], name=values["name"], config=config))
    return out


_SERIES_CHECKS: dict[str, Callable[[Any], Any]] = {
    "key": lambda v: _identifier(v, max_length=_KEY_LENGTH),
    "branch": lambda v: _identifier(v, max_length=_BRANCH_ID_LENGTH),
    "title": _text,
    "instructor": _text,
    "room": _text,
    "capacity": lambda v: _integer(v, low=0),
    "recurrence": _recurrence,
    "start_time": _hhmm,
    "duration_minutes": lambda v: _integer(v, low=1, high=1440),
    "start_date": _date,
    "end_date": _date,
    "exdates": _dates,
}


def _parse_series(check: _Checker, top: Mapping[Any, Any]) -> list[SeriesEntry]:
    out: list[SeriesEntry] = []
    first_seen: dict[str, str] = {}
    for index, item in enumerate(_items(check, top, "series")):
        where = _label("series", index, item, "key")
        if not isinstance(item, Mapping):
            check.add(where, f"must be a mapping of series fields, not {_show(item)}")
            continue
        check.fields(where, item, SERIES_FIELDS)
        values: dict[str, Any] = {}
        for name, checker in _SERIES_CHECKS.items():
            raw = item.get(name)
            if raw is None:
                if name in REQUIRED_SERIES_FIELDS:
                    check.add(where, f"field '{name}' is required")
                    values[name] = _BAD
                else:
                    values[name] = () if name == "exdates" else None
                continue
            values[name] = check.value(where, name, raw, checker)
        config = _item_config(check, where, item, scope="series")
        start, end = values["start_date"], values["end_date"]
        if isinstance(start, date) and isinstance(end, date) and end < start:
            check.add(where, f"field 'end_date': {end} is before start_date {start}")
            values["end_date"] = _BAD
        key = values["key"]
        if isinstance(key, str):
            if key in first_seen:
                check.add(where, f"field 'key': {key!r} is already used by {first_seen[key]}")
            else:
                first_seen[key] = f"series[{index}]"
        if all(v is not _BAD for v in values.values()):
            out.append(SeriesEntry(**values, config=config))
    return out


# ---------------------------------------------------------------- public API

def parse_data_file(text: str, *, source: str,
                    limits: DataFileLimits = DataFileLimits()) -> DataFile:
    """Parse and check a data file (YAML or JSON) as a whole.

    Args:
        text: the file's content.
        source: where it came from (a path or ``<stdin>``); its suffix picks the
            format (``.json``; ``.yaml``/``.yml``), otherwise the first character
            does (``{`` or ``[`` for JSON).
        limits: what the file may cost to read (size, nesting, YAML aliases).

    Returns:
        The checked content. Branch references to branches outside the file are
        not checked here (see ``check_branches``), nor is the completeness of
        ``base`` (it depends on the stored base).

    Raises:
        DataFileError: listing every problem of the file, each naming the item
            (``base``, ``branches[0] 'east'``, ``series[2] 'east-yoga'``) and the field;
            or the one limit of ``limits`` the file exceeds.
    """
    if len(text) > limits.max_bytes:  # every character is at least one byte
        raise file_too_large(source, limits)
    document = _read(text, source, limits)
    if document is None:
        raise DataFileError([f"{source}: the file is empty; expected base, branches and series"])
    if not isinstance(document, Mapping):
        raise DataFileError([
            f"{source}: the top level must be a mapping with base, branches and series, "
            f"not {_show(document)}"
        ])
    check = _Checker()
    check.fields("top level", document, TOP_LEVEL_FIELDS)
    base = _parse_base(check, document)
    branches = _parse_branches(check, document)
    series = _parse_series(check, document)
    if check.problems:
        raise DataFileError(check.problems)
    return DataFile(base=base, branches=tuple(branches), series=tuple(series))


def check_branches(data: DataFile, known: set[str]) -> None:
    """Check that every series names a branch of the file or of ``known``.

    Args:
        data: a parsed data file.
        known: the branch ids already stored.

    Raises:
        DataFileError: one problem per series whose branch is unknown.
    """
    available = {b.id for b in data.branches} | set(known)
    problems = []
    for index, entry in enumerate(data.series):
        if entry.branch not in available:
            listed = ", ".join(sorted(available)) or "none"
            problems.append(
                f"series[{index}] {entry.key!r}: field 'branch': unknown branch "
                f"{entry.branch!r} (neither in the file's branches nor in the database; "
                f"known branches: {listed})"
            )
    if problems:
        raise DataFileError(problems)


def missing_base_fields(base: ConfigValues | None) -> list[str]:
    """The configuration fields ``base`` leaves unset (all of them when it is ``None``)."""
    if base is None:
        return list(CONFIG_FIELDS)
    return [name for name in CONFIG_FIELDS if getattr(base, name) is None]
