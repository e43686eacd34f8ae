"""Test harness for the failure suite: datasets, CLI subprocesses, database states.

Everything here observes the product from the outside: data goes in through a
SPEC §10 data file and ``seriesgen load``, generation runs as real ``seriesgen``
processes (each in its own process group, so a SIGKILL takes the whole tree),
and states are read straight from the tables with plain SQL or through
``seriesgen sessions --format json``. Nothing here asks the code under test what
the rows *should* be: expectations are the rows an uninterrupted run wrote on a
fresh database.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import normalize_url

SERIESGEN = str(Path(sys.executable).with_name("seriesgen"))
REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-03-02T12:00:00Z"
NOW_DT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PRE_NOW = "2026-02-16T12:00:00Z"  # an earlier run that gives the ended series its sessions
NIGHT = "2026-03-05T12:00:00Z"  # three days later: the window moves on by 3 days
HORIZON = 146
CHUNK_ROWS = 73  # 146 = 2 x 73: every chunk of a creating run is exactly 73 rows

# The scenarios (see failure/conftest.py): the run's --now and its chunk size.
SCENARIOS = {
    "fleet": (NOW, CHUNK_ROWS),  # first run: 16 x 146 creates, one retirement
    "edited": (NOW, CHUNK_ROWS),  # reconcile: 16 x 146 updates and deletes
    "nightly": (NIGHT, 2),  # next nights' run: 16 x 3 creates at the end of the window
}
BATCH_SERIES = 4  # series locked, planned and written together (SERIESGEN_BATCH_SERIES)
# Every batch of 4 series holds a multiple of the chunk size in writes (4 x 146 =
# 8 x 73), so every chunk is full: the writes a killed run committed are a
# multiple of the chunk size.
FULL_CHUNKS = {"fleet", "edited"}
RUN_TIMEOUT = 240.0

# The columns a user sees (SPEC §3 / §9); audit columns and surrogate ids are left out.
VISIBLE = ("series_key", "occurrence_key", "branch_id", "title", "instructor", "room",
           "capacity", "timezone", "starts_at", "ends_at", "status", "detached",
           "booked_count", "config_hash")


# ------------------------------------------------------------------ data files

def fleet(n_series: int = 16, *, horizon: int = HORIZON, ended: bool = True) -> dict[str, Any]:
    """A data file: ``n_series`` daily series over two branches, plus one ended series.

    Every daily series has exactly ``horizon`` occurrences in the window of
    ``NOW`` (18:00 New York and 14:00 London both fall after 12:00Z, so the
    first day is in and the day the window ends at 12:00Z is out), so a
    creating run writes ``n_series * horizon`` rows. The ended series
    (``zz-ended``, end_date 2026-02-26) has nothing left to generate at ``NOW``
    and is retired by a run at ``NOW``.
    """
    series = []
    for i in range(n_series):
        east = i % 2 == 0
        series.append({
            "key": f"s{i:02d}", "branch": "east" if east else "west",
            "title": f"Class {i}", "instructor": f"Coach {i}", "room": f"Room {i}",
            "recurrence": "FREQ=DAILY", "start_time": "18:00" if east else "14:00",
            "duration_minutes": 60, "start_date": "2026-01-05",
        })
    if ended:
        series.append({
            "key": "zz-ended", "branch": "east", "title": "Winter Pilates",
            "instructor": "Pat", "room": "Studio 9", "recurrence": "FREQ=WEEKLY;BYDAY=TU,TH",
            "start_time": "07:30", "duration_minutes": 45, "start_date": "2026-01-06",
            "end_date": "2026-02-26",
        })
    return {
        "base": {"horizon_days": horizon, "timezone": "UTC", "default_duration_minutes": 60,
                 "default_capacity": 20, "open_time": "06:00", "close_time": "22:00",
                 "closed_dates": [], "generation_enabled": True, "cleanup_grace_days": 0},
        "branches": [
            {"id": "east", "name": "East", "config": {"timezone": "America/New_York"}},
            {"id": "west", "name": "West", "config": {"timezone": "Europe/London",
                                                      "default_capacity": 12}},
        ],
        "series": series,
    }


def write_data_file(path: Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as a YAML data file."""
    path.write_text(yaml.safe_dump(dict(doc), sort_keys=False))
    return path


