"""Every environment variable seriesgen reads (SPEC §7), in one place, read when asked.

``Settings`` is what a command or a run does (database, safeguard, clock, sizes,
schedule); ``Diagnostics`` is how seriesgen reports itself (debug tracebacks, JSON
logs, injected faults): it never fails, so logging works before the settings are
checked. Nothing else in the package reads a variable of seriesgen's (``defs/internals.py``
sets two of Dagster's own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from seriesgen_pipeline.core.clock import parse_instant
from seriesgen_pipeline.core.errors import SafeguardError, SettingsError
from seriesgen_pipeline.persistence.db import DEFAULT_DATABASE_URL

ENVIRONMENTS = ("development", "staging", "production")
SAFEGUARD_MESSAGE = (
    "SERIESGEN_ENV=production and ENABLE_SERIES_GENERATION is not 'true': generation is "
    "disabled in production. Set ENABLE_SERIES_GENERATION=true to allow it; nothing was written."
)
# A run costs a few seconds of queueing and start-up whatever its size, so at 10,000
# series four runs of 2,500 finish a warm night in a third of the time twenty runs of
# 500 take (docs/performance.md, "Production path"); at 100,000 series ten runs of
# 10,000 finish a night with nothing changed in a third of the time forty runs of
# 2,500 take.
DEFAULT_RUN_CHUNK = 2500
"""The least series per ranged run when ``SERIESGEN_RUN_CHUNK`` is unset (``run_size``);
a UI backfill's run size."""
NIGHT_RUNS = 10
"""The most runs a night over every series is split into when ``SERIESGEN_RUN_CHUNK``
is unset (``run_size``)."""
DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
MAX_BYTES_VARIABLE = "SERIESGEN_MAX_DATA_FILE_BYTES"
DEFAULT_RETENTION_DAYS = 30
"""Days of run records (snapshots, generation log, notifications) kept per series."""


