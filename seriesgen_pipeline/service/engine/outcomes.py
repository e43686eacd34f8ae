"""What a run reports per series: its status and outcome, and what the cleanup did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.occurrences import Window


class Status(StrEnum):
    """How a series' generation ended; the values are what logs, JSON and the database say."""

    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


# Short names for the members. They compare equal to their strings; where a status
# leaves the engine (Dagster metadata, database rows, JSON) it is written as ``str(...)``,
# its plain value: Dagster's serialiser refuses enum members, and psycopg writes a
# Python enum by its name.
SUCCESS: Final = Status.SUCCESS
FAILED: Final = Status.FAILED
SKIPPED: Final = Status.SKIPPED


@dataclass(frozen=True)
class SeriesOutcome:
    """What one run did for one series."""

    series_key: str
    status: Status
    series_id: int | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    protected: int = 0
    window: Window | None = None
    duration_ms: int = 0
    config_hash: str | None = None
    provenance: dict[str, str] | None = None
    error: str | None = None
    conflicts: tuple[c.Conflict, ...] = ()
    started_at: datetime | None = None

    @property
    def changed(self) -> bool:
        """True when the run wrote sessions for the series."""
        return bool(self.created or self.updated or self.deleted)

    def counts(self) -> dict[str, int]:
        """The four counters."""
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "protected": self.protected}


@dataclass(frozen=True)
class RetirementOutcome:
    """What the cleanup did for one series."""

    series_key: str
    retired: bool
    reason: str
    sessions_kept: int = 0
    error: str | None = None


def short_error(exc: BaseException) -> str:
    """``Type: first line`` of an exception (of the driver's error, for a database error)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