# ------------------------------------------------------------------ processes

def child_env(dagster_home: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a ``seriesgen`` child: no inherited seriesgen settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SERIESGEN_") and k not in (
               "DAGSTER_HOME", "ENABLE_SERIES_GENERATION", "ADMIN_NOTIFY_RECIPIENT")}
    env["PYTHONUNBUFFERED"] = "1"
    if dagster_home is not None:
        dagster_home.mkdir(parents=True, exist_ok=True)
        target = dagster_home / "dagster.yaml"
        if not target.exists():
            shutil.copy(REPO_ROOT / "dagster.yaml", target)
        env["DAGSTER_HOME"] = str(dagster_home)
    env.update(extra)
    return env


@dataclass
class Proc:
    """A running ``seriesgen`` process, in its own process group."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL the whole process group (the CLI and anything it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.killed = True
        self.popen.wait(timeout=30)

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"seriesgen did not finish within {timeout:.0f}s (deadlock?)\n"
                                 f"{self.stderr()[-3000:]}") from None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def json(self) -> Any:
        """Standard output as JSON (it must hold the document alone)."""
        text = self.stdout()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not pure JSON ({exc}):\n{text[:2000]}\n"
                                 f"stderr:\n{self.stderr()[-2000:]}") from None


def scenario_env(kind: str, dagster_home: Path | None = None, **extra: str) -> dict[str, str]:
    """The child environment for a run of scenario ``kind``: its chunk and batch sizes."""
    return child_env(dagster_home, SERIESGEN_CHUNK_ROWS=str(SCENARIOS[kind][1]),
                     SERIESGEN_BATCH_SERIES=str(BATCH_SERIES), **extra)


_counter = Counter[str]()


def start(args: Sequence[str], *, env: Mapping[str, str], workdir: Path) -> Proc:
    """Start ``seriesgen ARGS`` in a new session; its output goes to files in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    _counter[str(workdir)] += 1
    n = _counter[str(workdir)]
    out = workdir / f"cmd{n:03d}.out"
    err = workdir / f"cmd{n:03d}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        popen = subprocess.Popen([SERIESGEN, *args], env=dict(env), cwd=workdir, stdout=fo,
                                 stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True)
    return Proc(popen, out, err, time.monotonic())


def run(args: Sequence[str], *, env: Mapping[str, str], workdir: Path,
        expect: int | None = 0, timeout: float = RUN_TIMEOUT) -> Proc:
    """Run ``seriesgen ARGS`` to completion and check its exit code."""
    proc = start(args, env=env, workdir=workdir)
    code = proc.wait(timeout)
    if expect is not None:
        assert code == expect, (f"`seriesgen {' '.join(args)}` exited {code}, expected {expect}\n"
                                f"stderr:\n{proc.stderr()[-3000:]}")
    return proc


def generate_args(url: str, now: str = NOW, *extra: str) -> list[str]:
    """``generate --all`` as of ``now`` with a JSON report (``--database-url`` after it)."""
    return ["generate", "--all", "--now", now, "--format", "json", *extra, "--database-url", url]


def setup_database(url: str, data_file: Path, *, env: Mapping[str, str], workdir: Path) -> None:
    """``db upgrade`` then ``load`` through the CLI."""
    run(["db", "upgrade", "--database-url", url], env=env, workdir=workdir)
    run(["load", str(data_file), "--database-url", url], env=env, workdir=workdir)


def sessions_json(url: str, *, env: Mapping[str, str], workdir: Path) -> list[dict[str, Any]]:
    """``seriesgen sessions --format json``, parsed."""
    proc = run(["sessions", "--format", "json", "--database-url", url], env=env, workdir=workdir)
    data = proc.json()
    assert isinstance(data, list)
    return data


# ------------------------------------------------------------------ database states

