"""``class_series_changes``: keeps partitions in step with series and reruns changed ones.

The change test is a content fingerprint of each series and its resolved
configuration (series, branch and base scopes), so an edit by raw SQL that
touches neither ``version`` nor ``updated_at`` is still seen. Fingerprints are
only computed when something may have changed: the database counts every change
of a scheduling input in ``series_changes`` (triggers, so every writer counts,
raw SQL included), and a tick that finds the count it saw last, and the
partitions it left, skips without reading a single series. The cursor holds the
change count, a reference to the fingerprints of the last tick (kept in the
instance, ``save_cursor``) and a change sequence number:

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
import hashlib
import json
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

from seriesgen_pipeline.defs.internals import get_instance_value, set_instance_value
from seriesgen_pipeline.defs.partitions import class_series_partitions, sync_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import covering_ranges, generation_job, range_request
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline.service.engine import current_fingerprints
from seriesgen_pipeline.service.settings import SAFEGUARD_MESSAGE, run_size

# Cursor text of the current format starts with this, then the change count and a
# ':'; base64 never holds ':'. "3:" cursors (fingerprints inline) and "2:" ones (no
# change count) still decode.
_CURSOR_V4 = "4:"
_CURSOR_V3 = "3:"
_CURSOR_V2 = "2:"
# The two slots of the instance's key-value store that hold the fingerprints.
_SLOT_KEY = "seriesgen/class_series_changes/fingerprints/{}"


@dataclass(frozen=True)
class ChangeCursor:
    """What the sensor remembers between ticks.

    ``sequence`` is the number of the last tick that requested runs (None: this
    cursor never requested any, e.g. it is fresh or of an old format).
    ``changes`` is the input change count read before ``fingerprints`` were
    computed (None: unknown, the next tick computes them). ``slot`` is where the
    fingerprints are kept (None: not kept yet).
    """

    fingerprints: dict[str, str] = field(default_factory=dict)
    sequence: int | None = None
    changes: int | None = None
    slot: int | None = None

    def next_sequence(self) -> int:
        """The sequence number of the next tick that requests runs."""
        if self.sequence is None:
            return time.time_ns() // 1_000_000
        return self.sequence + 1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _keys_digest(keys: Iterable[str]) -> str:
    return _digest("\n".join(sorted(keys)))


def save_cursor(instance: dg.DagsterInstance, cursor: ChangeCursor,
                previous: ChangeCursor) -> str:
    """The cursor text of ``cursor``; its fingerprints are kept in the instance.

    Dagster copies a sensor's cursor into every tick record, skipped ticks too (a
    tick every 30 s), so the fingerprints (about 17 bytes a series, compressed) are
    kept in one of two slots of the instance's key-value store instead, and the
    cursor names the slot and the digest of its content. Fingerprints equal to the
    previous cursor's stay where they are; new ones go into the other slot, so a
    tick evaluated again from the previous cursor (the daemon retrying it) still
    finds that cursor's fingerprints.
    """
    raw = json.dumps(cursor.fingerprints, separators=(",", ":"), sort_keys=True)
    digest = _digest(raw)
    if previous.slot is not None and previous.fingerprints == cursor.fingerprints:
        slot = previous.slot
    else:
        slot = 1 - previous.slot if previous.slot is not None else 0
        set_instance_value(instance, _SLOT_KEY.format(slot),
                           f"{digest}:" + base64.b64encode(zlib.compress(raw.encode(), 9))
                           .decode())
    body = json.dumps({"slot": slot, "digest": digest, "sequence": cursor.sequence,
                       "keys": _keys_digest(cursor.fingerprints)},
                      separators=(",", ":"), sort_keys=True).encode()
    changes = "" if cursor.changes is None else str(cursor.changes)
    return f"{_CURSOR_V4}{changes}:" + base64.b64encode(body).decode()


def cursor_keys(cursor: str | None) -> str | None:
    """The digest of the partition keys a current-format cursor saw (None: unknown)."""
    if not cursor or not cursor.startswith(_CURSOR_V4):
        return None
    try:
        found = json.loads(base64.b64decode(cursor[len(_CURSOR_V4):].partition(":")[2]))
    except ValueError:
        return None
    keys = found.get("keys") if isinstance(found, dict) else None
    return keys if isinstance(keys, str) else None


def load_cursor(instance: dg.DagsterInstance, cursor: str | None) -> ChangeCursor:
    """Inverse of ``save_cursor``; also reads the earlier formats (``decode_cursor``).

    A cursor whose slot no longer holds its fingerprints (overwritten twice since:
    only a cursor set by hand can be that old) counts as empty, as an unreadable one.
    """
    if not cursor or not cursor.startswith(_CURSOR_V4):
        return decode_cursor(cursor)
    count, _, rest = cursor[len(_CURSOR_V4):].partition(":")
    try:
        found = json.loads(base64.b64decode(rest))
        slot, digest, sequence = found["slot"], found["digest"], found["sequence"]
    except (ValueError, TypeError, KeyError):
        return ChangeCursor()
    if slot not in (0, 1) or not isinstance(sequence, int | None):
        return ChangeCursor()
    stored = get_instance_value(instance, _SLOT_KEY.format(slot)) or ""
    kept, _, payload = stored.partition(":")
    if kept != digest:
        return ChangeCursor()
    try:
        fingerprints = json.loads(zlib.decompress(base64.b64decode(payload)))
    except (ValueError, zlib.error):
        return ChangeCursor()
    if not isinstance(fingerprints, dict):
        return ChangeCursor()
    return ChangeCursor(fingerprints, sequence, int(count) if count.isdigit() else None, slot)


def decode_cursor(cursor: str | None) -> ChangeCursor:
    """A cursor of an earlier format, fingerprints inline ("3:", "2:" or bare).

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


