"""A data file parsed and checked as a whole, and the checks only the database can answer.

``parse_data_file`` reports every problem of the file at once (every bad item of
every list, every bad field of an item), so an operator fixes a file in one pass.
The file's parts are checked in file order: the top level's field names, then
``base``, each item of ``branches``, each item of ``series``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues
from seriesgen_pipeline.core.datafile.messages import field_name_problems, label, problems_of
from seriesgen_pipeline.core.datafile.reading import (
    DataFileLimits,
    file_too_large,
    read_document,
)
from seriesgen_pipeline.core.datafile.schema import (
    BASE_SECTION,
    BRANCH_ITEM,
    SERIES_ITEM,
    TOP_LEVEL_FIELDS,
    DataFile,
    config_values,
)
from seriesgen_pipeline.core.datafile.values import show
from seriesgen_pipeline.core.errors import DataFileError


@dataclass(frozen=True)
class _ItemList:
    """A list of the top level and how its items are named and checked."""

    id_field: str
    scope: str
    not_a_mapping: str
    validator: TypeAdapter[Any]


_LISTS = {
    "branches": _ItemList("id", "branch", "must be a mapping with id and name", BRANCH_ITEM),
    "series": _ItemList("key", "series", "must be a mapping of series fields", SERIES_ITEM),
}


_DEFAULT_LIMITS = DataFileLimits()


def parse_data_file(text: str, *, source: str,
                    limits: DataFileLimits = _DEFAULT_LIMITS) -> DataFile:
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
    document = read_document(text, source, limits)
    if document is None:
        raise DataFileError([f"{source}: the file is empty; expected base, branches and series"])
    if not isinstance(document, Mapping):
        raise DataFileError([
            f"{source}: the top level must be a mapping with base, branches and series, "
            f"not {show(document)}"
        ])
    problems = [f"top level: {found}"
                for found in field_name_problems(document, TOP_LEVEL_FIELDS)]
    base = _base(document.get("base"), problems)
    branches = _items(document, "branches", problems)
    series = _items(document, "series", problems)
    if problems:
        raise DataFileError(problems)
    return DataFile(base=base, branches=tuple(branches), series=tuple(series))


def _base(raw: Any, problems: list[str]) -> ConfigValues | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"base: must be a mapping of configuration fields, not {show(raw)}")
        return None
    try:
        return config_values(BASE_SECTION.validate_python(raw, context={"scope": "base"}))
    except ValidationError as exc:
        problems.extend(problems_of("base", exc))
        return None


def _items(document: Mapping[Any, Any], name: str, problems: list[str]) -> list[Any]:
    """The valid items of the list ``name``; the problems of the others added to ``problems``."""
    raw = document.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{name}: must be a list of {name}, not {show(raw)}")
        return []
    spec = _LISTS[name]
    seen: dict[Any, str] = {}
    valid = []
    for index, item in enumerate(raw):
        where = label(name, index, item, spec.id_field)
        if not isinstance(item, Mapping):
            problems.append(f"{where}: {spec.not_a_mapping}, not {show(item)}")
            continue
        context = {"scope": spec.scope, "item": f"{name}[{index}]", "seen": seen}
        try:
            valid.append(spec.validator.validate_python(item, context=context))
        except ValidationError as exc:
            problems.extend(problems_of(where, exc))
    return valid


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
