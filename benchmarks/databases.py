"""The benchmarks' databases: made, refused or reset, analyzed, counted, dropped.

A benchmark writes synthetic data, so its application database must be empty or
disposable: ``prepare_database`` refuses one that holds series or sessions unless
told to drop every table. ``create_database`` and ``drop_database`` make and remove
throw-away PostgreSQL databases on a server (``daemon_night.py``'s rounds).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import normalize_url, upgrade_database


def prepare_database(engine: sa.Engine, *, reset: bool) -> str | None:
    """Refuse a database with data unless ``reset``; leave the schema current.

    Returns a reason to refuse, or None.
    """
    tables = set(sa.inspect(engine).get_table_names())
    if not reset:
        with engine.connect() as conn:
            for name in ("class_series", "class_sessions"):
                if name in tables:
                    count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
                    if count:
                        return (f"{name} already holds {count} rows: give an empty or disposable "
                                "database, or --reset to drop every table and start over")
    if reset and tables:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    upgrade_database(engine)
    return None


def autovacuum_setting(engine: sa.Engine) -> str | None:
    """PostgreSQL's ``autovacuum`` setting (None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW autovacuum").scalar_one())


def analyze(engine: sa.Engine) -> None:
    """Refresh the planner statistics, as autovacuum would between two nights."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def analyze_url(url: str) -> None:
    """``analyze`` the PostgreSQL database at ``url`` (Dagster's storage): with the
    server's autovacuum off, a Dagster database reused by a benchmark keeps the
    statistics of the rows it wiped, and its partition reads slow down by seconds."""
    engine = sa.create_engine(url)
    try:
        analyze(engine)
    finally:
        engine.dispose()


def count_rows(engine: sa.Engine, table: str) -> int:
    """Rows of ``table`` now."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _on_server(server_url: str, statement: str) -> None:
    """Run ``statement`` outside a transaction, connected to the server's ``postgres``."""
    url = make_url(normalize_url(server_url)).set(database="postgres")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def create_database(server_url: str, prefix: str) -> str:
    """A new empty database on the server; its URL (``postgresql://``, password kept)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _on_server(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(normalize_url(server_url)).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database`` (its sessions terminated)."""
    name = make_url(normalize_url(url)).database
    _on_server(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dagster_url(url: str) -> str:
    """The same database for dagster-postgres (its own driver, psycopg2)."""
    return make_url(normalize_url(url)).set(drivername="postgresql+psycopg2").render_as_string(
        hide_password=False)
