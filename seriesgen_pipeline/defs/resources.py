"""The seriesgen resource: settings and the application database engine."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from seriesgen_pipeline.persistence.db import create_db_engine
from seriesgen_pipeline.service.engine import EngineSettings
from seriesgen_pipeline.service.settings import Settings, parse_now


class SeriesgenResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Settings for a run; unset fields come from the environment at run time (SPEC §7)."""

    database_url: str | None = None
    environment: str | None = None
    enable_generation: bool | None = None
    notify_recipient: str | None = None
    now: str | None = None
    chunk_rows: int | None = None
    batch_series: int | None = None
    retention_days: int | None = None

    _engine: sa.Engine | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        """The effective settings (resource config over environment)."""
        return Settings.from_env(
            database_url=self.database_url,
            environment=self.environment,
            enable_generation=self.enable_generation,
            notify_recipient=self.notify_recipient,
            now_override=parse_now(self.now, "now") if self.now else None,
            retention_days=self.retention_days,
        )

    def engine_settings(self) -> EngineSettings:
        """Chunk and batch sizes: resource config, else ``SERIESGEN_CHUNK_ROWS`` /
        ``SERIESGEN_BATCH_SERIES``, else the defaults."""
        default = EngineSettings()
        settings = self.settings()
        return EngineSettings(
            chunk_rows=self.chunk_rows or settings.chunk_rows or default.chunk_rows,
            batch_series=self.batch_series or settings.batch_series or default.batch_series,
        )

    def engine(self) -> sa.Engine:
        """The application database engine (one per resource instance)."""
        if self._engine is None:
            self._engine = create_db_engine(self.settings().database_url)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

