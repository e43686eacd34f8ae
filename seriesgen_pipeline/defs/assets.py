"""The three per-series assets, materialized together in one step per run.

``resolved_series_config`` -> ``class_sessions`` -> ``series_cleanup`` are the
specs of one multi-asset, so a run over a range of series is a single step
(Dagster's per-run and per-step costs are paid once per range, not per series).
Each series' outcome is recorded as its own partition's materialization; series
that fail get none (their error is an observation of their ``class_sessions``
partition), and the step raises at the end, so exactly the failed partitions
show as failed and can be rerun alone.

At its start the step tags its run with the partition range it covers (runs
launched from the UI or by a backfill come without ``seriesgen/partition_range``)
and with its run worker (``defs/monitoring.py``); at its end it records one
``generation_report`` observation whose numeric metadata the UI plots run after
run.
"""


import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.defs.events import mark_failed, record_materializations
from seriesgen_pipeline.defs.internals import (
    DATA_VERSION_TAG,
    latest_data_versions,
    planned_since,
    storage_connections_kept,
)
from seriesgen_pipeline.defs.monitoring import worker_heartbeat
from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline.service.reporting import (
    configure_logging,
    log_run,
    series_fields,
    totals,
)
from seriesgen_pipeline.service.retention import prune_records
from seriesgen_pipeline.service.settings import DEFAULT_RUN_CHUNK, SAFEGUARD_MESSAGE

RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
REPORT = dg.AssetKey("generation_report")
CONFLICT_CHECK = "series_conflicts"
RANGE_TAG = "seriesgen/partition_range"
# A run whose every series fails (a broken base configuration) observes this many
# failed partitions with their error; the rest are in the run's failure metadata.
MAX_ERROR_OBSERVATIONS = 500
# Series with warnings only whose conflicts the check's metadata lists (see _conflict_check).
MAX_CHECK_SERIES = 100

CONFLICT_CHECK_DESCRIPTION = (
    "Fails when a series of the run has a conflict that stops its generation (unknown "
    "branch, invalid time zone or recurrence, end before start, incomplete base "
    "configuration, an unreadable value): that series' partition fails too; fix the "
    "series or its configuration and the sensor reruns it. Warnings (outside business "
    "hours, closed dates, shifted or ambiguous DST times, double-booked rooms or "
    "instructors, no occurrence) do not fail the check: they are counted and listed "
    "per series in its metadata, and by `seriesgen conflicts`.")

generation_report = dg.AssetSpec(
    REPORT, group_name="seriesgen",
    description="One observation per generation run: series, created, updated, deleted, "
                "protected, failed and duration_ms, plotted over time on the asset's page.")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(RESOLVED, skippable=True, group_name="seriesgen",
                     description="Snapshot of each series and its resolved configuration, "
                                 "with provenance (stored in the application database)."),
        dg.AssetSpec(SESSIONS, skippable=True, deps=[RESOLVED], group_name="seriesgen",
                     description="The class sessions generated from the snapshot."),
        dg.AssetSpec(CLEANUP, skippable=True, deps=[SESSIONS], group_name="seriesgen",
                     description="Retirement of series past end_date + cleanup_grace_days."),
    ],
    check_specs=[dg.AssetCheckSpec(CONFLICT_CHECK, asset=SESSIONS,
                                   description=CONFLICT_CHECK_DESCRIPTION)],
    partitions_def=class_series_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(DEFAULT_RUN_CHUNK),
    name="series_generation",
    can_subset=False,
)
def series_generation(context: dg.AssetExecutionContext,
                      seriesgen: SeriesgenResource) -> Iterator[Any]:
    """Snapshot, generate and retire every series of the run's partition range."""
    keys = list(context.partition_keys)
    run_tags = {} if RANGE_TAG in context.run.tags else {RANGE_TAG: _range_text(context)}
    with (worker_heartbeat(context.instance, context.run.run_id, run_tags),
          storage_connections_kept(context.instance)):
        yield from _generate(context, seriesgen, keys)


def _range_text(context: dg.AssetExecutionContext) -> str:
    key_range = context.partition_key_range
    return f"{key_range.start}..{key_range.end}"


