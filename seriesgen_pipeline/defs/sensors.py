"""``class_series_changes``: keeps partitions in step with series and reruns changed ones.

The change test is a content fingerprint of each series and its resolved
configuration (series, branch and base scopes), so an edit by raw SQL that
touches neither ``version`` nor ``updated_at`` is still seen. Fingerprints are
only computed when something may have changed: the database counts every change
of a scheduling input in ``series_changes`` (triggers, so every writer counts,
raw SQL included), and a tick that finds the count it saw last, and the
partitions it left, skips without reading a single series. The cursor holds the
change count, the fingerprints of the last tick and a change sequence number:

- Every tick that requests runs takes the next sequence number, and every run
  key carries it (``change:<first>..<last>:<sequence>``). Run keys are unique per
  change, not per content: a series put back to a value it had before (a reverted
  fix) gets a run key Dagster has never seen, so its run is not skipped as
  "already completed".
- A tick evaluated again from the same cursor (the daemon retrying a tick that
  failed part way) builds the same run keys, so Dagster still launches each
  requested run once.
- A fresh cursor (the first tick, or a cursor reset from the UI) starts the
  sequence at the current Unix time in milliseconds, above any number an earlier
  cursor reached, so keys from before a reset are never reused. Cursors written
  before the sequence existed (the fingerprints alone) still decode.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from dataclasses import dataclass, field

import dagster as dg

from seriesgen_pipeline.defs.partitions import class_series_partitions, sync_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import covering_ranges, generation_job, range_request
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine import current_fingerprints
from seriesgen_pipeline.service.settings import DEFAULT_RUN_CHUNK, SAFEGUARD_MESSAGE

# Cursor text of the current format starts with this, then the change count and a
# ':'; base64 never holds ':'. "2:" cursors (no change count) still decode.
_CURSOR_V3 = "3:"
_CURSOR_V2 = "2:"


@dataclass(frozen=True)
class ChangeCursor:
    """What the sensor remembers between ticks.

    ``sequence`` is the number of the last tick that requested runs (None: this
    cursor never requested any, e.g. it is fresh or of the old format).
    ``changes`` is the input change count read before ``fingerprints`` were
    computed (None: unknown, the next tick computes them).
    """

    fingerprints: dict[str, str] = field(default_factory=dict)
    sequence: int | None = None
    changes: int | None = None

    def next_sequence(self) -> int:
        """The sequence number of the next tick that requests runs."""
        if self.sequence is None:
            return time.time_ns() // 1_000_000
        return self.sequence + 1

    def encode(self) -> str:
        """Compact cursor text."""
        raw = json.dumps({"fingerprints": self.fingerprints, "sequence": self.sequence},
                         separators=(",", ":"), sort_keys=True).encode()
        changes = "" if self.changes is None else str(self.changes)
        return f"{_CURSOR_V3}{changes}:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> ChangeCursor:
    """Inverse of ``ChangeCursor.encode``; also reads the fingerprints-only format.

    An unreadable cursor counts as empty (every series is then rerun once).
    """
    if not cursor:
        return ChangeCursor()
    changes: int | None = None
    if cursor.startswith(_CURSOR_V3):
        count, _, rest = cursor[len(_CURSOR_V3):].partition(":")
        changes = int(count) if count.isdigit() else None
        cursor = _CURSOR_V2 + rest
    versioned = cursor.startswith(_CURSOR_V2)
    text = cursor[len(_CURSOR_V2):] if versioned else cursor
    try:
        loaded = json.loads(zlib.decompress(base64.b64decode(text)))
    except (ValueError, zlib.error):
        return ChangeCursor()
    if not versioned:
        return ChangeCursor(fingerprints=dict(loaded)) if isinstance(loaded, dict) \
            else ChangeCursor()
    sequence = loaded.get("sequence") if isinstance(loaded, dict) else None
    fingerprints = loaded.get("fingerprints") if isinstance(loaded, dict) else None
    if not isinstance(fingerprints, dict) or not isinstance(sequence, int | None):
        return ChangeCursor()
    return ChangeCursor(fingerprints=dict(fingerprints), sequence=sequence, changes=changes)


def change_run_key(first: str, last: str, sequence: int) -> str:
    """The run key of the change run over ``first``..``last`` requested by tick ``sequence``."""
    return f"change:{first}..{last}:{sequence}"


def build_change_sensor(*, chunk_size: int = DEFAULT_RUN_CHUNK) -> dg.SensorDefinition:
    """The change sensor: one ranged run request per block of up to ``chunk_size``
    contiguous changed partitions (``SERIESGEN_RUN_CHUNK``, as the schedule)."""

    @dg.sensor(name="class_series_changes", job=generation_job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Adds and removes class series partitions and reruns changed series.")
    def class_series_changes(context: dg.SensorEvaluationContext,
                             seriesgen: SeriesgenResource) -> dg.SensorResult | dg.SkipReason:
        """Diff series fingerprints against the cursor and request runs for what changed."""
        return _evaluate(context, seriesgen, chunk_size=chunk_size)

    return class_series_changes


def _evaluate(context: dg.SensorEvaluationContext, seriesgen: SeriesgenResource, *,
              chunk_size: int) -> dg.SensorResult | dg.SkipReason:
    if not seriesgen.settings().writes_allowed:
        return dg.SkipReason(SAFEGUARD_MESSAGE)
    engine = seriesgen.engine()
    with engine.connect() as conn:
        changes = repo.input_changes(conn)  # read first: a later change is seen next tick
    cursor = decode_cursor(context.cursor)
    previous = cursor.fingerprints
    partitions = class_series_partitions.get_partition_keys(
        dynamic_partitions_store=context.instance)
    known = set(partitions)
    if changes is not None and changes == cursor.changes and known == set(previous):
        return dg.SkipReason("no series changed")
    current = current_fingerprints(engine)
    added = [key for key in current if key not in known]
    removed = [key for key in partitions if key not in current]
    changed = {key for key, fp in current.items() if previous.get(key) != fp}
    if not (added or removed or changed):
        return dg.SensorResult(skip_reason="no series changed",
                               cursor=ChangeCursor(current, cursor.sequence, changes).encode())
    # Partitions are registered here, in bulk, rather than returned as requests: the
    # daemon would check requested keys one query at a time (docs/dagster.md).
    order = sync_partitions(context.instance, list(current)) if added or removed else partitions
    ranges = covering_ranges(order, changed, max_size=chunk_size)
    sequence = cursor.sequence
    requests = []
    if ranges:
        sequence = cursor.next_sequence()
        requests = [range_request(first, last, run_key=change_run_key(first, last, sequence))
                    for first, last in ranges]
    context.log.info(f"series added {len(added)}, removed {len(removed)}, "
                     f"changed {len(changed)}; {len(requests)} run(s) requested")
    return dg.SensorResult(run_requests=requests,
                           cursor=ChangeCursor(current, sequence, changes).encode())


class_series_changes = build_change_sensor()