def plain_engine(url: str) -> sa.Engine:
    """A bare SQLAlchemy engine, as another application would open the database."""
    return sa.create_engine(normalize_url(url))


@dataclass
class State:
    """What the tables hold: visible session columns, series rows and their watermarks."""

    sessions: dict[tuple[str, str], dict[str, Any]]
    duplicates: list[tuple[str, str]]
    series: dict[str, dict[str, Any]]
    orphans: set[tuple[str, str]] = field(default_factory=set)  # sessions with series_id NULL

    def keys_of(self, series_key: str) -> list[str]:
        return sorted(o for s, o in self.sessions if s == series_key)

    def count_from(self, instant: datetime) -> int:
        return sum(1 for r in self.sessions.values() if r["starts_at"] >= instant)


def _as_utc(value: Any) -> Any:
    if isinstance(value, str):  # SQLite hands plain SQL its text form, naive UTC
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def row_of(conn: sa.Connection, key: tuple[str, str]) -> dict[str, Any] | None:
    """The visible columns of one session, read on ``conn`` (inside its transaction)."""
    row = conn.execute(sa.text(
        f"SELECT {', '.join(VISIBLE)} FROM class_sessions "
        "WHERE series_key = :s AND occurrence_key = :o"), {"s": key[0], "o": key[1]}
    ).mappings().first()
    return None if row is None else _visible(row)


def _visible(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {c: row[c] for c in VISIBLE}
    values["starts_at"] = _as_utc(values["starts_at"])
    values["ends_at"] = _as_utc(values["ends_at"])
    values["detached"] = bool(values["detached"])
    return values


def read_state(url: str) -> State:
    """Read the state with plain SQL (no code under test)."""
    engine = plain_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                f"SELECT {', '.join(VISIBLE)}, series_id FROM class_sessions")).mappings().all()
            series = conn.execute(sa.text(
                "SELECT id, key, title, last_generated_through FROM class_series")
            ).mappings().all()
    finally:
        engine.dispose()
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = []
    orphans = set()
    for r in rows:
        key = (r["series_key"], r["occurrence_key"])
        if key in sessions:
            duplicates.append(key)
        sessions[key] = _visible(r)
        if r["series_id"] is None:
            orphans.add(key)
    return State(sessions, duplicates,
                 {s["key"]: {"id": s["id"], "title": s["title"],
                             "mark": _as_utc(s["last_generated_through"])} for s in series},
                 orphans)


def diff_sessions(got: Mapping[tuple[str, str], Mapping[str, Any]],
                  want: Mapping[tuple[str, str], Mapping[str, Any]], limit: int = 8) -> str:
    """A short human description of how two session maps differ ('' when equal)."""
    lines = []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if dict(want[k]) != dict(got[k]))
    if missing:
        lines.append(f"{len(missing)} missing, e.g. {missing[:limit]}")
    if extra:
        lines.append(f"{len(extra)} unexpected, e.g. {extra[:limit]}")
    for k in changed[:limit]:
        delta = {c: (got[k].get(c), want[k].get(c)) for c in want[k] if got[k].get(c) !=
                 want[k].get(c)}
        lines.append(f"{k} differs (got, want): {delta}")
    if len(changed) > limit:
        lines.append(f"... {len(changed)} rows differ in all")
    return "\n".join(lines)


# ------------------------------------------------------------------ databases and copies

def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def copy_sqlite(src_url: str, dest: Path) -> str:
    """Copy a quiescent SQLite database (checkpointed first) to ``dest``."""
    src = Path(make_url(src_url).database or "")
    engine = sa.create_engine(src_url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)
    return sqlite_url(dest)


def clone_postgres(template_url: str, prefix: str = "sg_fail") -> str:
    """A new database created from ``template_url`` (which must have no session open)."""
    import uuid

    parsed = make_url(normalize_url(template_url))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    finally:
        admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def terminate_backends(url: str) -> int:
    """``pg_terminate_backend`` every other session on ``url``'s database; returns how many."""
    parsed = make_url(normalize_url(url))
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": parsed.database}
            ).all())
    finally:
        admin.dispose()