def _generate(context: dg.AssetExecutionContext, seriesgen: SeriesgenResource,
              keys: list[str]) -> Iterator[Any]:
    started = time.perf_counter()
    configure_logging(if_unset=True)
    settings = seriesgen.settings()
    if not settings.writes_allowed:
        raise dg.Failure(description=SAFEGUARD_MESSAGE, allow_retries=False)
    engine = seriesgen.engine()
    run_id = context.run.run_id
    now = settings.now()

    taken = eng.take_snapshots(engine, keys=keys, now=now, run_id=run_id)
    previous = eng.previous_run(engine, keys=list(taken), run_id=run_id)
    outcomes = eng.generate(
        engine, [taken[k] for k in keys if k in taken], now=now, run_id=run_id,
        settings=seriesgen.engine_settings(), notify_recipient=settings.notify_recipient,
    )
    generated = [o.series_key for o in outcomes if o.status == eng.SUCCESS]
    retirements = eng.retire(engine, taken.values(), now=now, generated=generated)
    prune_records(engine, series_keys=list(taken), retention_days=settings.retention_days)
    duration_ms = round((time.perf_counter() - started) * 1000)
    log_run(outcomes, run_id=run_id, duration_ms=duration_ms)

    failed = {o.series_key: o.error for o in outcomes if o.status == eng.FAILED}
    record_materializations(context, _materializations(
        context, keys, taken, previous, outcomes, retirements, record_all=bool(failed)))
    broken = [k for k in failed if taken[k].error is not None]
    mark_failed(context, broken, [RESOLVED, SESSIONS, CLEANUP])
    mark_failed(context, [k for k in failed if k not in broken], [SESSIONS, CLEANUP])
    for key, error in list(failed.items())[:MAX_ERROR_OBSERVATIONS]:
        context.log_event(dg.AssetObservation(
            asset_key=SESSIONS, partition=key,
            metadata={"status": str(eng.FAILED), "error": error or "", "run_id": run_id}))
    yield _conflict_check(outcomes)
    missing = [k for k in keys if k not in taken]
    summary = {**totals(outcomes), "duration_ms": duration_ms, "missing_series": missing}
    context.log.info(f"run totals: {summary}")
    context.log_event(_report(summary, _range_text(context)))
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(keys)} series failed: "
                        + "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:10]),
            metadata={"failed_series": dg.MetadataValue.json(failed),
                      "totals": dg.MetadataValue.json(summary)},
            allow_retries=False,
        )


def _report(summary: dict[str, Any], partition_range: str) -> dg.AssetObservation:
    """The run's figures as one observation of the unpartitioned ``generation_report``."""
    numbers = {name: int(summary[name]) for name in (
        "series", "created", "updated", "deleted", "protected", "failed", "skipped",
        "duration_ms")}
    return dg.AssetObservation(asset_key=REPORT, metadata={
        **numbers, "missing": len(summary["missing_series"]),
        "partition_range": partition_range})


def _materializations(
    context: dg.AssetExecutionContext, keys: list[str], taken: dict[str, Any],
    previous: eng.PreviousRun, outcomes: list[eng.SeriesOutcome],
    retirements: list[eng.RetirementOutcome], *, record_all: bool,
) -> Iterator[dg.AssetMaterialization]:
    """What to record: everything that changed, is not materialized yet, or failed before.

    "Changed" is judged against what Dagster last *recorded* for the partition (the
    fingerprint its latest materialization carries as data version), not against the
    last snapshot stored: a run killed after storing its snapshot recorded nothing, and
    its rerun must record the new fingerprint. A partition whose latest planned
    event is newer than its latest materialization did not complete its last run
    (it failed or crashed) and is recorded again. When a series failed in this run,
    the run fails, and every successful series is recorded so that none of them can
    be taken for failed.
    """
    last = _last_recorded(context.instance, keys)

    def needed(asset: dg.AssetKey, key: str, changed: bool) -> bool:
        recorded = last[asset]
        return (record_all or changed or key not in recorded.materialized
                or key in recorded.unfinished or previous.statuses.get(key) == eng.FAILED
                or (asset != CLEANUP and recorded.fingerprints.get(key) != taken[key].fingerprint))

    for key, snap in taken.items():
        if snap.error is None and needed(RESOLVED, key, False):
            yield dg.AssetMaterialization(asset_key=RESOLVED, partition=key,
                                          metadata=_snapshot_metadata(snap),
                                          tags=_data_version(snap.fingerprint))
    for outcome in outcomes:
        key = outcome.series_key
        if outcome.status != eng.FAILED and needed(SESSIONS, key, outcome.changed):
            yield dg.AssetMaterialization(
                asset_key=SESSIONS, partition=key,
                metadata=_outcome_metadata(outcome, context.run.run_id, taken[key].fingerprint),
                tags=_data_version(taken[key].fingerprint))
    generated = {o.series_key for o in outcomes if o.status == eng.SUCCESS}
    for result in retirements:
        if (result.error is None and result.series_key in generated
                and needed(CLEANUP, result.series_key, result.retired)):
            yield dg.AssetMaterialization(asset_key=CLEANUP, partition=result.series_key,
                                          metadata={"retired": result.retired,
                                                    "reason": result.reason,
                                                    "sessions_kept": result.sessions_kept})


