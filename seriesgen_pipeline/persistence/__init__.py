"""SQLAlchemy models, Alembic migrations, queries and bulk writes.

The data layer never commits: the caller (the engine, the CLI) owns the
transaction.
"""
