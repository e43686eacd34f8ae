"""class_sessions' triggers: their statements run without JIT compilation

PostgreSQL compiles a statement to machine code (JIT) when its estimated cost is
high. The trigger that logs what an ``UPDATE`` of ``class_sessions`` changed
(migration 0006) is estimated high as soon as the statement updates thousands of
rows, and compiling took about 0.6 s of every such statement, four times the
trigger's own work (an update of 13,622 rows: the trigger took 0.78-0.83 s with
JIT, 0.20-0.22 s without). A night that reconciles edited series updates their
rows in statements of up to 5,000 rows, and so paid it for each. The functions
now turn JIT off for their own statements, whoever writes: the generator, the
booking app, raw SQL.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The functions of the statement triggers of migration 0006.
FUNCTIONS = ("seriesgen_log_sessions_inserted", "seriesgen_log_sessions_updated",
             "seriesgen_log_sessions_deleted")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no JIT
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() SET jit = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() RESET jit")
