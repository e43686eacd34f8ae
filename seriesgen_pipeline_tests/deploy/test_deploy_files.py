"""The files under ``deploy/`` say what docs/deployment.md says they say.

Contract: the production instance (``deploy/dagster.yaml``) has PostgreSQL storage
from ``DAGSTER_PG_URL`` and no credential, the same run queue and retry settings
as the project's ``dagster.yaml`` and ``deploy/dagster.postgres.yaml``, and run
monitoring that the DefaultRunLauncher supports; the Kubernetes and Docker files
are marked as untested examples and carry no credential; the gRPC workspace
names the code server started by the documented command (checked live); the
systemd units start the three processes with the shared environment file, which
lists every variable a Dagster process needs.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from seriesgen_pipeline_tests.deploy.support import (
    BIN,
    PROJECT,
    clean_env,
    free_port,
    start,
    stop,
)

DEPLOY = PROJECT / "deploy"
SHARED = ("instance_class", "concurrency", "run_retries", "python_logs", "telemetry")
REQUIRED_ENV = ["DAGSTER_HOME", "DAGSTER_PG_URL", "SERIESGEN_DATABASE_URL", "SERIESGEN_ENV",
                "ENABLE_SERIES_GENERATION"]
# Set by the instance class where the project is installed; the Kubernetes and Docker
# examples carry it for processes that may open the instance without it.
SUBSET_PLANNED_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
CODE_SERVER = ("dagster code-server start -m seriesgen_pipeline.definitions"
               " -h 0.0.0.0 -p 4000")


def _yaml(path: Path) -> dict:  # type: ignore[type-arg]
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def _no_credential(text: str) -> None:
    assert "password" not in text.lower().replace("<password>", "")
    # No URL with a user:secret@ part, except the documented placeholder.
    for match in re.finditer(r"://[^/\s:@]+:([^@\s/]+)@", text):
        assert match.group(1) == "<password>", match.group(0)


def test_production_instance_keeps_the_shared_settings_and_adds_monitoring() -> None:
    prod = _yaml(DEPLOY / "dagster.yaml")
    for other in (PROJECT / "dagster.yaml", DEPLOY / "dagster.postgres.yaml"):
        base = _yaml(other)
        assert {k: prod[k] for k in SHARED} == {k: base[k] for k in SHARED}, other
    assert prod["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert prod["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "seriesgen/generation", "limit": 2}]
    assert prod["run_retries"] == {"enabled": True, "max_retries": 2,
                                   "retry_on_asset_or_op_failure": False}
    monitoring = prod["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["max_resume_run_attempts"] == 0  # DefaultRunLauncher cannot resume
    assert monitoring["max_runtime_seconds"] > 3600
    assert prod["run_launcher"] == {"module": "seriesgen_pipeline.defs.monitoring",
                                    "class": "MonitoredRunLauncher"}
    coordinator = prod["run_coordinator"]  # Dagster's queued run coordinator, which waits
    assert coordinator["class"] == "QueuedRunCoordinator"  # for a restarted code server
    assert prod["instance_class"] == {"module": "seriesgen_pipeline.defs.internals",
                                      "class": "SeriesgenInstance"}
    assert prod["nux"] == {"enabled": False}
    _no_credential((DEPLOY / "dagster.yaml").read_text())


@pytest.mark.parametrize(("name", "module", "cls"), [
    ("dagster.k8s-example.yaml", "dagster_k8s", "K8sRunLauncher"),
    ("dagster.docker-example.yaml", "dagster_docker", "DockerRunLauncher"),
])
def test_launcher_examples_are_marked_untested_and_hold_no_secret(
        name: str, module: str, cls: str) -> None:
    text = (DEPLOY / name).read_text()
    assert text.startswith("# EXAMPLE ONLY — NOT TESTED IN THIS REPOSITORY.")
    launcher = _yaml(DEPLOY / name)["run_launcher"]
    assert (launcher["module"], launcher["class"]) == (module, cls)
    _no_credential(text)
    if cls == "DockerRunLauncher":
        # Names only: the values come from the daemon's environment at launch.
        assert set(REQUIRED_ENV) <= set(launcher["config"]["env_vars"])
        assert SUBSET_PLANNED_EVENTS in launcher["config"]["env_vars"]
        assert all("=" not in name for name in launcher["config"]["env_vars"])
    else:
        assert f"{SUBSET_PLANNED_EVENTS}=1" in text


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    assert {"Unit", "Service", "Install"} <= set(parser.sections()), name
    return parser


def test_systemd_units_start_the_three_processes_with_the_shared_environment() -> None:
    commands = {}
    for name in ("seriesgen-code-server.service", "seriesgen-daemon.service",
                 "seriesgen-webserver.service"):
        service = _unit(name)["Service"]
        assert service["EnvironmentFile"] == "/etc/seriesgen/seriesgen.env"
        assert service["Restart"] in {"always", "on-failure"}
        commands[name] = shlex.split(service["ExecStart"])
    code = commands["seriesgen-code-server.service"]
    assert " ".join([Path(code[0]).name, *code[1:]]).startswith(CODE_SERVER)
    assert commands["seriesgen-daemon.service"][1:] == [
        "run", "-w", "deploy/workspace.grpc.yaml"]
    assert commands["seriesgen-webserver.service"][1:] == [
        "-w", "deploy/workspace.grpc.yaml", "-h", "127.0.0.1", "-p", "3000"]

    env_text = (DEPLOY / "systemd" / "seriesgen.env.example").read_text()
    _no_credential(env_text)
    set_vars = dict(line.split("=", 1) for line in env_text.splitlines()
                    if line and not line.startswith("#"))
    assert set(REQUIRED_ENV) <= set(set_vars)
    assert set_vars["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")


def test_deployment_doc_covers_every_file_and_variable() -> None:
    doc = (PROJECT / "docs" / "deployment.md").read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            assert str(path.relative_to(PROJECT)) in doc, path
    for name in [*REQUIRED_ENV, "SERIESGEN_RUN_CHUNK", "SERIESGEN_CHUNK_ROWS",
                 "SERIESGEN_BATCH_SERIES", "max_concurrent_runs", "make serve"]:
        assert name in doc, name


@pytest.mark.slow
def test_grpc_workspace_reaches_the_documented_code_server(tmp_path: Path) -> None:
    """The code server started as documented serves the location the workspace names."""
    workspace = _yaml(DEPLOY / "workspace.grpc.yaml")
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["port"] == 4000 and grpc["location_name"] == "seriesgen"
    port = free_port()  # 4000 may be taken here: same file, another port
    grpc["port"] = port
    grpc["host"] = "127.0.0.1"
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    env = clean_env(DAGSTER_HOME=str(tmp_path), SERIESGEN_DATABASE_URL=f"sqlite:///{tmp_path}/a.db")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Create the instance's storage once, before two processes would race to do it.
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=tmp_path, env=env,
                   capture_output=True, text=True, timeout=120, check=True)
    log = tmp_path / "code-server.log"
    server = start([str(BIN / "dagster"), "code-server", "start", "-m",
                    "seriesgen_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port),
                    "--location-name", "seriesgen"], env=env, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(
                [str(BIN / "dagster"), "sensor", "list", "-w", str(tmp_path / "workspace.yaml")],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert done.returncode == 0, done.stderr[-2000:] + log.read_text()[-2000:]
        assert "class_series_changes" in done.stdout
    finally:
        stop(server)


class _NoRepeatedKeys(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (plain YAML keeps
    the last one silently)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[object, object]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}",
                                                node.start_mark)
    return loader.construct_mapping(node)


_NoRepeatedKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@pytest.mark.parametrize("name", ["dagster.yaml", "deploy/dagster.yaml",
                                  "deploy/dagster.postgres.yaml"])
def test_instance_files_give_each_key_once(name: str) -> None:
    assert yaml.load((PROJECT / name).read_text(), _NoRepeatedKeys)
    with pytest.raises(yaml.constructor.ConstructorError, match="retention"):
        yaml.load("retention: {}\nretention: {}\n", _NoRepeatedKeys)
