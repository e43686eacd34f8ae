"""Engines, migrations and URL hygiene for the application database."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.types.array import ListBinaryDumper
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite:///.seriesgen/seriesgen.db"


# Query parameters that carry a secret in the URL forms SQLAlchemy and libpq accept.
_SECRET_PARAMS = ("password", "sslpassword", "passfile", "sslkey")
_MASK = "***"


def safe_url(url: str | sa.URL) -> str:
    """The URL with every secret masked: the only form that may be logged or shown.

    Masks the password of the user-info part and the secret query parameters
    (``password=``, ``sslpassword=`` …). Text that is not a URL is not echoed.
    """
    try:
        parsed = make_url(url) if isinstance(url, sa.URL) else make_url(str(url))
    except Exception:
        return "<unparsable database URL>"
    query = {name: (_MASK if name.lower() in _SECRET_PARAMS else value)
             for name, value in parsed.query.items()}
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace("%2A%2A%2A", _MASK)  # the query part is URL-encoded


def mask_secrets(text: str, url: str | sa.URL | None) -> str:
    """``text`` with the secrets of ``url`` (its password and secret parameters) masked.

    For messages that may quote the URL or its parts, such as a driver's error.
    """
    if url is None:
        return text
    try:
        parsed = make_url(url) if isinstance(url, sa.URL) else make_url(str(url))
    except Exception:
        return text
    secrets = [parsed.password] if parsed.password else []
    for name, value in parsed.query.items():
        if name.lower() in _SECRET_PARAMS:
            secrets.extend([value] if isinstance(value, str) else list(value))
    # Very short secrets are not searched for: they would mask ordinary words, and a
    # message shows the URL only in its masked form anyway.
    for secret in sorted((str(s) for s in secrets if s and len(str(s)) >= 4), key=len,
                         reverse=True):
        text = text.replace(secret, _MASK)
    return text


def normalize_url(url: str) -> str:
    """Map ``postgres://`` and plain ``postgresql://`` onto the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class DatabaseUrlError(ValueError):
    """The database URL is malformed, of an unsupported kind, or names no database."""


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_db_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE``: it takes the
    database write lock up front, so two writers queue instead of failing with
    a deadlock on lock upgrade. With ``create`` false, a SQLite file (and its
    directory) that does not exist is an error instead of being created.

    Raises:
        DatabaseUrlError: a malformed or unsupported URL, or a missing SQLite file.
    """
    url = normalize_url(url)
    try:
        parsed = make_url(url)
        parsed.get_backend_name()
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise DatabaseUrlError(f"{safe_url(url)} is not a database URL "
                               "(e.g. sqlite:///path/to/file.db or "
                               "postgresql://user@host/db)") from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseUrlError(f"{safe_url(url)}: unsupported database "
                               f"'{parsed.get_backend_name()}' (use sqlite or postgresql)")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            if not create and not Path(database).is_file():
                raise DatabaseUrlError(f"the database file {database} does not exist; "
                                       "run `seriesgen db upgrade` to create it")
            if create:
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
    engine = sa.create_engine(url, pool_pre_ping=True)
    if parsed.get_driver_name() == "psycopg":

        @sa.event.listens_for(engine, "connect")
        def _binary_lists(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # A list bound as a parameter (the arrays of ``= ANY(...)`` and of
            # ``unnest(...)``) is sent in binary: psycopg's text format formats each
            # element in Python, ten times slower for timestamps.
            dbapi_conn.adapters.register_dumper(list, ListBinaryDumper)

    return engine


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

