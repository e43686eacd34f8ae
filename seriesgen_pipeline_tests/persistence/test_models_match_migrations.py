"""The SQLAlchemy models and the Alembic migrations describe the same schema.

Contract: on SQLite and on PostgreSQL, a database migrated to the newest revision
differs from ``models.Base.metadata`` in nothing Alembic's autogenerate compares
(tables, columns, their types and lengths, nullability, indexes, unique
constraints). The column widths of the models come from ``core/limits.py``, so a
change of a limit that no migration follows fails here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from seriesgen_pipeline.persistence.db import upgrade_database
from seriesgen_pipeline.persistence.models import Base


def test_a_migrated_database_matches_the_models(engine: sa.Engine) -> None:
    upgrade_database(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []
