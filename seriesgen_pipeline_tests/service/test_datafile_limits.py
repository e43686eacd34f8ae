"""Limits of a data file: hostile files are refused fast, in bounded memory, with exit 2.

Each case runs the real ``seriesgen load`` in a subprocess against a real SQLite
file that already holds data, and checks what an operator sees and what the
machine pays:

- exit code 2 and ``seriesgen: error: invalid data file:`` with a message that
  names the file (or the item and field) and the limit;
- no ``Traceback`` on standard output or standard error;
- nothing written: every row of the tables a load writes is unchanged;
- ``main()`` returns within 1 s, and the whole process peaks below 300 MB
  (its own ``ru_maxrss``, read with ``wait4``). Before the limits, the alias bomb
  took 77 s and 3.1 GB, ``/dev/zero`` 3.8 GB, the deep JSON a ``RecursionError``
  traceback; the process runs under a 3 GB address-space cap so a regression
  fails the test instead of exhausting the machine.

The hostile files are built here, in ``tmp_path``.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service.loading import load_file
from seriesgen_pipeline_tests.cli.helpers import DEMO_LIKE
from seriesgen_pipeline_tests.service.test_loading import table_state

# Generous for a loaded CI machine: each refusal takes 30-50 ms; before the limits
# the same files took 20-77 s.
TIME_LIMIT_S = 2.0
RSS_LIMIT_BYTES = 300 * 1024 * 1024
_ADDRESS_SPACE_CAP = 3 * 1024**3
_ELAPSED_MARK = "elapsed-seconds="

# main() timed inside the child, so interpreter start-up and imports are not counted.
_TIMED_MAIN = f"""
import sys, time
from seriesgen_pipeline.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
sys.stderr.write("\\n{_ELAPSED_MARK}%.3f\\n" % (time.perf_counter() - started))
sys.exit(code)
"""


@dataclass(frozen=True)
class Measured:
    """A finished ``seriesgen`` process."""

    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float
    max_rss_bytes: int


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE_CAP, _ADDRESS_SPACE_CAP))


def run_measured(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 120) -> Measured:
    """Run ``seriesgen ARGS`` in a subprocess; return its output, main()'s time and peak RSS."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERIESGEN_")}
    environ.update(env or {})
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen([sys.executable, "-c", _TIMED_MAIN, *args], stdout=out,
                                 stderr=err, env=environ, preexec_fn=_cap_address_space)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail(f"seriesgen {' '.join(args)} ran longer than {timeout} s")
        time.sleep(0.02)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    stderr = err_path.read_text(errors="replace")
    elapsed = float("inf")
    if _ELAPSED_MARK in stderr:
        stderr, _, tail = stderr.rpartition(f"\n{_ELAPSED_MARK}")
        elapsed = float(tail)
    return Measured(returncode=child.returncode, stdout=out_path.read_text(errors="replace"),
                    stderr=stderr, elapsed_s=elapsed, max_rss_bytes=usage.ru_maxrss * 1024)


