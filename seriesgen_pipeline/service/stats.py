"""``seriesgen stats``: recent runs summarised from ``generation_log`` with pandas (FR-012)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from seriesgen_pipeline.persistence import listing


def recent_runs(engine: sa.Engine, *, since: datetime) -> tuple[pd.DataFrame, list[str]]:
    """One row per series per run since ``since``, with its branch and duration; and the
    ``generation_log`` rows left out because a value in them cannot be read."""
    with engine.connect() as conn:
        found, branches = listing.recent_log_rows(conn, since=since)
    frame = pd.DataFrame(found.documents, columns=[
        "run_id", "series_key", "status", "started_at", "finished_at", "created", "updated",
        "deleted"])
    frame["branch"] = frame["series_key"].map(branches).fillna("?")
    started = pd.to_datetime(frame["started_at"], utc=True)
    finished = pd.to_datetime(frame["finished_at"], utc=True)
    frame["duration_ms"] = (finished - started).dt.total_seconds() * 1000
    frame["day"] = started.dt.strftime("%Y-%m-%d")
    frame["failed"] = frame["status"] == "failed"
    return frame, found.unreadable


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per branch and day: created, deleted, failures, p50/p95 series duration (ms)."""
    columns = ["branch", "day", "runs", "series_runs", "created", "updated", "deleted",
               "failures", "p50_ms", "p95_ms"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(["branch", "day"])
    out = grouped.agg(runs=("run_id", "nunique"), series_runs=("series_key", "size"),
                      created=("created", "sum"), updated=("updated", "sum"),
                      deleted=("deleted", "sum"), failures=("failed", "sum"))
    out["p50_ms"] = grouped["duration_ms"].quantile(0.5).round(1)
    out["p95_ms"] = grouped["duration_ms"].quantile(0.95).round(1)
    return out.reset_index()[columns].sort_values(["day", "branch"], ignore_index=True)


def stats_document(engine: sa.Engine, *, now: datetime, days: int
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """The summary as JSON-friendly records, and the log rows that could not be read."""
    frame, unreadable = recent_runs(engine, since=now - timedelta(days=days))
    records: list[dict[str, Any]] = []
    for row in summarise(frame).to_dict(orient="records"):
        records.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return records, unreadable