def terminate_backends_inside(url: str, statement: str, *, is_running: Any,
                              timeout: float = 60.0) -> int:
    """Terminate every other session of ``url``'s database at the instant one of them
    sits ``idle in transaction`` after a write statement matching ``statement`` (a
    regex; reads never match).

    Detection and termination are one SQL statement, so the transaction cannot
    commit between them. ``is_running()`` is polled so a run that ends early fails
    fast. Returns how many sessions were terminated.
    """
    parsed = make_url(normalize_url(url))
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    kill = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = :db AND pid <> pg_backend_pid() AND EXISTS ("
        " SELECT 1 FROM pg_stat_activity WHERE datname = :db"
        " AND state = 'idle in transaction' AND query ~* :statement"
        " AND query !~* '^\\s*select')")
    deadline = time.monotonic() + timeout
    try:
        with admin.connect() as conn:
            while time.monotonic() < deadline:
                killed = len(conn.execute(kill, {"db": parsed.database,
                                                 "statement": statement}).all())
                if killed:
                    return killed
                assert is_running(), "the run ended before the awaited transaction"
                time.sleep(0.005)
    finally:
        admin.dispose()
    raise AssertionError(f"no transaction ever sat after a statement matching {statement!r}")


def fleet_edited(n_series: int = 16) -> dict[str, Any]:
    """``fleet`` with every series edited so that each of its sessions changes.

    Every title changes (so every kept session is updated); some series also
    change time, rule (daily -> Mon/Wed/Fri: the other days are deleted), room,
    capacity, duration, exdates or end date. Nothing is added: a reconciling run
    writes exactly ``HORIZON`` operations per series, a multiple of
    ``CHUNK_ROWS``. The ended series is left out of the file (it is retired by
    then, and series not in a file are left alone).
    """
    doc = fleet(n_series, ended=False)
    for i, s in enumerate(doc["series"]):
        s["title"] = f"{s['title']} (new)"
        if i % 2 == 1:
            s["start_time"] = "15:15"
        if i % 4 == 0:
            s["recurrence"] = "FREQ=WEEKLY;BYDAY=MO,WE,FR"
        if i % 4 == 2:
            s["room"] = f"Hall {i}"
            s["capacity"] = 30
            s["exdates"] = ["2026-04-01", "2026-05-01", "2026-06-01"]
        if i % 8 == 5:
            s["duration_minutes"] = 90
        if i % 8 == 7:
            s["end_date"] = "2026-06-30"
    return doc


# ------------------------------------------------------------------ invariants after a kill

def series_keys_of(sessions: Mapping[tuple[str, str], Any]) -> set[str]:
    return {s for s, _ in sessions}


