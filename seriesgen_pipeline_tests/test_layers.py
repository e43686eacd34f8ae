"""The layers import downwards only: core -> persistence -> service -> defs -> cli.

The domain core (recurrence, time zones, configuration, reconciliation, the data
file) imports neither Dagster nor SQLAlchemy, so it can be read and tested on its
own; persistence and service import nothing of Dagster; SQL is built and run in
persistence only. Checked on the source text of every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "seriesgen_pipeline"
SQL_BUILDERS = {"select", "insert", "update", "delete", "text"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(layer: str) -> list[Path]:
    found = sorted((PACKAGE / layer).rglob("*.py"))
    assert found, layer
    return found


def test_core_imports_neither_dagster_nor_sqlalchemy() -> None:
    for path in modules("core"):
        assert not imported_roots(path) & {"dagster", "sqlalchemy", "alembic"}, path


def test_persistence_and_service_import_no_dagster() -> None:
    for path in modules("persistence") + modules("service"):
        assert "dagster" not in imported_roots(path), path


def sql_calls(path: Path) -> list[int]:
    """Lines that build or run SQL: ``sa.select(...)`` and its kin, ``exec_driver_sql``,
    or those functions imported from SQLAlchemy by name."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            if {alias.name for alias in node.names} & SQL_BUILDERS:
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and (
                node.attr == "exec_driver_sql"
                or (node.attr in SQL_BUILDERS and isinstance(node.value, ast.Name)
                    and node.value.id in ("sa", "sqlalchemy"))):
            lines.append(node.lineno)
    return lines


def test_sql_is_built_only_in_persistence() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "persistence" not in p.parts]
    assert len(outside) > 10
    for path in outside:
        assert not sql_calls(path), path


def test_the_sql_check_finds_sql() -> None:
    assert sql_calls(PACKAGE / "persistence" / "repository" / "inputs.py")
