"""The start-of-run snapshot of a series: its content and resolved configuration (FR-011).

A run generates from its snapshot only, so an edit made during the run does not
change that run's output; the next run picks the edit up.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.core.clock import format_instant, parse_instant
from seriesgen_pipeline.core.config import (
    BranchResolver,
    ConfigValues,
    ResolvedConfig,
    resolve_config,
)
from seriesgen_pipeline.core.errors import SeriesDefinitionError, UnreadableValueError
from seriesgen_pipeline.core.series import SeriesSpec, ValidSeries, validate_series


@dataclass(frozen=True)
class SnapshotError:
    """Why a series cannot be generated (an ERROR conflict)."""

    code: str
    message: str
    field: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class SeriesSnapshot:
    """A series as a run sees it: valid and resolved, or broken with the reason."""

    series_key: str
    spec: SeriesSpec
    taken_at: datetime
    config: ResolvedConfig | None = None
    error: SnapshotError | None = None

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes when the series content, its applicable configuration or where a
        value of it comes from (its provenance) changes: when anything the snapshot
        holds but the instant it was taken changes.

        Computed once per snapshot (a night reads it several times per series)."""
        config = (f"{self.config.config_hash}|{sorted(self.config.provenance.items())}"
                  if self.config else "")
        text = f"{self.spec.fingerprint()}|{config}|" + (
            f"{self.error.code}:{self.error.message}" if self.error else "")
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def config_hash(self) -> str | None:
        """The resolved configuration's hash, if it resolved."""
        return self.config.config_hash if self.config else None

    def valid(self) -> ValidSeries:
        """The validated series.

        Raises:
            SeriesDefinitionError: the snapshot is broken.
        """
        if self.error is not None or self.config is None:
            err = self.error or SnapshotError("UNRESOLVED", "configuration did not resolve")
            raise SeriesDefinitionError(err.code, err.message, field=err.field, scope=err.scope)
        return self._validated

    @functools.cached_property
    def _validated(self) -> ValidSeries:
        """Validated once per snapshot (taking it checks it, generating uses it);
        a failure is not kept, and raises again."""
        assert self.config is not None, "valid() checks the configuration first"
        return validate_series(self.spec, self.config)

    def error_conflict(self) -> c.Conflict | None:
        """The ERROR conflict of a broken snapshot."""
        if self.error is None:
            return None
        return c.Conflict(self.series_key, self.error.code, c.ERROR, self.error.message, (),
                          {"field": self.error.field, "scope": self.error.scope})

    def to_payload(self) -> dict[str, Any]:
        """JSON-friendly form, stored in the application database."""
        return {
            "series": self.spec.as_dict(),
            "taken_at": format_instant(self.taken_at),
            "config": self.config.as_dict() if self.config else None,
            "provenance": dict(self.config.provenance) if self.config else None,
            "error": self.error.__dict__ if self.error else None,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SeriesSnapshot:
        """Inverse of ``to_payload``."""
        spec = SeriesSpec.from_dict(payload["series"])
        config = None
        if payload.get("config"):
            values = dict(payload["config"])
            values["closed_dates"] = tuple(date.fromisoformat(d) for d in values["closed_dates"])
            provenance = payload["provenance"]
            config = resolve_config(ConfigValues(**values))
            config = ResolvedConfig(**{**config.__dict__, "provenance": provenance})
        error = SnapshotError(**payload["error"]) if payload.get("error") else None
        return cls(spec.key, spec, parse_instant(payload["taken_at"]), config, error)


def build_snapshot(
    spec: SeriesSpec,
    *,
    taken_at: datetime,
    base: ConfigValues | None,
    branch: ConfigValues | None,
    series: ConfigValues | None,
    branch_known: bool,
    unreadable: Sequence[UnreadableValueError] = (),
    resolver: BranchResolver | None = None,
) -> SeriesSnapshot:
    """Resolve and validate one series; a problem becomes the snapshot's error.

    ``unreadable`` lists values of the series' own row that could not be read; the
    first one is the snapshot's error (``spec`` then holds placeholders for them).
    ``resolver``, made once from ``base`` for many series, resolves each branch's
    configuration once.
    """
    try:
        if unreadable:
            raise unreadable[0]
        if not branch_known:
            raise SeriesDefinitionError(
                c.UNKNOWN_BRANCH, f"branch {spec.branch_id!r} does not exist",
                field="branch_id", scope="series",
                hint="create the branch or move the series to an existing branch",
            )
        resolve = resolver or BranchResolver(base or ConfigValues())
        config = resolve(branch, series)
        snapshot = SeriesSnapshot(spec.key, spec, taken_at, config)
        snapshot.valid()
        return snapshot
    except SeriesDefinitionError as exc:
        error = SnapshotError(exc.code, str(exc), exc.field, exc.scope)
        return SeriesSnapshot(spec.key, spec, taken_at, None, error)
