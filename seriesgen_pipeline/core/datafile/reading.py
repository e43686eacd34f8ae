"""A data file's text read into Python values, within limits.

Reading rules, chosen so that the file means what it looks like:

- JSON is detected by a ``.json`` suffix of ``source`` or, without a ``.yaml`` /
  ``.yml`` suffix, by a first character ``{`` or ``[``; its syntax errors are
  reported as JSON errors with line and column.
- YAML is read with the safe loader, but an unquoted ``18:00`` stays the text
  ``"18:00"`` (YAML 1.1 would read it as the base-60 number 1080), and an
  unquoted impossible date such as ``2026-02-30`` stays text, so that both are
  reported as a bad time or date instead of a puzzling number or a crash.
- Every mapping is a ``FileMapping``, which remembers the keys given more than
  once (a field given twice is an error, not "the last one wins"); a list or
  mapping used as a key becomes an ``UnusableKey``, an integer literal too long
  for Python a ``HugeNumber``.

Limits, so that a hostile file is refused in well under a second and in bounded
memory instead of exhausting the machine (``DataFileLimits``):

- A file larger than ``max_bytes`` (20 MB) is refused; the loader never reads more.
- Lists and mappings nested deeper than ``max_depth`` (64) are refused: a data
  file needs five levels. YAML is checked on its event stream before any node
  is built, JSON after decoding (and a decoder out of stack is the same error).
- YAML aliases (``*name``) may repeat at most ``max_alias_nodes`` (10,000) nodes
  in all, counted as expanded, anywhere (mapping keys included); an alias inside
  the node it names is refused. So an alias bomb is refused before it expands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from seriesgen_pipeline.core.datafile.values import HugeNumber, UnusableKey, show
from seriesgen_pipeline.core.errors import DataFileError

try:  # libyaml's parser is an order of magnitude faster on large files
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

_FILE_DEPTH = 5  # top level > series list > series > config > closed_dates


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


class FileMapping(dict[Any, Any]):
    """A mapping that remembers the keys given more than once."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: list[Any] = []

    def put(self, key: Any, value: Any) -> None:
        if key in self:
            self.repeated.append(key)
        self[key] = value


class _Loader(_SafeLoader):
    """The safe loader with the reading rules of the module docstring."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> FileMapping:
    loader.flatten_mapping(node)
    data = FileMapping()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:  # its text could be exponentially long (aliases): name its kind
            key = UnusableKey(show(key))
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
        return HugeNumber(len(digits)) if digits.isdigit() else text


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)  # e.g. 2026-02-30: reported as a bad date


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _json_object(pairs: list[tuple[str, Any]]) -> FileMapping:
    data = FileMapping()
    for key, value in pairs:
        data.put(key, value)
    return data


def _json_int(text: str) -> int | HugeNumber:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return HugeNumber(len(text.lstrip("-")))


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


def read_document(text: str, source: str, limits: DataFileLimits) -> Any:
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
