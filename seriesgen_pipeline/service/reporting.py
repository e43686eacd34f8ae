"""Structured log lines (FR-005): one per series per run, one per run.

JSON when ``SERIESGEN_LOG_FORMAT=json``, ``key=value`` text otherwise; always on
standard error, never with a database password.

Two loggers: ``seriesgen`` carries the run line and the lines of failed series,
and is the one Dagster captures into the run's event log
(``python_logs.managed_python_loggers``); ``seriesgen.series`` carries the lines
of series that succeeded or were skipped, and writes to standard error only
(Dagster keeps it in the step's captured stderr). Ten thousand captured lines
would cost the nightly run tens of seconds of event writes, and their figures
are in the materialization metadata and ``generation_log`` anyway.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from seriesgen_pipeline.core.clock import format_instant
from seriesgen_pipeline.service.engine import FAILED, SKIPPED, SeriesOutcome
from seriesgen_pipeline.service.settings import Diagnostics

log = logging.getLogger("seriesgen")
series_log = logging.getLogger("seriesgen.series")


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
        line = f"{record.levelname} {record.name}: {record.getMessage()} {extra}".rstrip()
        if record.exc_info and Diagnostics.from_env().debug:
            # Tracebacks stay out of the command's output unless asked for; Dagster's
            # own handler keeps them in the run's event log.
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each line."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: int = logging.INFO, *, if_unset: bool = False) -> None:
    """Send seriesgen's logs to standard error in the configured format.

    With ``if_unset``, leave an existing configuration alone (a run worker started by
    Dagster configures it once, the CLI before that).
    """
    if if_unset and any(isinstance(h.formatter, _Formatter) for h in log.handlers):
        return
    as_json = Diagnostics.from_env().json_logs
    for logger in (log, series_log):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter(as_json))
        # Replace our own handler; leave others (Dagster's capture handler) in place.
        logger.handlers[:] = [h for h in logger.handlers
                              if not isinstance(h.formatter, _Formatter)] + [handler]
        logger.setLevel(level)
        logger.propagate = False  # series_log: not into Dagster's handler on ``seriesgen``


def series_fields(outcome: SeriesOutcome, run_id: str) -> dict[str, Any]:
    """The fields of a series summary line (also the materialization metadata)."""
    return {
        "event": "series_generated",
        "run_id": run_id,
        "series": outcome.series_key,
        "status": str(outcome.status),
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
        elif o.status == SKIPPED:
            out["skipped"] += 1
    return out


def log_run(outcomes: Sequence[SeriesOutcome], *, run_id: str, duration_ms: int) -> None:
    """Emit the per-series lines and the run line (see the module's note on loggers)."""
    # Dagster's event log keeps a captured line's message, not its fields: the
    # messages of the captured lines carry what an operator needs there.
    for outcome in outcomes:
        fields = {"extra": {"fields": series_fields(outcome, run_id)}}
        if outcome.status == FAILED:
            log.error("series %s failed: %s", outcome.series_key, outcome.error, **fields)
        else:
            series_log.info("series %s %s", outcome.series_key, outcome.status, **fields)
    failed_keys = [o.series_key for o in outcomes if o.status == FAILED]
    counts = totals(outcomes)
    log.log(logging.ERROR if failed_keys else logging.INFO,
            "run %s finished: %d series, %d created, %d updated, %d deleted, %d failed%s",
            run_id, counts["series"], counts["created"], counts["updated"], counts["deleted"],
            counts["failed"], f" ({', '.join(failed_keys)})" if failed_keys else "",
            extra={"fields": {"event": "run_finished", "run_id": run_id, **counts,
                              "failed_series": failed_keys, "duration_ms": duration_ms}})
