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


def parse_now(text: str, source: str = "--now") -> datetime:
    """Parse an ISO-8601 instant given by the operator.

    Raises:
        SettingsError: naming ``source``.
    """
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise SettingsError(
            f"{source}={text!r} is not an ISO-8601 instant (e.g. 2026-03-02T06:00:00Z)"
        ) from exc
