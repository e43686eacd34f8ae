"""From a series snapshot to the sessions it wants: the pure half of generation."""

from __future__ import annotations

from dataclasses import dataclass

from seriesgen_pipeline.core.conflicts import Conflict
from seriesgen_pipeline.core.occurrences import Window, expand_occurrences
from seriesgen_pipeline.core.reconcile import SessionValues
from seriesgen_pipeline.core.series import ValidSeries


@dataclass(frozen=True)
class DesiredSessions:
    """The sessions a series wants in a window, and the warnings met."""

    sessions: tuple[SessionValues, ...]
    conflicts: tuple[Conflict, ...]


def desired_sessions(series: ValidSeries, window: Window) -> DesiredSessions:
    """The session values the series wants for every occurrence in ``window``."""
    expansion = expand_occurrences(series, window)
    spec, config = series.spec, series.config
    sessions = tuple(
        SessionValues(
            occurrence_key=occ.occurrence_key,
            branch_id=spec.branch_id,
            title=spec.title,
            instructor=spec.instructor,
            room=spec.room,
            capacity=series.capacity,
            timezone=config.timezone,
            starts_at=occ.starts_at,
            ends_at=occ.ends_at,
        )
        for occ in expansion.occurrences
    )
    return DesiredSessions(sessions, expansion.conflicts)
