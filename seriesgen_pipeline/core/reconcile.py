"""The reconciliation plan: from desired sessions and existing rows to writes (SPEC §5).

The plan is computed per series and is pure. Rules:

- an existing row that started before ``now`` is past: never created, changed or
  deleted; it keeps its occurrence (no second row for it);
- a future row that is protected (``detached``, booked, or cancelled) is left as
  it is and keeps its occurrence; it counts as ``protected``;
- any other future row is updated in place when its occurrence is still wanted
  and an attribute differs, and deleted when its occurrence is no longer wanted;
- every wanted occurrence without a row is created.

The plan's writes are applied in occurrence order (``ordered_operations``): a
create is the values of the new row, an update the row and its new values, a
delete the row and the occurrence it holds.

Writers other than seriesgen (the booking app) may change rows between the
plan and the write: the persistence layer re-checks protection in the write
itself, so a booking made meanwhile survives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import TypeAlias

SCHEDULED = "scheduled"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class SessionValues:
    """The attributes of a session that the generator owns."""

    occurrence_key: str
    branch_id: str
    title: str
    instructor: str | None
    room: str | None
    capacity: int
    timezone: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class ExistingSession:
    """A row of ``class_sessions`` as the planner needs it."""

    id: int
    values: SessionValues
    status: str
    detached: bool
    booked_count: int

    @property
    def protected(self) -> bool:
        """Staff edited or cancelled it, or a member booked it: the generator keeps out."""
        return self.detached or self.booked_count > 0 or self.status != SCHEDULED


@dataclass(frozen=True)
class Update:
    """Rewrite the generator-owned attributes of row ``id``."""

    id: int
    values: SessionValues

    @property
    def occurrence_key(self) -> str:
        """The occurrence the row holds (an update never moves a row to another)."""
        return self.values.occurrence_key


@dataclass(frozen=True)
class Delete:
    """Delete row ``id``.

    The row's occurrence comes with it, so that a series' deletes take their place
    among its creates and updates in occurrence order.
    """

    id: int
    occurrence_key: str


# One write of a plan. A create is the values of the new row as they are: a run
# of a million creates wraps none of them.
Operation: TypeAlias = SessionValues | Update | Delete


@dataclass(frozen=True)
class ReconciliationPlan:
    """What one run writes for one series."""

    creates: tuple[SessionValues, ...]
    updates: tuple[Update, ...]
    deletes: tuple[int, ...]
    protected: tuple[int, ...]

    @property
    def is_empty(self) -> bool:
        """True when nothing is to be written."""
        return not (self.creates or self.updates or self.deletes)


_COMPARED = tuple(f.name for f in fields(SessionValues))


def differs(current: SessionValues, wanted: SessionValues) -> bool:
    """True when a generator-owned attribute differs (instants compared as instants)."""
    return any(getattr(current, name) != getattr(wanted, name) for name in _COMPARED)


def plan_reconciliation(
    desired: Iterable[SessionValues],
    existing: Iterable[ExistingSession],
    *,
    now: datetime,
) -> ReconciliationPlan:
    """Plan the writes that make one series' future sessions match ``desired``.

    Args:
        desired: the sessions the rule wants in the window (one per occurrence key).
        existing: the series' rows that are in the future, plus any row whose
            occurrence key is wanted (it may be past).
        now: rows starting before it are past.

    Returns:
        Creates, updates and deletes, ordered by occurrence key, and the
        protected rows left alone.
    """
    wanted = {d.occurrence_key: d for d in desired}
    creates: list[SessionValues] = []
    updates: list[Update] = []
    deletes: list[tuple[str, int]] = []
    protected: list[int] = []
    taken: set[str] = set()
    for row in existing:
        key = row.values.occurrence_key
        taken.add(key)
        if row.values.starts_at < now:
            continue
        if row.protected:
            protected.append(row.id)
            continue
        target = wanted.get(key)
        if target is None:
            deletes.append((key, row.id))
        elif differs(row.values, target):
            updates.append(Update(row.id, target))
    for key in sorted(wanted):
        if key not in taken:
            creates.append(wanted[key])
    updates.sort(key=lambda u: u.values.occurrence_key)
    deletes.sort()
    return ReconciliationPlan(
        creates=tuple(creates),
        updates=tuple(updates),
        deletes=tuple(row_id for _, row_id in deletes),
        protected=tuple(sorted(protected)),
    )


_BY_OCCURRENCE = attrgetter("occurrence_key")


def ordered_operations(plan: ReconciliationPlan,
                       existing: Iterable[ExistingSession]) -> list[Operation]:
    """The writes of ``plan`` in occurrence-key order.

    ``existing`` are the rows the plan was made from (they name the occurrence of
    each deleted row). Applied in this order, the writes of a series reach each
    occurrence once, so how far they have got is one occurrence key.
    """
    operations: list[Operation] = list(plan.creates)
    if plan.updates or plan.deletes:
        operations += plan.updates
        held = {row.id: row.values.occurrence_key for row in existing}
        operations += [Delete(row_id, held[row_id]) for row_id in plan.deletes]
        operations.sort(key=_BY_OCCURRENCE)
    return operations
