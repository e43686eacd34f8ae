"""Text fields refuse control characters, the same way on SQLite and on PostgreSQL.

Before: a NUL in a title loaded on SQLite (stored as is) and failed on PostgreSQL
with a ``psycopg.DataError`` traceback and exit 1; ``"18:00\\n"`` passed as a time
of day. Now the data file's validation refuses every control character (Unicode
category Cc: U+0000..U+001F, U+007F..U+009F, tab and newline included) and every
unpaired surrogate in any field given as text, before the database is touched:

- ``seriesgen load`` exits 2, each problem names the item, the field and the
  character (``series[0] 'east-yoga': field 'title': contains a control character
  (U+0000)``), every problem of the file is listed, no traceback, nothing written;
- text outside ASCII that is not a control character (accents, dashes, emoji,
  CJK) still loads and reads back unchanged.

Each test drives the real ``seriesgen`` command in a subprocess, on a real SQLite
file and on a real PostgreSQL database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.persistence.db import create_db_engine, upgrade_database
from seriesgen_pipeline.service.loading import load_file
from seriesgen_pipeline_tests.cli.helpers import DEMO_LIKE, run_cli
from seriesgen_pipeline_tests.service.test_loading import table_state

YOGA = "series[0] 'east-yoga'"


@pytest.fixture
def app_db(db_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """A migrated database (SQLite file or PostgreSQL) holding the small data file."""
    engine = create_db_engine(db_url)
    upgrade_database(engine)
    setup = tmp_path / "setup.yaml"
    setup.write_text(DEMO_LIKE, encoding="utf-8")
    load_file(engine, setup)
    yield engine
    engine.dispose()


def _edit(old: str, new: str, text: str = DEMO_LIKE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _load_refused(engine: sa.Engine, db_url: str, path: Path) -> list[str]:
    """``seriesgen load PATH``: exit 2, no traceback, nothing written; the problems listed."""
    before = table_state(engine)
    done = run_cli("load", str(path), "--database-url", db_url)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("seriesgen: error: invalid data file:\n  "), done.stderr
    assert table_state(engine) == before
    return done.stderr.removeprefix("seriesgen: error: invalid data file:\n  ").rstrip(
        "\n").split("\n  ")


def test_every_text_field_refuses_control_characters(app_db: sa.Engine, db_url: str,
                                                     tmp_path: Path) -> None:
    # YAML double-quoted escapes: \0 NUL, \t tab, \n newline, \x7f DEL, \x85 NEL (C1),
    # \x01 SOH, \x1f US.
    text = DEMO_LIKE
    for old, new in [
        ("    name: East\n", '    name: "East\\0Side"\n'),
        ("    title: Yoga Basics\n", '    title: "Yoga\\0Basics"\n'),
        ("    instructor: Ana\n", '    instructor: "Ana\\tB"\n'),
        ("    room: Studio 2\n", '    room: "Studio\\n2"\n'),
        ('    recurrence: "FREQ=WEEKLY;BYDAY=MO,WE"\n',
         '    recurrence: "FREQ=WEEKLY;BYDAY=MO,WE\\x7f"\n'),
        ('    start_time: "18:00"\n', '    start_time: "18:00\\n"\n'),
        ("    end_date: 2026-06-30\n",
         '    end_date: 2026-06-30\n    config: {timezone: "UTC\\x85"}\n'),
        ("  - key: east-early\n", '  - key: "east\\x01early"\n'),
        ("    room: Bike Room\n", '    room: "Bike\\x1fRoom"\n'),
        ("config: {timezone: America/New_York,",
         'config: {timezone: "America/New_York\\0",'),
    ]:
        text = _edit(old, new, text)
    path = tmp_path / "control.yaml"
    path.write_text(text, encoding="utf-8")

    problems = _load_refused(app_db, db_url, path)

    assert problems == [
        "branches[0] 'east': field 'name': contains a control character (U+0000)",
        "branches[0] 'east': config: field 'timezone': contains a control character (U+0000)",
        f"{YOGA}: field 'title': contains a control character (U+0000)",
        f"{YOGA}: field 'instructor': contains a control character (U+0009)",
        f"{YOGA}: field 'room': contains a control character (U+000A)",
        f"{YOGA}: field 'recurrence': contains a control character (U+007F)",
        f"{YOGA}: field 'start_time': contains a control character (U+000A)",
        f"{YOGA}: config: field 'timezone': contains a control character (U+0085)",
        "series[1] 'east\\x01early': field 'key': contains a control character (U+0001)",
        "series[1] 'east\\x01early': field 'room': contains a control character (U+001F)",
    ]


def test_json_escapes_of_nul_and_lone_surrogates_are_refused(app_db: sa.Engine, db_url: str,
                                                             tmp_path: Path) -> None:
    document = {
        "branches": [{"id": "east", "name": "East"}],
        "series": [{
            "key": "east-yoga", "branch": "east", "title": "Yoga\u0000Basics",
            "room": "Studio \ud800", "recurrence": "FREQ=WEEKLY;BYDAY=MO",
            "start_time": "18:00", "start_date": "2026-01-05",
        }],
    }
    path = tmp_path / "control.json"
    path.write_text(json.dumps(document), encoding="utf-8")  # ensure_ascii: \u0000, \ud800
    assert "\\u0000" in path.read_text() and "\\ud800" in path.read_text()

    problems = _load_refused(app_db, db_url, path)

    assert problems == [
        f"{YOGA}: field 'title': contains a control character (U+0000)",
        f"{YOGA}: field 'room': contains an unpaired surrogate (U+D800)",
    ]


def test_text_beyond_ascii_still_loads_unchanged(app_db: sa.Engine, db_url: str,
                                                 tmp_path: Path) -> None:
    title, instructor, room = "Yoga — Zürich ☀", "Zoë 李", "Studio\u00a02 (Ost)"
    text = _edit("    title: Yoga Basics\n", f"    title: {title}\n")
    text = _edit("    instructor: Ana\n", f'    instructor: "{instructor}"\n', text)
    text = _edit("    room: Studio 2\n", f'    room: "{room}"\n', text)
    path = tmp_path / "unicode.yaml"
    path.write_text(text, encoding="utf-8")

    done = run_cli("load", str(path), "--database-url", db_url)

    assert done.returncode == 0, done.stderr
    with app_db.connect() as conn:
        row = conn.execute(sa.select(repo.series_t.c.title, repo.series_t.c.instructor,
                                     repo.series_t.c.room, repo.series_t.c.version)
                           .where(repo.series_t.c.key == "east-yoga")).one()
    assert tuple(row) == (title, instructor, room, 2)
