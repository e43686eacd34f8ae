"""Loading a data file (SPEC §10) into the application database, all or nothing.

The file is checked whole before anything is written (``core.datafile``); what
only the database can tell — which branches exist, whether a base configuration
is stored yet — is checked inside the same transaction as the writes, so a
rejected file leaves every table exactly as it was.

Upserts, in one transaction:

- ``base``: the fields the file sets replace the stored ones; fields the file
  leaves out keep their stored value. With no stored base, the file's base must
  set every field.
- ``branches`` by ``id``: the name is updated; a ``config`` in the file replaces
  the branch scope (``null`` fields inherit); no ``config`` leaves it alone.
- ``series`` by ``key`` (the immutable identity): a new series starts at
  ``version`` 1; a series whose content changed gets ``version + 1`` and a new
  ``updated_at``; an unchanged series is not touched. A ``config`` replaces the
  series scope; no ``config`` leaves it alone. Series absent from the file are
  left alone.

Rows that would not change are not written, so loading the same file twice
writes nothing the second time (and wakes no sensor).

Stored rows are read as the driver returns them and checked value by value
(``core.readers``), because another writer may have stored a value that cannot be
read: a series or scope the file gives is then rewritten from the file, which
repairs it; a base field the file leaves out cannot be kept, so the file is
refused and told to set it.

The file is read with a bounded read: at most ``SERIESGEN_MAX_DATA_FILE_BYTES``
(default 20 MB) plus one byte, whatever it is. It is opened without blocking, so
a FIFO with no writer reads as empty instead of waiting; a pipe or
``/dev/stdin`` is read up to the limit, ``/dev/zero`` is refused at the limit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.config import CONFIG_FIELDS, ConfigValues
from seriesgen_pipeline.core.datafile import (
    DataFile,
    DataFileLimits,
    SeriesEntry,
    check_branches,
    file_too_large,
    missing_base_fields,
    parse_data_file,
)
from seriesgen_pipeline.core.errors import DataFileError
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.settings import Settings

log = logging.getLogger("seriesgen.loading")



@dataclass
class LoadSummary:
    """What a load wrote; every count is zero when the file matched the database."""

    branches_created: int = 0
    branches_updated: int = 0
    series_created: int = 0
    series_updated: int = 0
    series_unchanged: int = 0
    configs_written: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return asdict(self)


def data_file_limits(settings: Settings | None = None) -> DataFileLimits:
    """The limits of a data file, with ``SERIESGEN_MAX_DATA_FILE_BYTES`` when set.

    Raises:
        SettingsError: (settings read here) a variable is not valid.
    """
    max_bytes = (settings or Settings.from_env()).max_data_file_bytes
    return DataFileLimits() if max_bytes is None else DataFileLimits(max_bytes=max_bytes)


def load_file(engine: sa.Engine, path: Path,
              limits: DataFileLimits | None = None) -> LoadSummary:
    """Read, check and load a YAML or JSON data file, all or nothing.

    Args:
        engine: the application database.
        path: the data file; ``.json`` is read as JSON, anything else as YAML
            (or JSON when it starts with ``{`` or ``[``).
        limits: what the file may cost to read; by default ``data_file_limits()``.

    Returns:
        The counts of what was written.

    Raises:
        DataFileError: the file cannot be read, exceeds a limit or is rejected;
            nothing was written.
        SettingsError: ``SERIESGEN_MAX_DATA_FILE_BYTES`` is not a number of bytes.
    """
    path = Path(path)
    limits = limits or data_file_limits()
    text = read_data_file(path, limits)
    data = parse_data_file(text, source=str(path), limits=limits)
    return load_data(engine, data)


def read_data_file(path: Path, limits: DataFileLimits) -> str:
    """The text of ``path``, reading at most ``limits.max_bytes + 1`` bytes.

    Raises:
        DataFileError: no such file, unreadable, a directory, larger than the
            limit, or not UTF-8.
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise DataFileError([f"{path}: no such file"]) from exc
    except OSError as exc:
        raise DataFileError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DataFileError([f"{path}: cannot read the file: Is a directory"])
        if stat.S_ISREG(info.st_mode) and info.st_size > limits.max_bytes:
            raise file_too_large(str(path), limits, size=info.st_size)
        # Reads block again: a pipe is read until its writer closes it.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DataFileError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from exc
    finally:
        os.close(fd)
    if len(raw) > limits.max_bytes:
        raise file_too_large(str(path), limits)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError([f"{path}: not UTF-8 text (bad byte at offset {exc.start})"]) from exc


def load_data(engine: sa.Engine, data: DataFile) -> LoadSummary:
    """Upsert a parsed data file in one transaction.

    Args:
        engine: the application database.
        data: the checked content of a data file.

    Returns:
        The counts of what was written.

    Raises:
        DataFileError: a series names an unknown branch, or the database has no
            base configuration and the file's base is missing or incomplete;
            nothing was written.
    """
    with engine.begin() as conn:
        summary = apply_data_file(conn, data=data)
    log.info("data file loaded: %s", " ".join(f"{k}={v}" for k, v in summary.as_dict().items()))
    return summary


def apply_data_file(conn: sa.Connection, *, data: DataFile) -> LoadSummary:
    """Check ``data`` against the database and upsert it, in the caller's transaction.

    The caller owns the transaction: on ``DataFileError`` (raised before any
    write) or any other error it must roll back.
    """
    repo.lock_loads(conn)
    stored_base = repo.stored_config(conn, scope="base")
    known_branches = repo.branch_names(conn)
    problems: list[str] = []
    try:
        check_branches(data, set(known_branches))
    except DataFileError as exc:
        problems.extend(exc.problems)
    if stored_base is not None and data.base is not None:
        problems.extend(
            f"base: field '{name}': the stored value cannot be read ({error.reason}); "
            "set it in the file's base section"
            for name, error in stored_base.unreadable.items()
            if getattr(data.base, name) is None)
    if stored_base is None:
        problems.extend(
            f"base: field '{name}' is required: the database has no base configuration yet, "
            "so the file's base section must set every field"
            for name in missing_base_fields(data.base)
        )
    if problems:
        raise DataFileError(problems)

    summary = LoadSummary()
    stamp = repo.utcnow()
    if data.base is not None:
        merged = _merge_base(stored_base, data.base)
        summary.configs_written += _put_config(conn, scope="base", owner=None,
                                               values=merged, stamp=stamp)
    _load_branches(conn, data, known_branches, summary, stamp)
    _load_series(conn, data.series, summary, stamp)
    return summary


# ---------------------------------------------------------------- configuration

def _merge_base(stored: ConfigValues | None, given: ConfigValues) -> ConfigValues:
    """The file's base fields over the stored ones (the file cannot unset a base field)."""
    values = {}
    for name in CONFIG_FIELDS:
        value = getattr(given, name)
        values[name] = value if value is not None or stored is None else getattr(stored, name)
    return ConfigValues(**values)


def _put_config(conn: sa.Connection, *, scope: str, owner: str | int | None,
                values: ConfigValues, stamp: datetime) -> int:
    """Insert or replace one scope's row; returns 1 when written, 0 when already equal."""
    stored = repo.stored_config(conn, scope=scope, owner=owner)
    if stored is not None and stored == values and not stored.unreadable:  # not compared
        return 0
    repo.put_config(conn, scope=scope, owner=owner, values=values, stamp=stamp,
                    exists=stored is not None)
    return 1


# ---------------------------------------------------------------- branches

def _load_branches(conn: sa.Connection, data: DataFile, known: Mapping[str, str],
                   summary: LoadSummary, stamp: datetime) -> None:
    for entry in data.branches:
        if entry.id not in known:
            repo.insert_branch(conn, branch_id=entry.id, name=entry.name)
            summary.branches_created += 1
        elif known[entry.id] != entry.name:
            repo.rename_branch(conn, branch_id=entry.id, name=entry.name)
            summary.branches_updated += 1
        if entry.config is not None:
            summary.configs_written += _put_config(conn, scope="branch", owner=entry.id,
                                                   values=entry.config, stamp=stamp)


# ---------------------------------------------------------------- series

def _content(entry: SeriesEntry) -> dict[str, Any]:
    """The ``class_series`` columns a data-file series sets (``key`` aside)."""
    return {
        "branch_id": entry.branch, "title": entry.title, "instructor": entry.instructor,
        "room": entry.room, "capacity": entry.capacity, "recurrence": entry.recurrence,
        "start_time": entry.start_time, "duration_minutes": entry.duration_minutes,
        "start_date": entry.start_date, "end_date": entry.end_date,
        "exdates": list(entry.exdates),
    }


def _stored_content(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The content columns of a stored row, or ``None`` when one cannot be read."""
    spec, problems = repo.read_series_row(row)
    if problems:
        return None  # never equal to the file's content: the row is rewritten, hence repaired
    return {
        "branch_id": spec.branch_id, "title": spec.title, "instructor": spec.instructor,
        "room": spec.room, "capacity": spec.capacity, "recurrence": spec.recurrence,
        "start_time": spec.start_time, "duration_minutes": spec.duration_minutes,
        "start_date": spec.start_date, "end_date": spec.end_date,
        "exdates": sorted(set(spec.exdates)),
    }


def _load_series(conn: sa.Connection, entries: tuple[SeriesEntry, ...],
                 summary: LoadSummary, stamp: datetime) -> None:
    stored = repo.series_rows_for_update(conn, keys=[entry.key for entry in entries])
    ids: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    changes: list[tuple[int, dict[str, Any]]] = []
    for entry in entries:
        content = _content(entry)
        row = stored.get(entry.key)
        if row is None:
            inserts.append({"key": entry.key, **content, "version": 1,
                            "created_at": stamp, "updated_at": stamp})
            continue
        ids[entry.key] = row["id"]
        if _stored_content(row) == content:
            summary.series_unchanged += 1
        else:
            changes.append((row["id"], content))
    ids.update(repo.insert_series(conn, rows=inserts))
    summary.series_created += len(inserts)
    summary.series_updated += repo.update_series_content(conn, changes=changes, stamp=stamp)

    for entry in entries:
        if entry.config is not None:
            summary.configs_written += _put_config(conn, scope="series", owner=ids[entry.key],
                                                   values=entry.config, stamp=stamp)