class _Recorded:
    """What the instance holds for some partitions of one asset."""

    def __init__(self, materialized: set[str], unfinished: set[str]) -> None:
        self.materialized = materialized
        self.unfinished = unfinished
        self.fingerprints: dict[str, str | None] = {}


def _last_recorded(instance: dg.DagsterInstance, keys: list[str]) -> dict[dg.AssetKey, _Recorded]:
    """Per asset and partition of ``keys``: materialized or not, last attempt unfinished
    (a planned event newer than its latest materialization), and — for the snapshot and
    the sessions — the fingerprint its latest materialization recorded.

    Per-partition planned events are few (those of failures, and of runs of a single
    partition): they are read without naming the partitions (``planned_since``).
    The fingerprint is recorded as the materialization's data version, which is read
    back for every partition in one query per asset; a latest materialization without
    one (recorded otherwise, e.g. reported from the UI) has no fingerprint, so the
    partition is recorded again.
    """
    wanted = set(keys)
    found = {}
    for asset in (RESOLVED, SESSIONS, CLEANUP):
        latest = dict(instance.get_latest_storage_id_by_partition(
            asset, dg.DagsterEventType.ASSET_MATERIALIZATION, wanted))
        found[asset] = _Recorded(set(latest), {
            key for key, storage_id in planned_since(instance, asset, latest, wanted).items()
            if storage_id > latest.get(key, 0)})
    for asset in (RESOLVED, SESSIONS):
        found[asset].fingerprints = dict(
            latest_data_versions(instance, asset, sorted(found[asset].materialized)))
    return found


def _data_version(fingerprint: str) -> dict[str, str]:
    """The snapshot's fingerprint as the materialization's data version (shown in the UI)."""
    return {DATA_VERSION_TAG: fingerprint}


def _snapshot_metadata(snap: Any) -> dict[str, Any]:
    return {
        "config_hash": snap.config_hash,
        "fingerprint": snap.fingerprint,
        "series_version": snap.spec.version,
        "provenance": dg.MetadataValue.json(dict(snap.config.provenance)),
        "config": dg.MetadataValue.json(snap.config.as_dict()),
    }


def _outcome_metadata(outcome: eng.SeriesOutcome, run_id: str,
                      fingerprint: str) -> dict[str, Any]:
    fields = series_fields(outcome, run_id)
    meta: dict[str, Any] = {
        name: fields[name] for name in (
            "status", "created", "updated", "deleted", "protected", "duration_ms")
    }
    meta["window_start"] = fields["window_start"] or ""
    meta["window_end"] = fields["window_end"] or ""
    meta["config_hash"] = outcome.config_hash or ""
    meta["fingerprint"] = fingerprint
    meta["provenance"] = dg.MetadataValue.json(outcome.provenance or {})
    meta["conflicts"] = dg.MetadataValue.json([k.as_dict() for k in outcome.conflicts])
    return meta


def _conflict_check(outcomes: list[eng.SeriesOutcome]) -> dg.AssetCheckResult:
    """Errors fail the check; warnings are counted and listed, and leave it passed.

    Its metadata lists the conflicts of every series stopped by an error, and those
    of at most ``MAX_CHECK_SERIES`` series with warnings only: Dagster keeps every
    check evaluation, and a night's full list (``seriesgen conflicts``) would add
    hundreds of kilobytes per run to the instance every night.
    """
    found = [k for o in outcomes for k in o.conflicts]
    errors = [k for k in found if k.severity == c.ERROR]
    stopped = {k.series_key for k in errors}
    warned = sorted({k.series_key for k in found} - stopped)[:MAX_CHECK_SERIES]
    listed = stopped | set(warned)
    by_series: dict[str, list[str]] = {}
    for k in found:
        if k.series_key in listed:
            by_series.setdefault(k.series_key, []).append(
                f"{k.severity} {k.code}: {k.message}")
    return dg.AssetCheckResult(
        check_name=CONFLICT_CHECK, asset_key=SESSIONS, passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{len({k.series_key for k in errors})} series stopped by errors"
                     if errors else "no series stopped by an error")
                    + f"; {len(found) - len(errors)} warning(s)",
        metadata={"errors": len(errors), "warnings": len(found) - len(errors),
                  "series_with_errors": dg.MetadataValue.json(
                      sorted({k.series_key for k in errors})),
                  "series_with_warnings": len({k.series_key for k in found
                                               if k.severity != c.ERROR}),
                  "conflicts": dg.MetadataValue.json(by_series)},
    )
