"""End to end on the production layout: PostgreSQL everywhere, real daemon and webserver.

Contract (docs/deployment.md): with ``deploy/dagster.yaml`` in ``DAGSTER_HOME``, the
instance on PostgreSQL (``DAGSTER_PG_URL``) and the application database on
PostgreSQL (``SERIESGEN_DATABASE_URL``), ``dagster-daemon run`` alone takes newly
loaded series to sessions: the default-running change sensor adds the partitions
and requests one run, the queued run coordinator launches it in a run worker
subprocess; the three good series get their sessions and MATERIALIZED partitions,
the broken one (``FREQ=YEARLY``, set by raw SQL) a FAILED partition and no session.
The webserver, bound to 127.0.0.1 only, serves the lineage and the partition
status over GraphQL. No password appears in the instance file, the run tags or
configuration, materialization metadata, event logs, process logs or GraphQL
answers. Bounded: the deployment is up and its run finished within ~110 s.
"""

from __future__ import annotations

import json
import socket
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline_tests.builders import session_rows
from seriesgen_pipeline_tests.deploy.conftest import BROKEN, GOOD, KEYS, SECRET, Deployment
from seriesgen_pipeline_tests.deploy.support import (
    PROJECT,
    listening_addresses,
    non_loopback_ipv4,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SESSIONS = dg.AssetKey("class_sessions")

LINEAGE = """{
  assetNodes { assetKey { path } dependencyKeys { path } groupName }
}"""

PARTITIONS = """{
  assetNodes(assetKeys: [{path: ["class_sessions"]}]) {
    partitionStats { numMaterialized numFailed numMaterializing numPartitions }
    assetPartitionStatuses {
      __typename
      ... on DefaultPartitionStatuses {
        materializedPartitions failedPartitions unmaterializedPartitions
      }
    }
  }
}"""

RUNS = """{
  runsOrError {
    __typename
    ... on Runs { results { runId status jobName runConfigYaml tags { key value } } }
  }
}"""

METADATA = """query Metadata($partitions: [String!]) {
  assetNodes {
    assetKey { path }
    assetMaterializations(partitions: $partitions) {
      partition runId
      metadataEntries {
        label __typename
        ... on TextMetadataEntry { text }
        ... on JsonMetadataEntry { jsonString }
        ... on IntMetadataEntry { intRepr }
      }
    }
  }
}"""

RUN_LOGS = """query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}"""

INSTANCE = "{ instance { info } }"


def _keys(nodes: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return ["/".join(node["path"]) for node in nodes]


def test_sensor_run_generates_the_good_series_and_fails_the_broken_one(
        deployment: Deployment) -> None:
    per_series = Counter(row["series_key"] for row in session_rows(deployment.engine))
    assert set(per_series) == set(GOOD), per_series
    with deployment.engine.connect() as conn:
        logged = {row.series_key: (row.status, row.created) for row in conn.execute(sa.text(
            "SELECT series_key, status, created FROM generation_log"))}
    assert logged == {**{key: ("success", per_series[key]) for key in GOOD},
                      BROKEN: ("failed", 0)}

    with deployment.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_dynamic_partitions("class_series") == KEYS
        found = instance.get_status_by_partition(SESSIONS, KEYS, class_series_partitions)
        assert found is not None
        status = {key: value.value if value else None for key, value in found.items()}
        runs = instance.get_runs()
    assert status == {**dict.fromkeys(GOOD, "MATERIALIZED"), BROKEN: "FAILED"}
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert run.tags["dagster/sensor_name"] == "class_series_changes"
    assert run.tags["seriesgen/generation"] == "queued"  # went through the run queue
    assert run.tags["seriesgen/partition_range"] == f"{KEYS[0]}..{KEYS[-1]}"
    assert run.tags.get("dagster/will_retry") != "true"  # a broken series is not retried


def test_graphql_shows_the_lineage_and_the_partition_status(deployment: Deployment) -> None:
    nodes = deployment.graphql(LINEAGE)["data"]["assetNodes"]
    deps = {"/".join(node["assetKey"]["path"]): _keys(node["dependencyKeys"]) for node in nodes}
    assert deps == {
        "resolved_series_config": [],
        "class_sessions": ["resolved_series_config"],
        "series_cleanup": ["class_sessions"],
        "generation_report": [],  # the per-run report (unpartitioned)
    }
    assert {node["groupName"] for node in nodes} == {"seriesgen"}

    (node,) = deployment.graphql(PARTITIONS)["data"]["assetNodes"]
    assert node["partitionStats"] == {
        "numMaterialized": 3, "numFailed": 1, "numMaterializing": 0, "numPartitions": 4}
    statuses = node["assetPartitionStatuses"]
    assert statuses["__typename"] == "DefaultPartitionStatuses"
    assert sorted(statuses["materializedPartitions"]) == sorted(GOOD)
    assert statuses["failedPartitions"] == [BROKEN]
    # Dagster lists a failed partition among the unmaterialized ones too; nothing else is.
    assert set(statuses["unmaterializedPartitions"]) <= {BROKEN}


def test_no_password_anywhere(deployment: Deployment) -> None:
    # The password is really in use: both URLs carry it.
    assert SECRET in deployment.env["SERIESGEN_DATABASE_URL"]
    assert SECRET in deployment.env["DAGSTER_PG_URL"]

    instance_file = (deployment.home / "dagster.yaml").read_text()
    assert instance_file == (PROJECT / "deploy" / "dagster.yaml").read_text()
    assert "postgres_url:\n      env: DAGSTER_PG_URL" in instance_file
    assert SECRET not in instance_file
    assert "password" not in instance_file.lower().replace("<password>", "")

    runs = deployment.graphql(RUNS)["data"]["runsOrError"]["results"]
    assert len(runs) == 1 and runs[0]["tags"]
    metadata = deployment.graphql(METADATA, {"partitions": KEYS})["data"]["assetNodes"]
    recorded = {("/".join(n["assetKey"]["path"]), m["partition"])
                for n in metadata for m in n["assetMaterializations"]}
    assert {("class_sessions", key) for key in GOOD} <= recorded
    assert all(m["metadataEntries"] for n in metadata for m in n["assetMaterializations"])
    answers = {
        "runs": runs,
        "metadata": metadata,
        "run logs": deployment.graphql(RUN_LOGS, {"runId": runs[0]["runId"]}),
        "instance": deployment.graphql(INSTANCE),
    }
    for what, answer in answers.items():
        assert SECRET not in json.dumps(answer), what
    assert "config_hash" in json.dumps(metadata)  # the metadata really was read

    for log in deployment.logs:
        text = log.read_text(errors="replace")
        assert text, log
        assert SECRET not in text, log.name
    assert SECRET not in deployment.cli_output
    # Compute logs and anything else Dagster keeps under DAGSTER_HOME.
    for path in deployment.home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path

    # Everything the instance stored (runs, event logs, ticks, ...), row by row.
    storage = sa.create_engine(deployment.dagster_url)
    try:
        tables = sa.inspect(storage).get_table_names()
        with storage.connect() as conn:
            leaks = {table: conn.execute(sa.text(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE :pattern'),
                {"pattern": f"%{SECRET}%"}).scalar_one() for table in tables}
    finally:
        storage.dispose()
    assert {"runs", "event_logs", "job_ticks"} <= set(tables)
    assert {table: n for table, n in leaks.items() if n} == {}


def test_webserver_listens_on_loopback_only(deployment: Deployment) -> None:
    assert listening_addresses(deployment.port) == {"127.0.0.1"}
    address = non_loopback_ipv4()
    if address is None:
        return  # no other local address to try
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        with pytest.raises(OSError):
            sock.connect((address, deployment.port))
