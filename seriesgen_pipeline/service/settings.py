"""Operational settings from the environment (SPEC §7), read when asked, never at import."""

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


@dataclass(frozen=True)
class Settings:
    """What seriesgen reads from its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    environment: str = "development"
    enable_generation: bool = False
    notify_recipient: str | None = None
    now_override: datetime | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``overrides`` win when not None.

        Raises:
            SettingsError: an unknown ``SERIESGEN_ENV`` or an unreadable ``SERIESGEN_NOW``.
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
