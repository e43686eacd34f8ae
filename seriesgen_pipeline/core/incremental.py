"""Incremental generation: when a series' last generation still holds, and how far writes got.

A run need not expand and plan a whole window for every series. Rules:

- a series *continues* its last complete generation (only the occurrences beyond
  that generation's end are expanded and planned) when its content and
  configuration (``fingerprint``) and the time-zone database are unchanged, that
  generation finished (the watermark is its end), the window does not shrink, its
  state is complete, and a full reconcile happened within ``FULL_RECONCILE_EVERY``;
- a series is *settled* when it continues a generation made as of this very
  ``now`` that reached its window's end: it has nothing to expand, and, while its
  row count holds and no row of it starts beyond that end, nothing to write (a
  rerun of a night finds most series so, and decides it for all of them at once);
- a continued plan compares the new occurrences with the rows after the old end,
  plus any row holding one of those occurrences (``rows_beyond``);
- a series' writes are applied in occurrence order, in chunks; once the first
  ``applied`` of them are committed, every occurrence up to ``watermark(...)`` is
  as the plan wants it, and the series' watermark may move there;
- the count of a series' rows from ``now`` on once its plan is written follows
  from the count before and the plan (``rows_from_after``): no need to count again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from seriesgen_pipeline.core.occurrences import Window
from seriesgen_pipeline.core.reconcile import (
    ExistingSession,
    Operation,
    SessionValues,
    Update,
)

FULL_RECONCILE_EVERY = timedelta(days=7)


class GenerationState(Protocol):
    """What a series' last complete generation left behind (a ``generation_state`` row)."""

    @property
    def fingerprint(self) -> str:
        """The series' content and resolved configuration it was generated from."""

    @property
    def tz_version(self) -> str:
        """The time-zone database it was generated with."""

    @property
    def generated_through(self) -> datetime:
        """The end of its window."""

    @property
    def reconciled_at(self) -> datetime:
        """When its rows were last planned over a whole window."""

    @property
    def as_of(self) -> datetime | None:
        """The ``now`` of that generation."""

    @property
    def row_count(self) -> int | None:
        """The series' rows from ``as_of`` on that it left, protected ones included."""

    @property
    def warn_dates(self) -> Mapping[str, Any] | None:
        """What was behind its warnings (``WarnDates.to_payload``)."""


def continues(state: GenerationState | None, *, fingerprint: str, tz_version: str,
              watermark: datetime | None, window: Window, now: datetime) -> bool:
    """True when the series' last complete generation still holds up to its end.

    Args:
        state: what that generation left, if any.
        fingerprint: the series' fingerprint in this run.
        tz_version: the time-zone database of this run.
        watermark: the series' ``last_generated_through``.
        window: this run's window of the series.
        now: this run's ``now``.

    The row count is not looked at here: the caller counts the rows of the series
    that pass, and continues only those whose count is still ``state.row_count``.
    """
    return (state is not None and state.fingerprint == fingerprint
            and state.tz_version == tz_version and watermark == state.generated_through
            and state.generated_through <= window.end
            and now - state.reconciled_at < FULL_RECONCILE_EVERY
            and state.as_of is not None and state.as_of <= now
            and state.row_count is not None and state.warn_dates is not None)


def settled(state: GenerationState | None, *, fingerprint: str, tz_version: str,
            watermark: datetime | None, window: Window, now: datetime) -> bool:
    """True when the series' last complete generation was as of ``now`` and covers its
    whole window: it ``continues`` with nothing left to expand.

    As with ``continues``, the caller checks the rows: the count of those from ``now``
    on is still ``state.row_count``, and none starts after ``window.end``.
    """
    return (continues(state, fingerprint=fingerprint, tz_version=tz_version,
                      watermark=watermark, window=window, now=now)
            and state is not None and state.as_of == now
            and state.generated_through == window.end)


def rows_beyond(rows: Iterable[ExistingSession], desired: Iterable[SessionValues], *,
                since: datetime) -> list[ExistingSession]:
    """The rows a plan continued from ``since`` compares with ``desired``.

    Those starting after ``since``, and those holding an occurrence of ``desired``
    (a row moved before ``since`` still holds its occurrence).
    """
    keys = {d.occurrence_key for d in desired}
    return [r for r in rows if r.values.starts_at > since or r.values.occurrence_key in keys]


def rows_from_after(count: int, operations: Iterable[Operation],
                    rows: Iterable[ExistingSession], *, now: datetime) -> int:
    """How many rows of a series start at or after ``now`` once ``operations`` are all
    written, when ``count`` of them do before.

    Each write moves the count by whether its row starts at or after ``now`` after
    it less before it: a create adds its row, a delete removes one, an update may
    move one across ``now``. ``rows`` holds every row an update or a delete names.
    """
    before = {row.id: row.values.starts_at >= now for row in rows}
    for op in operations:
        if isinstance(op, SessionValues):
            count += op.starts_at >= now
        elif isinstance(op, Update):
            count += (op.values.starts_at >= now) - before[op.id]
        else:
            count -= before[op.id]
    return count


def watermark(operations: Sequence[Operation], applied: int,
              desired: Sequence[SessionValues], *, window: Window,
              continue_from: datetime | None) -> datetime:
    """How far a series is generated once the first ``applied`` of ``operations`` are.

    Args:
        operations: the series' writes, in occurrence-key order.
        applied: how many of them are committed.
        desired: the sessions the writes are planned from, in occurrence-key order.
        window: the series' window.
        continue_from: where the planned slice starts when the plan continues an
            earlier generation, else None.

    Returns:
        The window's end once every write is committed; else the start of the last
        desired session not after the last committed write (every occurrence up to
        it is as the plan wants it), or the slice's start when there is none.
    """
    if applied >= len(operations):
        return window.end
    last_key = operations[applied - 1].occurrence_key if applied else ""
    keys = [d.occurrence_key for d in desired]
    index = bisect.bisect_right(keys, last_key) - 1
    if index < 0:
        return continue_from or window.start
    return desired[index].starts_at
