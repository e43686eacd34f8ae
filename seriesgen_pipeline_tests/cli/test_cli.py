"""The ``seriesgen`` command line (SPEC §9), run as a real subprocess on real databases.

Contract: JSON and CSV outputs hold that document alone on standard output, in
the documented shape and order; exit codes are 0 success, 1 some series failed
(the others generated), 2 bad usage, bad input or the safeguard; no user error
prints a Python traceback.
"""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa

from seriesgen_pipeline_tests.cli.helpers import BROKEN_SERIES, NOW, prepared, run_cli


def test_generate_json_then_sessions_json(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    done = run_cli("generate", "--all", "--now", NOW, "--format", "json",
                   "--database-url", sqlite_url)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) >= {"run_id", "series", "totals", "duration_ms"}
    by_key = {s["key"]: s for s in doc["series"]}
    # Window 03-02 12:00Z .. 03-16 12:00Z: Mon/Wed 18:00 New York = 4 sessions; Sundays 2.
    assert by_key["east-yoga"]["created"] == 4
    assert by_key["east-early"]["created"] == 2
    assert doc["totals"]["created"] == 6
    assert {s["status"] for s in doc["series"]} == {"success"}

    listed = run_cli("sessions", "--format", "json", "--database-url", sqlite_url)
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    assert [s["series_key"] for s in sessions] == ["east-early"] * 2 + ["east-yoga"] * 4
    first_yoga = sessions[2]
    assert first_yoga == {
        "series_key": "east-yoga", "occurrence_key": "2026-03-02", "branch": "east",
        "title": "Yoga Basics", "instructor": "Ana", "room": "Studio 2", "capacity": 20,
        "timezone": "America/New_York", "starts_at": "2026-03-02T23:00:00Z",
        "ends_at": "2026-03-03T00:00:00Z", "local_start": "2026-03-02T18:00:00-05:00",
        "status": "scheduled", "detached": False, "booked_count": 0,
    }
    # After New York springs forward on 03-08 the wall time stays 18:00.
    assert sessions[4]["starts_at"] == "2026-03-09T22:00:00Z"
    assert sessions[4]["local_start"] == "2026-03-09T18:00:00-04:00"

    again = run_cli("generate", "--all", "--now", NOW, "--format", "json",
                    "--database-url", sqlite_url)
    assert json.loads(again.stdout)["totals"]["created"] == 0


def test_sessions_csv_and_filters(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    assert run_cli("generate", "--all", "--now", NOW, "--database-url", sqlite_url
                   ).returncode == 0
    done = run_cli("sessions", "--format", "csv", "--series", "east-yoga", "--from",
                   "2026-03-04", "--to", "2026-03-09", "--database-url", sqlite_url)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["occurrence_key"] for r in rows] == ["2026-03-04", "2026-03-09"]
    assert rows[0]["starts_at"] == "2026-03-04T23:00:00Z"


def test_broken_series_exits_1_and_others_are_generated(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path, BROKEN_SERIES)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # broken after loading: as a raw edit would leave it
        conn.execute(sa.text("UPDATE class_series SET recurrence = 'FREQ=HOURLY' "
                             "WHERE key = 'east-broken'"))
    done = run_cli("generate", "--all", "--now", NOW, "--format", "json",
                   "--database-url", sqlite_url)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    status = {s["key"]: s["status"] for s in doc["series"]}
    assert status == {"east-broken": "failed", "east-early": "success", "east-yoga": "success"}
    error = next(s["error"] for s in doc["series"] if s["key"] == "east-broken")
    assert "FREQ=HOURLY" in error and "recurrence" in error
    conflicts = json.loads(run_cli("conflicts", "--format", "json", "--database-url",
                                   sqlite_url).stdout)
    assert {(c["series_key"], c["code"], c["severity"]) for c in conflicts} >= {
        ("east-broken", "INVALID_RRULE", "ERROR"), ("east-early", "OUTSIDE_BUSINESS_HOURS", "WARN")}


def test_dry_run_writes_nothing(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    done = run_cli("generate", "--all", "--now", NOW, "--dry-run", "--format", "json",
                   "--database-url", sqlite_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["created"] == 6
    listed = json.loads(run_cli("sessions", "--format", "json", "--database-url",
                                sqlite_url).stdout)
    assert listed == []


def test_usage_and_input_errors_exit_2_without_traceback(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("series:\n  - key: x\n    colour: red\n")
    cases = [
        (("generate", "--series", "nope"), "unknown series: nope"),
        (("generate", "--all", "--now", "yesterday"), "not an ISO-8601 instant"),
        (("load", str(bad)), "colour"),
        (("load", str(tmp_path / "missing.yaml")), "missing.yaml"),
        (("generate",), "one of the arguments --all --series is required"),
        (("sessions", "--from", "2026-02-30"), "is not a date"),
    ]
    for args, message in cases:
        done = run_cli(*args, "--database-url", sqlite_url)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)


def test_unmigrated_database_and_unknown_environment(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    done = run_cli("sessions", "--database-url", url)
    assert done.returncode == 2
    assert "seriesgen db upgrade" in done.stderr
    odd = run_cli("sessions", "--database-url", url, env={"SERIESGEN_ENV": "prod"})
    assert odd.returncode == 2
    assert "SERIESGEN_ENV='prod'" in odd.stderr


def test_stats_summarises_runs_per_branch_and_day(sqlite_url, tmp_path):
    prepared(sqlite_url, tmp_path)
    for now in (NOW, "2026-03-03T12:00:00Z"):
        assert run_cli("generate", "--all", "--now", now, "--database-url", sqlite_url
                       ).returncode == 0
    done = run_cli("stats", "--format", "json", "--database-url", sqlite_url)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)  # one branch, runs logged today
    assert row["branch"] == "east"
    assert row["runs"] == 2 and row["series_runs"] == 4
    # First night: 4 + 2 sessions; next night: Wednesday 03-16 18:00 EDT enters the window.
    assert row["created"] == 7
    assert row["failures"] == 0
    assert row["p50_ms"] >= 0 and row["p95_ms"] >= row["p50_ms"]
