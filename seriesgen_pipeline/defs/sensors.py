"""``class_series_changes``: keeps partitions in step with series and reruns changed ones.

The change test is a content fingerprint of each series and its resolved
configuration (series, branch and base scopes), so an edit by raw SQL that
touches neither ``version`` nor ``updated_at`` is still seen. The cursor holds
the fingerprints of the last tick.
"""


import base64
import json
import zlib

import dagster as dg

from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import contiguous_ranges, generation_job, range_request
from seriesgen_pipeline.service.engine import current_fingerprints
from seriesgen_pipeline.service.settings import SAFEGUARD_MESSAGE

RUN_CHUNK = 500


def encode_cursor(fingerprints: dict[str, str]) -> str:
    """Compact cursor text for ``key -> fingerprint``."""
    raw = json.dumps(fingerprints, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> dict[str, str]:
    """Inverse of ``encode_cursor``; an unreadable cursor counts as empty."""
    if not cursor:
        return {}
    try:
        return dict(json.loads(zlib.decompress(base64.b64decode(cursor))))
    except (ValueError, zlib.error):
        return {}


@dg.sensor(name="class_series_changes", job=generation_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds and removes class series partitions and reruns changed series.")
def class_series_changes(context: dg.SensorEvaluationContext,
                         seriesgen: SeriesgenResource) -> dg.SensorResult | dg.SkipReason:
    """Diff series fingerprints against the cursor and request runs for what changed."""
    if not seriesgen.settings().writes_allowed:
        return dg.SkipReason(SAFEGUARD_MESSAGE)
    current = current_fingerprints(seriesgen.engine())
    previous = decode_cursor(context.cursor)
    partitions = class_series_partitions.get_partition_keys(
        dynamic_partitions_store=context.instance)
    known = set(partitions)
    added = [key for key in current if key not in known]
    removed = [key for key in partitions if key not in current]
    changed = {key for key, fp in current.items() if previous.get(key) != fp}
    if not (added or removed or changed):
        return dg.SkipReason("no series changed")
    order = [key for key in partitions if key in current] + added
    requests = [
        range_request(first, last, run_key=_run_key(order, first, last, current))
        for first, last in contiguous_ranges(order, changed, max_size=RUN_CHUNK)
    ]
    dynamic = []
    if added:
        dynamic.append(class_series_partitions.build_add_request(added))
    if removed:
        dynamic.append(class_series_partitions.build_delete_request(removed))
    context.log.info(f"series added {len(added)}, removed {len(removed)}, "
                     f"changed {len(changed)}; {len(requests)} run(s) requested")
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=dynamic,
                           cursor=encode_cursor(current))


def _run_key(order: list[str], first: str, last: str, fingerprints: dict[str, str]) -> str:
    keys = order[order.index(first):order.index(last) + 1]
    digest = zlib.crc32("".join(fingerprints[k] for k in keys).encode())
    return f"change:{first}..{last}:{digest:08x}"
