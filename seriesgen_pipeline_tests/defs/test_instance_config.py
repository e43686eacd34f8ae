"""The instance settings shipped in dagster.yaml and deploy/dagster.postgres.yaml (SPEC §8).

Contract: both load in Dagster 1.13; queued generation runs are limited by the
``seriesgen/generation`` tag to two at a time (parallel, under the global limit,
which stays above it); run retries are on
and do not rerun a range that failed because a series is broken; the PostgreSQL
variant holds no secret, taking its URL from the environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from seriesgen_pipeline.defs.runs import QUEUE_TAGS, range_request

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, name: str) -> dg.DagsterInstance:
    shutil.copy(ROOT / name, tmp_path / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(tmp_path))


def test_default_instance_limits_generation_runs(tmp_path):
    instance = load(tmp_path, "dagster.yaml")
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs == 4
    assert queue.tag_concurrency_limits == [{"key": "seriesgen/generation", "limit": 2}]
    assert queue.max_concurrent_runs > 2
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert not instance.run_retries_retry_on_asset_or_op_failure
    assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
    # Every queued request carries the limited tag.
    assert range_request("a", "b", run_key=None).tags.items() >= QUEUE_TAGS.items()
    assert range_request("a", "a", run_key=None).tags.items() >= QUEUE_TAGS.items()


def test_postgres_variant_has_no_secret_and_reads_the_environment():
    text = (ROOT / "deploy" / "dagster.postgres.yaml").read_text()
    assert "postgres_url:\n      env: DAGSTER_PG_URL" in text
    assert "password" not in text.lower().replace("<password>", "")
