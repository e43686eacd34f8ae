"""The ``dagster-daemon`` of a production-path round: its instance file, start and stop.

* ``instance_yaml``: ``deploy/dagster.yaml`` as it is in the tree, with only the
  ``seriesgen/generation`` limit (and ``max_concurrent_runs``, should it be lower) and
  the run queue's dequeue interval set when asked;
* ``start_daemon``: ``dagster-daemon run`` with the project's ``workspace.yaml``,
  leading its own process group, its output in a log file;
* ``stop_daemon``: SIGINT to the group, a bounded wait, SIGKILL to what is left
  (the code server and run workers included);
* ``one_shot_cron`` / ``next_minute``: a schedule cron that fires at one minute only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import ROOT

BIN = Path(sys.executable).parent
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"
WORKSPACE = ROOT / "workspace.yaml"
GENERATION_TAG = "seriesgen/generation"


def instance_yaml(concurrency: int | None,
                  dequeue_interval: int | None = None) -> tuple[str, dict[str, Any]]:
    """deploy/dagster.yaml with the generation limit (and the run queue's dequeue
    interval) set; the text and what it sets."""
    text = DEPLOY_YAML.read_text()
    config = yaml.safe_load(text)
    runs = config.setdefault("concurrency", {}).setdefault("runs", {})
    limits = runs.setdefault("tag_concurrency_limits", [])
    entry = next((e for e in limits if e.get("key") == GENERATION_TAG), None)
    if concurrency is not None:
        if entry is None:
            entry = {"key": GENERATION_TAG, "limit": concurrency}
            limits.append(entry)
        entry["limit"] = concurrency
        if runs.get("max_concurrent_runs", -1) not in (-1, None) and \
                runs["max_concurrent_runs"] < concurrency:
            runs["max_concurrent_runs"] = concurrency
    if dequeue_interval is not None:
        if "run_coordinator" in config:
            config["run_coordinator"].setdefault("config", {})[
                "dequeue_interval_seconds"] = dequeue_interval
        else:
            config.setdefault("run_queue", {})["dequeue_interval_seconds"] = dequeue_interval
    if concurrency is not None or dequeue_interval is not None:
        text = ("# deploy/dagster.yaml with the run queue settings of "
                "benchmarks/daemon_night.py\n" + yaml.safe_dump(config, sort_keys=False))
    coordinator = (config.get("run_coordinator", {}).get("config")
                   or config.get("run_queue") or {})
    monitoring = config.get("run_monitoring", {})
    launcher = config.get("run_launcher", {})
    return text, {
        "generation_limit": entry["limit"] if entry else None,
        "max_concurrent_runs": runs.get("max_concurrent_runs"),
        "dequeue_interval_seconds": coordinator.get("dequeue_interval_seconds", 5),
        "run_monitoring": bool(monitoring.get("enabled")),
        "monitoring_poll_seconds": monitoring.get("poll_interval_seconds"),
        "run_launcher": (f"{launcher.get('module')}.{launcher.get('class')}" if launcher
                         else "DefaultRunLauncher"),
        "run_retries": bool(config.get("run_retries", {}).get("enabled")),
        "storage": next(iter(config.get("storage", {"sqlite": None}))),
    }


def _default_sigint() -> None:
    """In the daemon's process: Ctrl-C stops it (it may start with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - the id was reused by someone else
        return False
    return True


@dataclass
class Daemon:
    """A ``dagster-daemon run`` leading its own process group."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # time.time()

    def alive(self) -> bool:
        """Whether the daemon process is still running."""
        return self.proc.poll() is None

    def tail(self, size: int = 3000) -> str:
        """The end of the daemon's log."""
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


def start_daemon(env: dict[str, str], log: Path) -> Daemon:
    """``dagster-daemon run`` with ``env``, in a process group of its own, logging to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_default_sigint)
    return Daemon(proc=proc, log=log, started=time.time())


def stop_daemon(daemon: Daemon, wait_s: float) -> float:
    """SIGINT to the daemon's group, a bounded wait, SIGKILL to what is left; seconds taken."""
    started = time.monotonic()
    pgid = daemon.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGINT)
    deadline = started + wait_s
    while time.monotonic() < deadline and _group_alive(pgid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(timeout=0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # code server and run workers, if any are left
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.proc.wait(timeout=wait_s)
    return time.monotonic() - started


def one_shot_cron(at: datetime) -> str:
    """A cron that fires at ``at``'s minute (UTC) and then not for a year."""
    return f"{at.minute} {at.hour} {at.day} {at.month} *"


def next_minute(after: float) -> datetime:
    """The first whole minute at or after the Unix time ``after``."""
    moment = datetime.fromtimestamp(after, UTC)
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)
