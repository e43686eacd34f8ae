"""Issue: racing ``seriesgen generate`` runs crash registering the same new partitions.

Contract (SPEC §5 FR-011, §9): several ``generate`` processes started at once
with one Dagster instance all succeed; each keeps the instance's
``class_series`` partitions in step with the series (``defs/launch.sync_partitions``).

Bug: ``sync_partitions`` calls ``instance.add_dynamic_partitions`` for the keys
it did not see; Dagster's SQL storage reads the existing keys and then inserts
the others, without a lock in between. When another process inserts the same
keys in that gap, the insert fails with ``IntegrityError: UNIQUE constraint
failed: dynamic_partitions.partitions_def_name, dynamic_partitions.partition``,
which ``seriesgen generate`` does not catch: it exits 1 with a traceback and
prints no JSON report. Found by the failure suite's soak
(``test_soak_racing_runs_some_killed``: 5 racing runs, a new DAGSTER_HOME
copy with no partitions yet). Reproduced here deterministically: a second
instance on the same ``DAGSTER_HOME`` (another process) registers the keys
between the first one's read and its insert.

Suggested fix: in ``sync_partitions``, catch ``sqlalchemy.exc.IntegrityError``
from ``add_dynamic_partitions``, re-read the partitions and add only those still
missing (a few attempts). A lock taken by the CLI alone would not do: the
``class_series_changes`` sensor registers partitions from the daemon too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from seriesgen_pipeline.defs.launch import sync_partitions

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS = ["east-yoga", "west-spin"]


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchall(self) -> list[Any]:
        return self._rows

    def __enter__(self) -> _Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _RacingConnection:
    """Lets another process register the keys right after this one read them."""

    def __init__(self, conn: Any, other: dg.DagsterInstance, armed: list[bool]) -> None:
        self._conn = conn
        self._other = other
        self._armed = armed

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        result = self._conn.execute(statement, *args, **kwargs)
        if self._armed[0] and str(statement).lstrip().upper().startswith("SELECT"):
            self._armed[0] = False
            rows = result.fetchall()
            self._other.add_dynamic_partitions("class_series", KEYS)
            return _Rows(rows)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_sync_partitions_survives_another_process_adding_the_same_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    mine = dg.DagsterInstance.get()
    other = dg.DagsterInstance.get()  # another process's instance on the same DAGSTER_HOME
    storage = mine.event_log_storage
    armed = [False]
    index_connection = storage.index_connection
    add = storage.add_dynamic_partitions

    @contextmanager
    def racing_index_connection() -> Iterator[Any]:
        with index_connection() as conn:
            yield _RacingConnection(conn, other, armed)

    def racing_add(*args: Any, **kwargs: Any) -> Any:
        armed[0] = True  # the race happens inside Dagster's read-then-insert
        try:
            return add(*args, **kwargs)
        finally:
            armed[0] = False

    monkeypatch.setattr(storage, "index_connection", racing_index_connection)
    monkeypatch.setattr(storage, "add_dynamic_partitions", racing_add)
    try:
        assert sorted(sync_partitions(mine, KEYS)) == sorted(KEYS)
    finally:
        mine.dispose()
        other.dispose()
