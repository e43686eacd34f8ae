"""Engines, migrations and URL hygiene for the application database."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite:///.seriesgen/seriesgen.db"


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password masked: the only form that may be logged or shown."""
    try:
        return make_url(str(url) if not isinstance(url, sa.URL) else url).render_as_string(
            hide_password=True
        )
    except Exception:
        return "<unparsable database URL>"


def normalize_url(url: str) -> str:
    """Map ``postgres://`` and plain ``postgresql://`` onto the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def create_db_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE``: it takes the
    database write lock up front, so two writers queue instead of failing with
    a deadlock on lock upgrade.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 120})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=120000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config(str(files("seriesgen_pipeline.persistence") / "alembic.ini"))
    cfg.set_main_option(
        "script_location", str(files("seriesgen_pipeline.persistence") / "migrations")
    )
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_database(engine: sa.Engine) -> None:
    """Create or migrate the schema to the newest revision."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes upgrading at once queue here instead of racing.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7243001)")
        command.upgrade(_alembic_config(connection), "head")


def schema_is_current(engine: sa.Engine) -> bool:
    """True when the database is at the newest migration."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return current == head


def database_url_from_env() -> str:
    """``SERIESGEN_DATABASE_URL`` or the default SQLite file."""
    return os.environ.get("SERIESGEN_DATABASE_URL") or DEFAULT_DATABASE_URL
