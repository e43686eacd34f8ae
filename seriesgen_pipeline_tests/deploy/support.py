"""Helpers for the deployment tests: processes in their own groups, GraphQL, sockets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STOP_WAIT_S = 20
T = TypeVar("T")


def reset_sigint() -> None:
    """Give the child the default SIGINT back (a background shell leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def clean_env(**values: str) -> dict[str, str]:
    """This process' environment without seriesgen/Dagster settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERIESGEN_", "DAGSTER_")) and k != "ENABLE_SERIES_GENERATION"}
    env.update(values)
    return env


def start(args: list[str], *, env: Mapping[str, str], log: Path,
          cwd: Path = PROJECT) -> subprocess.Popen[bytes]:
    """Start ``args`` as the leader of a new process group, output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=cwd, env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=reset_sigint)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a foreign process reused the id
        return True
    return True


def stop(proc: subprocess.Popen[bytes], wait_s: float = STOP_WAIT_S) -> None:
    """SIGINT to the process' group, a bounded wait, then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and group_alive(proc.pid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.2)
        if proc.poll() is not None and not group_alive(proc.pid):
            break
    # Whatever is left of the group (code servers, run workers) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=wait_s)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


def wait_for(what: str, probe: Callable[[], T | None], deadline: float,
             logs: list[Path], every: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy, or fail at ``deadline``."""
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log_tail(log)}" for log in logs)
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(every)


def graphql(port: int, query: str, variables: dict[str, Any] | None = None,
            timeout: float = 30) -> dict[str, Any]:
    """POST a query to the webserver's GraphQL endpoint; the parsed response."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body,
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def graphql_ready(port: int) -> bool:
    """Whether the webserver answers GraphQL on ``port``."""
    try:
        return bool(graphql(port, "{ version }", timeout=5).get("data"))
    except (OSError, urllib.error.URLError, ValueError):
        return False


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket LISTENing on ``port`` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            assert len(address) == width
            if name == "tcp":
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def non_loopback_ipv4() -> str | None:
    """This machine's outbound IPv4 address, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address
