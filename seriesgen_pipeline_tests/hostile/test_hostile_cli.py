"""Every subcommand, given hostile arguments, answers with a message and the contract's
exit code, never a traceback; read-only commands create nothing (SPEC §9).

Exit codes: 2 for bad usage, bad input, an unusable database URL or database, the
safeguard; 1 when series failed or rows could not be read; 130 when interrupted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from seriesgen_pipeline_tests.cli.helpers import NOW, prepared, run_cli

BAD_URLS = ["foo://u:p@h/x", "mysql://u:secret@localhost/x", "not a url", "sqlite://:x:/",
            "postgresql://postgres@127.0.0.1:1/x"]
COMMANDS = [("sessions",), ("conflicts",), ("stats",), ("generate", "--all", "--dry-run"),
            ("generate", "--all"), ("load", "/dev/null"), ("db", "upgrade"), ("demo",)]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_an_unusable_database_url_is_exit_2_with_a_message(url: str, command: tuple[str, ...],
                                                           tmp_path: Path) -> None:
    done = run_cli(*command, "--database-url", url, cwd=tmp_path,
                   env={"DAGSTER_HOME": str(tmp_path / "dagster")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("seriesgen: error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "secret" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created, not even DAGSTER_HOME


@pytest.mark.parametrize("args, message", [
    (("stats", "--days", "99999999999"), "must be 1..3660"),
    (("stats", "--days", "0"), "must be 1..3660"),
    (("stats", "--days", "x" * 5000), "is not a whole number"),
    (("sessions", "--from", "2026-02-30"), "is not a date"),
    (("generate", "--all", "--now", ""), "--now is empty"),
    (("generate", "--all", "--now", "  "), "--now is empty"),
    (("generate", "--all", "--now", "9999-12-31T23:59:59Z"), "is out of range"),
    (("generate", "--all", "--now", "0001-01-01T00:00:00Z"), "is out of range"),
    (("generate", "--all", "--now", "tomorrow"), "is not an ISO-8601 instant"),
    (("generate", "--all", "--dry-run", "--now", ""), "--now is empty"),
    (("generate", "--series", "no-such-series", "--now", NOW), "unknown series"),
    (("load", "/nonexistent/file.yaml"), "/nonexistent/file.yaml"),
    (("nonsense",), "invalid choice"),
])
def test_bad_arguments_are_exit_2_with_a_message(args: tuple[str, ...], message: str,
                                                 sqlite_url: str, tmp_path: Path) -> None:
    prepared(sqlite_url, tmp_path)
    before = _count_sessions(sqlite_url)

    done = run_cli(*args, "--database-url", sqlite_url,
                   env={"DAGSTER_HOME": str(tmp_path / "dagster")})

    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert _count_sessions(sqlite_url) == before == 0


def _count_sessions(url: str) -> int:
    import sqlalchemy as sa

    from seriesgen_pipeline.persistence.db import create_db_engine

    engine = create_db_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM class_sessions")).scalar_one()
    engine.dispose()
    return int(count)


@pytest.mark.parametrize("command", [("sessions",), ("conflicts",), ("stats",),
                                     ("generate", "--all", "--dry-run"), ("generate", "--all")],
                         ids=lambda c: " ".join(c))
def test_read_only_commands_create_no_file_or_directory(command: tuple[str, ...],
                                                        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/dir/x.db"
    done = run_cli(*command, "--database-url", url, cwd=tmp_path,
                   env={"DAGSTER_HOME": str(tmp_path / "home")})
    assert done.returncode == 2
    assert "does not exist; run `seriesgen db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_default_database_is_not_created_by_a_read_only_command(tmp_path: Path) -> None:
    done = run_cli("sessions", cwd=tmp_path)
    assert done.returncode == 2
    assert not (tmp_path / ".seriesgen").exists()


def test_a_relative_dagster_home_is_refused_before_anything_is_created(
        sqlite_url: str, tmp_path: Path) -> None:
    prepared(sqlite_url, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    done = run_cli("generate", "--all", "--now", NOW, "--database-url", sqlite_url, cwd=work,
                   env={"DAGSTER_HOME": "relative/dir"})
    assert done.returncode == 2
    assert "DAGSTER_HOME=relative/dir must be an absolute path" in done.stderr
    assert list(work.iterdir()) == []


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
def test_a_run_level_failure_names_its_real_cause(sqlite_url: str, tmp_path: Path) -> None:
    """A database file that cannot be written fails the run before any series: the
    user is told why, on standard error, and not only pointed at the Dagster UI."""
    prepared(sqlite_url, tmp_path)
    path = sqlite_url.removeprefix("sqlite:///")
    subprocess.run(["sqlite3", path, "PRAGMA wal_checkpoint(TRUNCATE)"], check=False,
                   capture_output=True)
    if subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
        pytest.skip("the file system does not support the immutable attribute")
    try:
        done = run_cli("generate", "--all", "--now", NOW, "--database-url", sqlite_url,
                       env={"DAGSTER_HOME": str(tmp_path / "dagster")})
    finally:
        subprocess.run(["chattr", "-i", path], check=True)
    assert done.returncode == 1
    assert "failed: sqlite3.OperationalError: attempt to write a readonly database" in (
        done.stderr)
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unexpected_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    """A directory where the data file should be: an OSError, reported as bad input."""
    (tmp_path / "dir.yaml").mkdir()
    url = f"sqlite:///{tmp_path}/app.db"
    assert run_cli("db", "upgrade", "--database-url", url).returncode == 0
    done = run_cli("load", str(tmp_path / "dir.yaml"), "--database-url", url)
    assert done.returncode == 2
    assert done.stderr.startswith("seriesgen: error: ")
    assert "Traceback" not in done.stderr
    assert os.path.isdir(tmp_path / "dir.yaml")
