"""Structured log lines (FR-005): one per series per run, one per run.

JSON when ``SERIESGEN_LOG_FORMAT=json``, ``key=value`` text otherwise; always on
standard error, never with a database password.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.service.engine import FAILED, SeriesOutcome

log = logging.getLogger("seriesgen")


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        if self.as_json:
            return json.dumps({"level": record.levelname, "logger": record.name,
                               "message": record.getMessage(), **fields}, default=str)
        extra = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return f"{record.levelname} {record.name}: {record.getMessage()} {extra}".rstrip()


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def configure_logging(level: int = logging.INFO, *, if_unset: bool = False) -> None:
    """Send seriesgen's logs to standard error in the configured format.

    With ``if_unset``, leave an existing configuration alone (a run worker started by
    Dagster configures it once, the CLI before that).
    """
    root = logging.getLogger("seriesgen")
    if if_unset and any(isinstance(h.formatter, _Formatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(os.environ.get("SERIESGEN_LOG_FORMAT") == "json"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def series_fields(outcome: SeriesOutcome, run_id: str) -> dict[str, Any]:
    """The fields of a series summary line (also the materialization metadata)."""
    return {
        "event": "series_generated",
        "run_id": run_id,
        "series": outcome.series_key,
        "status": outcome.status,
        "window_start": format_instant(outcome.window.start) if outcome.window else None,
        "window_end": format_instant(outcome.window.end) if outcome.window else None,
        **outcome.counts(),
        "duration_ms": outcome.duration_ms,
        "config_hash": outcome.config_hash,
        "provenance": outcome.provenance,
        "conflicts": [k.code for k in outcome.conflicts],
        "error": outcome.error,
    }


def totals(outcomes: Sequence[SeriesOutcome]) -> dict[str, int]:
    """Counters summed over a run."""
    out = {"series": len(outcomes), "created": 0, "updated": 0, "deleted": 0, "protected": 0,
           "failed": 0, "skipped": 0}
    for o in outcomes:
        for name, value in o.counts().items():
            out[name] += value
        if o.status == FAILED:
            out["failed"] += 1
        elif o.status == "skipped":
            out["skipped"] += 1
    return out


def log_run(outcomes: Sequence[SeriesOutcome], *, run_id: str, duration_ms: int) -> None:
    """Emit the per-series lines and the run line."""
    for outcome in outcomes:
        level = logging.ERROR if outcome.status == FAILED else logging.INFO
        log.log(level, "series %s %s", outcome.series_key, outcome.status,
                extra={"fields": series_fields(outcome, run_id)})
    failed = [o.series_key for o in outcomes if o.status == FAILED]
    log.log(logging.ERROR if failed else logging.INFO, "run %s finished", run_id,
            extra={"fields": {"event": "run_finished", "run_id": run_id, **totals(outcomes),
                              "failed_series": failed, "duration_ms": duration_ms}})