def check_crash_state(state: State, old: State, new: State, *, now: datetime = NOW_DT,
                      ended: str | None = "zz-ended") -> dict[str, int]:
    """Check a database left by a killed (or failed) run that was taking ``old`` to ``new``.

    ``old`` is the state before the run, ``new`` the state an uninterrupted run
    leaves (both read from real databases). The checks:

    - no duplicate occurrence;
    - every row is entirely as before or entirely as after: nothing half-written;
    - per series, the run's progress is a prefix in time (occurrence key)
      order: every occurrence already in its final state comes before every
      occurrence still in its old state;
    - ``last_generated_through`` never claims more than is committed: for a
      series the run has touched, every occurrence starting at or before the
      watermark is in its final state;
    - retirement is all or nothing: the ended series either still exists with
      its sessions attached, or is gone with every session kept (series_id NULL).

    Returns the number of occurrences in their final state that were not
    already (the operations committed) per series.
    """
    assert not state.duplicates, f"duplicate occurrences: {state.duplicates[:10]}"
    done: dict[str, int] = {}
    everything = series_keys_of(old.sessions) | series_keys_of(new.sessions)
    for series in sorted(everything):
        keys = sorted({o for s, o in old.sessions if s == series}
                      | {o for s, o in new.sessions if s == series}
                      | {o for s, o in state.sessions if s == series})
        marks = []
        for occ in keys:
            k = (series, occ)
            row = state.sessions.get(k)
            is_new = row == new.sessions.get(k)
            is_old = row == old.sessions.get(k)
            assert is_new or is_old, (
                f"{k} is neither as before nor as after the run (half-written or foreign):\n"
                f"  now   {row}\n  old   {old.sessions.get(k)}\n  new   {new.sessions.get(k)}")
            marks.append("=" if is_new and is_old else "N" if is_new else "O")
        changed = "".join(m for m in marks if m != "=")
        assert "ON" not in changed, (
            f"{series}: committed progress is not a prefix in occurrence order "
            f"(N=final, O=old): {changed}")
        done[series] = changed.count("N")
        if series in state.series and done[series]:
            mark = state.series[series]["mark"]
            if mark is not None:
                behind = [occ for occ, m in zip(keys, marks, strict=True) if m == "O"
                          and (new.sessions.get((series, occ)) or old.sessions[(series, occ)])
                          ["starts_at"] <= mark]
                assert not behind, (
                    f"{series}: last_generated_through={mark} claims occurrences that are not "
                    f"committed: {behind[:5]}")
    if ended is not None and series_keys_of(old.sessions) & {ended}:
        ended_rows = {k for k in state.sessions if k[0] == ended}
        assert ended_rows == {k for k in old.sessions if k[0] == ended}, \
            f"sessions of {ended} were lost"
        if ended in state.series:
            assert not (ended_rows & state.orphans), \
                f"{ended} still exists but some of its sessions were detached from it"
        else:
            assert ended_rows <= state.orphans, f"{ended} retired but sessions still point at it"
    return done


def writes_by_series(old: State, new: State) -> dict[str, dict[str, int]]:
    """Per series, the rows created, updated and deleted between two states."""
    out: dict[str, dict[str, int]] = {}
    for key in set(old.sessions) | set(new.sessions):
        counts = out.setdefault(key[0], {"created": 0, "updated": 0, "deleted": 0})
        if key not in old.sessions:
            counts["created"] += 1
        elif key not in new.sessions:
            counts["deleted"] += 1
        elif old.sessions[key] != new.sessions[key]:
            counts["updated"] += 1
    return out


def check_converged(state: State, new: State) -> None:
    """The database holds exactly the rows (and series, and watermarks) of ``new``."""
    assert not state.duplicates, f"duplicate occurrences: {state.duplicates[:10]}"
    assert state.sessions == new.sessions, diff_sessions(state.sessions, new.sessions)
    assert state.orphans == new.orphans
    assert {k: v["mark"] for k, v in state.series.items()} == \
        {k: v["mark"] for k, v in new.series.items()}


def wait_for_snapshot(proc: Proc, url: str, records: tuple[int, int],
                      timeout: float = 60.0) -> float | None:
    """Poll until the run stored its snapshots; seconds since start, None if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_records(url)[0] > records[0]:
            return time.monotonic() - proc.started
        if proc.returncode is not None:
            return None
        time.sleep(0.02)
    raise AssertionError(f"the run stored no snapshot within {timeout:.0f}s")


def run_records(url: str) -> tuple[int, int]:
    """How many runs took their snapshots (recorded in ``generation_runs``), and how
    many wrote ``generation_log`` rows."""
    engine = plain_engine(url)
    try:
        with engine.connect() as conn:
            snaps = conn.execute(sa.text(
                "SELECT count(*) FROM generation_runs")).scalar_one()
            logs = conn.execute(sa.text(
                "SELECT count(DISTINCT run_id) FROM generation_log")).scalar_one()
    finally:
        engine.dispose()
    return int(snaps), int(logs)


def phase_of(before: tuple[int, int], after: tuple[int, int], done: int, total: int,
             retired: bool | None) -> str:
    """Where a run was when it died, told from the tables alone."""
    if after[1] > before[1]:
        return "finished"
    if after[0] == before[0]:
        return "startup/snapshot"
    if done == 0:
        return "after-snapshot"
    if done < total:
        return "mid-chunks"
    if retired is False:
        return "after-generation/retirement"
    return "after-retirement/recording"
