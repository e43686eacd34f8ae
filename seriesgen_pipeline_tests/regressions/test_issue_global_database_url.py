"""Issue: ``--database-url`` given before the subcommand is silently ignored.

Contract (SPEC §9): every command takes ``--database-url``; the URL given is
the database the command uses, wherever the option stands on the command line.

Bug: ``seriesgen --database-url URL db upgrade`` (and ``load``, ``generate``,
``sessions`` ...) use ``SERIESGEN_DATABASE_URL`` or the default
``sqlite:///.seriesgen/seriesgen.db`` instead of URL: the subcommand parsers
inherit ``--database-url`` from the same parent parser, and their default
(``None``) overwrites the value the top-level parser stored. An operator who
types the option first works on another database than the one named — with
``SERIESGEN_DATABASE_URL`` set, on that one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from seriesgen_pipeline_tests.failure import harness as h


def _migrated(path: Path) -> bool:
    if not path.exists():
        return False
    with sqlite3.connect(path) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'").fetchone()[0])


def test_database_url_after_the_subcommand_is_used(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    work = tmp_path / "cwd"
    h.run(["db", "upgrade", "--database-url", h.sqlite_url(chosen)], env=h.child_env(None),
          workdir=work)
    assert _migrated(chosen)
    assert not (work / ".seriesgen" / "seriesgen.db").exists()


def test_database_url_before_the_subcommand_is_used(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    work = tmp_path / "cwd"
    h.run(["--database-url", h.sqlite_url(chosen), "db", "upgrade"], env=h.child_env(None),
          workdir=work)
    assert not (work / ".seriesgen" / "seriesgen.db").exists(), \
        "the default database was migrated instead of the one named"
    assert _migrated(chosen)