@dataclass(frozen=True)
class Settings:
    """What seriesgen reads from its environment.

    ``run_chunk``, ``chunk_rows``, ``batch_series`` and ``max_data_file_bytes`` are
    None when not set: their users' defaults apply (``run_size`` for ``run_chunk``).
    """

    database_url: str = DEFAULT_DATABASE_URL
    environment: str = "development"
    enable_generation: bool = False
    notify_recipient: str | None = None
    now_override: datetime | None = None
    run_chunk: int | None = None
    chunk_rows: int | None = None
    batch_series: int | None = None
    max_data_file_bytes: int | None = None
    schedule_cron: str = DEFAULT_CRON
    schedule_timezone: str = DEFAULT_TIMEZONE
    dagster_home: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``overrides`` win when not None.

        Raises:
            SettingsError: an unknown ``SERIESGEN_ENV``, an unreadable ``SERIESGEN_NOW``,
                or a size that is not a positive whole number.
        """
        env = os.environ if environ is None else environ
        environment = (env.get("SERIESGEN_ENV") or "development").strip()
        if environment not in ENVIRONMENTS:
            raise SettingsError(
                f"SERIESGEN_ENV={environment!r} is not one of {', '.join(ENVIRONMENTS)}")
        now_text = env.get("SERIESGEN_NOW")
        settings = cls(
            database_url=env.get("SERIESGEN_DATABASE_URL") or DEFAULT_DATABASE_URL,
            environment=environment,
            enable_generation=(env.get("ENABLE_SERIES_GENERATION") or "").strip().lower()
            == "true",
            notify_recipient=(env.get("ADMIN_NOTIFY_RECIPIENT") or "").strip() or None,
            now_override=parse_now(now_text, "SERIESGEN_NOW") if now_text else None,
            run_chunk=_positive(env, "SERIESGEN_RUN_CHUNK"),
            chunk_rows=_positive(env, "SERIESGEN_CHUNK_ROWS"),
            batch_series=_positive(env, "SERIESGEN_BATCH_SERIES"),
            max_data_file_bytes=_positive(
                env, MAX_BYTES_VARIABLE, "bytes (e.g. 50000000 for 50 MB)"),
            schedule_cron=env.get("SERIESGEN_SCHEDULE_CRON") or DEFAULT_CRON,
            schedule_timezone=env.get("SERIESGEN_SCHEDULE_TIMEZONE") or DEFAULT_TIMEZONE,
            dagster_home=env.get("DAGSTER_HOME") or None,
            retention_days=_positive(env, "SERIESGEN_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings  # type: ignore[arg-type]

    @property
    def writes_allowed(self) -> bool:
        """The production safeguard (FR-006)."""
        return self.environment != "production" or self.enable_generation

    def check_writes(self) -> None:
        """Raise ``SafeguardError`` when the safeguard forbids writing."""
        if not self.writes_allowed:
            raise SafeguardError(SAFEGUARD_MESSAGE)

    def now(self) -> datetime:
        """``SERIESGEN_NOW`` if set, else the clock (UTC)."""
        return self.now_override or datetime.now(UTC)


def run_size(run_chunk: int | None, series: int) -> int:
    """Series per ranged run when ``series`` partitions are to be run.

    ``SERIESGEN_RUN_CHUNK`` (``run_chunk``) when set. Otherwise ``DEFAULT_RUN_CHUNK``,
    or ``series / NIGHT_RUNS`` rounded up when that is more: up to 25,000 series a
    night is runs of 2,500, above it ten runs (10,000 series each at 100,000).
    """
    if run_chunk is not None:
        return run_chunk
    return max(DEFAULT_RUN_CHUNK, -(-series // NIGHT_RUNS))


def _positive(env: Mapping[str, str], name: str, unit: str = "") -> int | None:
    """A variable that must be a positive whole number; None when unset or empty."""
    text = (env.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        if unit:
            raise SettingsError(f"{name}={text[:40]!r} is not a positive whole number of {unit}")
        raise SettingsError(f"{name}={text!r} must be a positive integer")
    return int(text)


@dataclass(frozen=True)
class Diagnostics:
    """How seriesgen reports itself: ``SERIESGEN_DEBUG=1`` (tracebacks),
    ``SERIESGEN_LOG_FORMAT=json`` (log lines as JSON), ``SERIESGEN_FAULT`` (a fault
    injected at a named point, for the crash tests) and the ``SERIESGEN_DATABASE_URL``
    whose secrets error messages mask. Read on every use; never fails."""

    debug: bool = False
    json_logs: bool = False
    fault: str | None = None
    database_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Diagnostics:
        """The diagnostics switches as the environment sets them now."""
        env = os.environ if environ is None else environ
        return cls(debug=env.get("SERIESGEN_DEBUG") == "1",
                   json_logs=env.get("SERIESGEN_LOG_FORMAT") == "json",
                   fault=env.get("SERIESGEN_FAULT") or None,
                   database_url=env.get("SERIESGEN_DATABASE_URL") or None)


# "now" must leave room for a horizon of up to 730 days and a year of look-back.
NOW_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 12, 31, 23, 59, 59, tzinfo=UTC))


def parse_now(text: str | None, source: str = "--now") -> datetime:
    """Parse an ISO-8601 instant given by the operator; empty and out-of-range are refused.

    Raises:
        SettingsError: naming ``source``.
    """
    example = "e.g. 2026-03-02T06:00:00Z"
    if text is None or not text.strip():
        raise SettingsError(f"{source} is empty: give an ISO-8601 instant ({example}) "
                            "or leave it out to use the clock")
    try:
        value = parse_instant(text)
    except (ValueError, OverflowError) as exc:
        raise SettingsError(
            f"{source}={text!r} is not an ISO-8601 instant ({example})"
        ) from exc
    low, high = NOW_RANGE
    if not low <= value <= high:
        raise SettingsError(f"{source}={text!r} is out of range: it must lie between "
                            f"{low:%Y-%m-%d} and {high:%Y-%m-%d}")
    return value