@pytest.fixture
def loaded_url(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite file holding the small data file of the CLI tests."""
    engine = create_db_engine(sqlite_url)
    upgrade_database(engine)
    load_file(engine, write(tmp_path, "setup.yaml", DEMO_LIKE))
    engine.dispose()
    yield sqlite_url


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_db_engine(url)
    try:
        return table_state(engine)
    finally:
        engine.dispose()


def assert_refused(url: str, tmp_path: Path, path: Path | str, *expected: str,
                   env: dict[str, str] | None = None) -> Measured:
    """Load ``path``: exit 2, each of ``expected`` on stderr, fast, small, nothing written."""
    before = _rows(url)
    done = run_measured(tmp_path, "load", str(path), "--database-url", url, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("seriesgen: error: invalid data file:\n"), done.stderr
    for fragment in expected:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.elapsed_s < TIME_LIMIT_S, done
    assert done.max_rss_bytes < RSS_LIMIT_BYTES, done
    assert _rows(url) == before
    return done


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def alias_bomb(levels: int = 9) -> str:
    """Nine lists of nine aliases of the previous one, the last used as a mapping key.

    Expanded, the key has 9**10 (3.5 billion) leaves; building its text as a field
    name is what took 77 s and 3.1 GB.
    """
    names = "abcdefghijklmnopqrstuvwxyz"[:levels + 1]
    lines = [f"{names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x]"]
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append(f"? *{names[-1]}\n: 1")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- size

def test_a_file_over_the_size_limit_is_refused_without_being_parsed(
        loaded_url: str, tmp_path: Path) -> None:
    # A valid data file padded by a comment to 21 MB: only its size is wrong.
    padding = "# " + "x" * 1000 + "\n"
    text = DEMO_LIKE + padding * (21_000_000 // len(padding))
    path = write(tmp_path, "big.yaml", text)
    size = path.stat().st_size
    assert size > 21_000_000

    assert_refused(loaded_url, tmp_path, path,
                   f"big.yaml: the file is {size:,} bytes, larger than the limit of "
                   "20,000,000 bytes (SERIESGEN_MAX_DATA_FILE_BYTES); split it into several "
                   "files, or raise the limit")


def test_dev_zero_is_read_only_up_to_the_limit(loaded_url: str, tmp_path: Path) -> None:
    done = assert_refused(loaded_url, tmp_path, "/dev/zero",
                          "/dev/zero: the file is larger than the limit of 20,000,000 bytes")
    # It read the limit and one byte, not gigabytes (assert_refused bounds its peak RSS;
    # the interpreter and its imports alone take about half of that bound).
    assert done.max_rss_bytes < RSS_LIMIT_BYTES


def test_a_fifo_without_a_writer_does_not_block(loaded_url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)

    assert_refused(loaded_url, tmp_path, fifo,
                   f"{fifo}: the file is empty; expected base, branches and series")


def test_the_size_limit_is_set_by_an_environment_variable(loaded_url: str,
                                                          tmp_path: Path) -> None:
    path = write(tmp_path, "data.yaml", DEMO_LIKE)
    size = path.stat().st_size

    assert_refused(loaded_url, tmp_path, path,
                   f"the file is {size:,} bytes, larger than the limit of {size - 1:,} bytes",
                   env={"SERIESGEN_MAX_DATA_FILE_BYTES": str(size - 1)})

    done = run_measured(tmp_path, "load", str(path), "--database-url", loaded_url,
                        env={"SERIESGEN_MAX_DATA_FILE_BYTES": str(size)})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("value", ["lots", "0", "-5", "20MB"])
def test_an_unusable_size_limit_is_bad_usage(loaded_url: str, tmp_path: Path,
                                             value: str) -> None:
    path = write(tmp_path, "data.yaml", DEMO_LIKE)
    before = _rows(loaded_url)

    done = run_measured(tmp_path, "load", str(path), "--database-url", loaded_url,
                        env={"SERIESGEN_MAX_DATA_FILE_BYTES": value})

    assert done.returncode == 2
    assert done.stderr == (f"seriesgen: error: SERIESGEN_MAX_DATA_FILE_BYTES={value!r} is not "
                           "a positive whole number of bytes (e.g. 50000000 for 50 MB)\n")
    assert _rows(loaded_url) == before


# ---------------------------------------------------------------- nesting and aliases

def test_an_alias_bomb_used_as_a_mapping_key_never_expands(loaded_url: str,
                                                           tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", alias_bomb())

    assert_refused(loaded_url, tmp_path, path,
                   "bomb.yaml: YAML aliases repeat more than 10,000 values (alias *d at "
                   "line 5, column ")


def test_an_alias_inside_the_node_it_names_is_refused(loaded_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "loop.yaml", DEMO_LIKE + "extra: &loop [1, *loop]\n")
    line = DEMO_LIKE.count("\n") + 1
    column = "extra: &loop [1, *loop]".index("*") + 1

    assert_refused(loaded_url, tmp_path, path,
                   f"loop.yaml: YAML alias *loop at line {line}, column {column} is inside the "
                   "node it names (a recursive structure)")


@pytest.mark.parametrize(("name", "text", "where"), [
    pytest.param("deep.json", "[" * 200_000 + "]" * 200_000, " at line 1, column 65",
                 id="json-200000-deep"),
    pytest.param("deep.yaml", "[" * 200_000 + "]" * 200_000, "", id="yaml-flow-200000-deep"),
    pytest.param("deep.yml", "".join("  " * i + "a:\n" for i in range(200)),
                 " at line 65, column 129", id="yaml-block-200-deep"),
    pytest.param("deep65.json", '{"base": ' + "[" * 64 + "]" * 64 + "}",
                 " at line 1, column 73", id="json-65-deep"),
])
def test_nesting_deeper_than_the_limit_is_refused(loaded_url: str, tmp_path: Path, name: str,
                                                  text: str, where: str) -> None:
    path = write(tmp_path, name, text)

    assert_refused(loaded_url, tmp_path, path,
                   f"{name}: lists and mappings are nested more than 64 levels deep{where}; "
                   "a data file needs 5")


def test_a_few_aliases_still_share_a_block(loaded_url: str, tmp_path: Path) -> None:
    """Anchors are refused only beyond the budget: sharing a config block works."""
    text = DEMO_LIKE.replace("    end_date: 2026-06-30\n",
                             "    end_date: 2026-06-30\n    config: &short {horizon_days: 7}\n"
                             ).replace("    start_date: 2026-01-04\n",
                                       "    start_date: 2026-01-04\n    config: *short\n")
    assert text.count("*short") == 1
    done = run_measured(tmp_path, "load", str(write(tmp_path, "shared.yaml", text)),
                        "--database-url", loaded_url)
    assert done.returncode == 0, done.stderr
    engine = create_db_engine(loaded_url)
    with engine.connect() as conn:
        horizons = conn.execute(sa.text(
            "SELECT s.key, c.horizon_days FROM scheduling_configs c "
            "JOIN class_series s ON s.id = c.series_id ORDER BY s.key")).all()
    engine.dispose()
    assert [tuple(row) for row in horizons] == [("east-early", 7), ("east-yoga", 7)]


# ---------------------------------------------------------------- numbers and dates

def test_a_5000_digit_integer_is_out_of_range_not_a_crash(loaded_url: str,
                                                          tmp_path: Path) -> None:
    huge = "9" * 5000
    yaml_path = write(tmp_path, "huge.yaml",
                      DEMO_LIKE.replace("horizon_days: 14", f"horizon_days: {huge}"))
    json_path = write(tmp_path, "huge.json", f'{{"base": {{"default_capacity": {huge}}}}}')

    assert_refused(loaded_url, tmp_path, yaml_path,
                   "base: field 'horizon_days': a number of 5,000 digits is out of range, "
                   "must be at most 2147483647")
    assert_refused(loaded_url, tmp_path, json_path,
                   "base: field 'default_capacity': a number of 5,000 digits is out of range, "
                   "must be at most 2147483647")


def test_dates_outside_1900_to_2200_are_refused(loaded_url: str, tmp_path: Path) -> None:
    text = DEMO_LIKE.replace("start_date: 2026-01-05", "start_date: 9999-12-31").replace(
        "end_date: 2026-06-30", "end_date: 9999-12-31\n    exdates: [2026-02-16, 1899-12-31]")
    path = write(tmp_path, "far.yaml", text)

    done = assert_refused(
        loaded_url, tmp_path, path,
        "series[0] 'east-yoga': field 'start_date': 9999-12-31 is out of range, must be "
        "1900-01-01..2200-12-31",
        "series[0] 'east-yoga': field 'end_date': 9999-12-31 is out of range",
        "series[0] 'east-yoga': field 'exdates': item 1: 1899-12-31 is out of range")
    assert done.stderr.count("\n  ") == 3


def test_a_grace_that_overflows_the_calendar_is_refused(loaded_url: str,
                                                        tmp_path: Path) -> None:
    path = write(tmp_path, "grace.yaml",
                 DEMO_LIKE.replace("cleanup_grace_days: 0", "cleanup_grace_days: 2147483647"))

    assert_refused(loaded_url, tmp_path, path,
                   "base: field 'cleanup_grace_days': 2147483647 is out of range, must be at "
                   "most 36500")


def test_every_bad_item_of_a_list_is_reported_with_item_and_field(
        loaded_url: str, tmp_path: Path) -> None:
    extra = """\
  - key: far-future
    branch: east
    title: Far
    recurrence: "FREQ=DAILY"
    start_time: "09:00"
    start_date: 2201-01-01
  - key: huge-capacity
    branch: east
    title: Huge
    capacity: 123456789012345678901234567890
    recurrence: "FREQ=DAILY"
    start_time: "09:00"
    start_date: 2026-01-01
  - key: fine
    branch: east
    title: Fine
    recurrence: "FREQ=DAILY"
    start_time: "09:00"
    start_date: 2026-01-01
  - key: long-duration
    branch: east
    title: Long
    recurrence: "FREQ=DAILY"
    start_time: "09:00"
    duration_minutes: 1441
    start_date: 2026-01-01
"""
    path = write(tmp_path, "many.yaml", DEMO_LIKE + extra)

    done = assert_refused(
        loaded_url, tmp_path, path,
        "series[2] 'far-future': field 'start_date': 2201-01-01 is out of range",
        "series[3] 'huge-capacity': field 'capacity': a number of more than 18 digits is out "
        "of range, must be 0..2147483647",
        "series[5] 'long-duration': field 'duration_minutes': 1441 is out of range, must be "
        "1..1440")
    assert done.stderr.count("\n  ") == 3  # the valid items are not reported