def build_change_sensor(*, chunk_size: int | None = None) -> dg.SensorDefinition:
    """The change sensor: one ranged run request per block of up to ``chunk_size``
    contiguous changed partitions (``SERIESGEN_RUN_CHUNK``; by default ``run_size`` of
    the partitions from the first changed one to the last)."""

    @dg.sensor(name="class_series_changes", job=generation_job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Adds and removes class series partitions and reruns changed series.")
    def class_series_changes(context: dg.SensorEvaluationContext,
                             seriesgen: SeriesgenResource) -> dg.SensorResult | dg.SkipReason:
        """Diff series fingerprints against the cursor and request runs for what changed."""
        return _evaluate(context, seriesgen, chunk_size=chunk_size)

    return class_series_changes


def _evaluate(context: dg.SensorEvaluationContext, seriesgen: SeriesgenResource, *,
              chunk_size: int | None) -> dg.SensorResult | dg.SkipReason:
    if not seriesgen.settings().writes_allowed:
        return dg.SkipReason(SAFEGUARD_MESSAGE)
    engine = seriesgen.engine()
    with engine.connect() as conn:
        changes = repo.input_changes(conn)  # read first: a later change is seen next tick
    partitions = class_series_partitions.get_partition_keys(
        dynamic_partitions_store=context.instance)
    if (changes is not None and context.cursor is not None
            and context.cursor.startswith(f"{_CURSOR_V4}{changes}:")
            and cursor_keys(context.cursor) == _keys_digest(partitions)):
        return dg.SkipReason("no series changed")
    cursor = load_cursor(context.instance, context.cursor)
    previous = cursor.fingerprints
    known = set(partitions)
    if changes is not None and changes == cursor.changes and known == set(previous):
        return dg.SkipReason("no series changed")
    current = current_fingerprints(engine)
    added = [key for key in current if key not in known]
    removed = [key for key in partitions if key not in current]
    changed = {key for key, fp in current.items() if previous.get(key) != fp}
    if not (added or removed or changed):
        return dg.SensorResult(skip_reason="no series changed", cursor=save_cursor(
            context.instance, ChangeCursor(current, cursor.sequence, changes), cursor))
    # Partitions are registered here, in bulk, rather than returned as requests: the
    # daemon would check requested keys one query at a time (docs/dagster.md).
    order = sync_partitions(context.instance, list(current)) if added or removed else partitions
    ranges = covering_ranges(order, changed, max_size=run_size(chunk_size, _span(order, changed)))
    sequence = cursor.sequence
    requests = []
    if ranges:
        sequence = cursor.next_sequence()
        requests = [range_request(first, last, run_key=change_run_key(first, last, sequence))
                    for first, last in ranges]
    context.log.info(f"series added {len(added)}, removed {len(removed)}, "
                     f"changed {len(changed)}; {len(requests)} run(s) requested")
    return dg.SensorResult(run_requests=requests, cursor=save_cursor(
        context.instance, ChangeCursor(current, sequence, changes), cursor))


def _span(order: list[str], changed: set[str]) -> int:
    """Partitions from the first changed one to the last, in partition order: what
    the sensor's runs cover (a block of edits makes runs of 2,500 that run side by side;
    edits scattered over 100,000 series make ten runs, as a night would)."""
    at = [i for i, key in enumerate(order) if key in changed]
    return at[-1] - at[0] + 1 if at else 0


class_series_changes = build_change_sensor()
