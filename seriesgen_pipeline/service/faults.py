"""Fault points for crash tests, inert unless ``SERIESGEN_FAULT`` names one.

``SERIESGEN_FAULT=<point>[:<n>]`` kills the process with SIGKILL the ``n``-th
time (default 1st) execution reaches ``<point>``. Points: ``snapshot`` (after
the snapshots are read, before they are stored), ``chunk_write`` (inside a chunk
transaction, after its writes, before its commit), ``chunk_commit`` (right after
a chunk commits), ``retirement`` (inside the retirement transaction, before its
commit), ``after_snapshot`` (the snapshots are stored), ``record`` (inside the
transaction that writes the run's ``generation_log`` rows and conflicts, before
its commit). ``SERIESGEN_FAULT=
pause_<point>:<seconds>`` sleeps at every pass through ``<point>`` instead, so a
test can act during a run (edit a series after ``pause_after_snapshot``, book a
seat while ``pause_chunk_write`` holds a chunk transaction open).
``SERIESGEN_FAULT=raise_<point>`` raises ``InjectedFault`` there instead: an
error of seriesgen's own, not the database's.
Documented in docs/guarantees.md.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from seriesgen_pipeline.service.settings import Diagnostics

_hits: Counter[str] = Counter()


class InjectedFault(RuntimeError):
    """Raised by ``raise_<point>``: an error that is not the database's fault."""


def fault_point(name: str) -> None:
    """Die here if ``SERIESGEN_FAULT`` says so."""
    wanted = Diagnostics.from_env().fault
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == "pause_" + name:
        time.sleep(float(nth or 1))
        return
    if point == "raise_" + name:
        raise InjectedFault(f"injected fault at {name}")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
