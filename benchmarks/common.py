"""What both benchmark scripts share: their defaults and arguments, and how they describe a run.

* the scale the targets are set for, the base ``now`` and the seed of the synthetic data;
* the arguments both scripts take (scale, seed, ``now``, JSON output) and their checks;
* the header facts: the product commit, the command line with passwords masked, the
  process' peak resident set; and the progress lines on stderr.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import subprocess
import sys
from pathlib import Path

from seriesgen_pipeline.persistence.db import safe_url

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NOW = "2026-03-02T06:00:00Z"
DEFAULT_SEED = 20260302
TARGET_SCALE = (10_000, 365)  # N series, D days: the scale the time targets are set for


class BenchmarkError(RuntimeError):
    """A step could not be measured (timeout, a process exited, a database refused, ...)."""


def add_shared_args(parser: argparse.ArgumentParser, *, series: int | None,
                    horizon_days: int | None) -> None:
    """The scale, the data and the output, with the given defaults of the scale."""
    parser.add_argument("--series", type=int, default=series, help="N series (default 10000)")
    parser.add_argument("--horizon-days", type=int, default=horizon_days,
                        help="D (default 365)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--now", default=DEFAULT_NOW, help="'now' of the cold night")
    parser.add_argument("--json", dest="json_out", help="write every figure to this file")


def check_scale(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a scale the synthetic data or the configuration ranges cannot take."""
    if args.series < 10:
        parser.error("--series must be at least 10")
    if not 1 <= args.horizon_days <= 730:
        parser.error("--horizon-days must be 1..730")


def masked_command(argv: list[str]) -> str:
    """The command line with any database password masked."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and "://" in value and name.startswith("--"):
            out.append(f"{name}={safe_url(value)}")
        elif "://" in arg:
            out.append(safe_url(arg))
        else:
            out.append(arg)
    return shlex.join(out)


def code_version() -> str:
    """The checked-out commit of the product, and whether the tree has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "")


def maxrss_kib() -> int:
    """This process' peak resident set (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def progress(text: str) -> None:
    """A progress line on stderr, after what the report printed so far."""
    sys.stdout.flush()
    print(f"  ... {text}", file=sys.stderr, flush=True)
