"""Issue: a partition rerun successfully still shows "Run … failed, and did not materialize".

Contract (SPEC §8, docs/dagster.md): once a later run materializes a failed
partition — a single-partition run (the UI's "Materialize" on the partition), a
ranged run over it (the nightly, a "failed only" backfill), even a ranged run
that fails because of *another* series — the partition's page shows no failure.

What the UI reads (dagster-webserver 1.13, the asset partition page): GraphQL
``latestRunForPartition`` (the run of the partition's latest per-partition
"planned" event, ``instance.get_latest_planned_materialization_info``) and the
partition's latest materialization; when the two runs differ and the former
failed or was canceled, the page shows "Run <id> failed, and did not materialize
this asset" above the green "Materialized".

Bug (issue 12, D2): with ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` (one
planned event per asset per run, without a partition) per-partition planned
events exist only for the failed series, so a failed partition's latest run
stayed the failed one for ever, whatever materialized it later.

Here, on a real instance and a real SQLite application database, with runs
created as production creates them (the setting on), the same GraphQL query the
page makes is answered by ``dagster_graphql`` for each step: a broken series'
partition shows the failed run's banner; after each kind of successful rerun it
shows none, for all three assets; and the partitions that never failed get no
per-partition planned event at all (the cheap path stays cheap).
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.internals import SUBSET_PLANNED_EVENTS, latest_planned_runs
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import range_tags
from seriesgen_pipeline_tests.builders import execute, seed_base, seed_branch, seed_series
from seriesgen_pipeline_tests.defs.support import NOW, migrated_engine, partition_status

PROJECT = Path(__file__).resolve().parents[2]
KEYS = ["a-yoga", "b-pilates", "c-spin"]
ASSETS = ["resolved_series_config", "class_sessions", "series_cleanup"]
GOOD = "FREQ=WEEKLY;BYDAY=TU,TH"
BROKEN = "FREQ=WEEKLY;BYDAY=XX"

PAGE = """query Page($assetKey: AssetKeyInput!, $partition: String!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode { latestRunForPartition(partition: $partition) { runId status } }
  }
  assetOrError(assetKey: $assetKey) {
    ... on Asset { assetMaterializations(partitions: [$partition], limit: 1) { runId } }
  }
}"""


@pytest.fixture(autouse=True)
def production_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERIESGEN_ENV", raising=False)
    monkeypatch.setenv(SUBSET_PLANNED_EVENTS, "1")  # as the project's instance sets it


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[sa.Engine, str]]:
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine, horizon_days=14)
    seed_branch(engine, "east")
    for number, key in enumerate(KEYS):
        seed_series(engine, key, recurrence=GOOD, room=f"Room {number}",
                    instructor=f"Coach {number}")
    yield engine, url
    engine.dispose()


def set_recurrence(engine: sa.Engine, key: str, rule: str) -> None:
    execute(engine, "UPDATE class_series SET recurrence = :rule WHERE key = :key",
            rule=rule, key=key)


class Page:
    """The partition page's data, from Dagster's GraphQL schema."""

    def __init__(self, context: object) -> None:
        self.context = context

    def banner(self, asset: str, partition: str) -> str | None:
        """The failed (or canceled) run the page names above the partition, if any."""
        result = execute_dagster_graphql(self.context, PAGE, variables={  # type: ignore[arg-type]
            "assetKey": {"path": [asset]}, "partition": partition})
        assert not result.errors, result.errors
        latest = result.data["assetNodeOrError"]["latestRunForPartition"]
        materialized = result.data["assetOrError"]["assetMaterializations"]
        shown = latest if latest and (
            not materialized or materialized[0]["runId"] != latest["runId"]) else None
        if shown and shown["status"] in ("FAILURE", "CANCELED"):
            return str(shown["runId"])
        return None

    def banners(self, partition: str) -> dict[str, str | None]:
        return {asset: self.banner(asset, partition) for asset in ASSETS}


def test_a_rerun_that_materializes_a_failed_partition_clears_its_banner(
        app: tuple[sa.Engine, str]) -> None:
    engine, url = app
    job = build_definitions(resource=SeriesgenResource(database_url=url, now=NOW)
                            ).resolve_job_def("series_generation_job")
    everything = range_tags(KEYS[0], KEYS[-1])
    with dg.instance_for_test() as instance, define_out_of_process_context(
            str(PROJECT / "seriesgen_pipeline" / "definitions.py"), "defs", instance) as context:
        page = Page(context)
        instance.add_dynamic_partitions("class_series", KEYS)

        def run(**kwargs: object) -> dg.ExecuteInProcessResult:
            return job.execute_in_process(instance=instance, raise_on_error=False,
                                          **kwargs)  # type: ignore[arg-type]

        def fail_b() -> str:
            set_recurrence(engine, "b-pilates", BROKEN)
            failed = run(tags=everything)
            assert not failed.success
            assert page.banners("b-pilates") == dict.fromkeys(ASSETS, failed.run_id)
            set_recurrence(engine, "b-pilates", GOOD)
            return failed.run_id

        first = run(tags=everything)
        assert first.success
        assert page.banners("a-yoga") == dict.fromkeys(ASSETS)

        # 1. The partition materialized alone (the UI's "Materialize" on it).
        fail_b()
        single = run(partition_key="b-pilates")
        assert single.success
        assert page.banners("b-pilates") == dict.fromkeys(ASSETS)
        assert {latest_planned_runs(instance, dg.AssetKey(asset), ["b-pilates"])["b-pilates"]
                for asset in ASSETS} == {single.run_id}

        # 2. A later ranged run (the nightly, a "failed only" backfill).
        fail_b()
        ranged = run(tags=everything)
        assert ranged.success
        assert page.banners("b-pilates") == dict.fromkeys(ASSETS)

        # 3. A ranged run that materializes it but fails because another series broke.
        fail_b()
        set_recurrence(engine, "c-spin", BROKEN)
        mixed = run(tags=everything)
        assert not mixed.success
        assert page.banners("b-pilates") == dict.fromkeys(ASSETS)
        assert page.banners("c-spin") == dict.fromkeys(ASSETS, mixed.run_id)

        status = partition_status(instance, dg.AssetKey("class_sessions"), KEYS)
        assert status == {"a-yoga": "MATERIALIZED", "b-pilates": "MATERIALIZED",
                          "c-spin": "FAILED"}
        # The series that never failed have no per-partition planned event.
        for asset in ASSETS:
            assert "a-yoga" not in latest_planned_runs(instance, dg.AssetKey(asset), KEYS)
