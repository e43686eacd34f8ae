"""The three per-series assets, materialized together in one step per run.

``resolved_series_config`` -> ``class_sessions`` -> ``series_cleanup`` are the
specs of one multi-asset, so a run over a range of series is a single step
(Dagster's per-run and per-step costs are paid once per range, not per series).
Each series' outcome is recorded as its own partition's materialization; series
that fail get none, and the step raises at the end, so exactly the failed
partitions show as failed and can be rerun alone.
"""


import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.defs.events import mark_failed, record_materializations
from seriesgen_pipeline.defs.partitions import class_series_partitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.service import engine as eng
from seriesgen_pipeline.service.reporting import (
    configure_logging,
    log_run,
    series_fields,
    totals,
)
from seriesgen_pipeline.service.settings import SAFEGUARD_MESSAGE

RESOLVED = dg.AssetKey("resolved_series_config")
SESSIONS = dg.AssetKey("class_sessions")
CLEANUP = dg.AssetKey("series_cleanup")
CONFLICT_CHECK = "series_conflicts"


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
                                   description="Conflicts of the run's series (SPEC §6)")],
    partitions_def=class_series_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(500),
    name="series_generation",
    can_subset=False,
)
def series_generation(context: dg.AssetExecutionContext,
                      seriesgen: SeriesgenResource) -> Iterator[Any]:
    """Snapshot, generate and retire every series of the run's partition range."""
    started = time.perf_counter()
    configure_logging(if_unset=True)
    settings = seriesgen.settings()
    if not settings.writes_allowed:
        raise dg.Failure(description=SAFEGUARD_MESSAGE, allow_retries=False)
    engine = seriesgen.engine()
    run_id = context.run.run_id
    now = settings.now()
    keys = list(context.partition_keys)

    taken = eng.take_snapshots(engine, keys=keys, now=now, run_id=run_id)
    previous = eng.previous_run(engine, keys=list(taken), run_id=run_id)
    snapshots = eng.load_snapshots(engine, run_id=run_id, keys=list(taken))
    outcomes = eng.generate(
        engine, [snapshots[k] for k in keys if k in snapshots], now=now, run_id=run_id,
        settings=seriesgen.engine_settings(), notify_recipient=settings.notify_recipient,
    )
    generated = [o.series_key for o in outcomes if o.status == eng.SUCCESS]
    retirements = eng.retire(engine, snapshots.values(), now=now, generated=generated)
    duration_ms = round((time.perf_counter() - started) * 1000)
    log_run(outcomes, run_id=run_id, duration_ms=duration_ms)

    failed = {o.series_key: o.error for o in outcomes if o.status == eng.FAILED}
    record_materializations(context, _materializations(
        context, keys, taken, previous, outcomes, retirements, record_all=bool(failed)))
    broken = [k for k in failed if taken[k].error is not None]
    mark_failed(context, broken, [RESOLVED, SESSIONS, CLEANUP])
    mark_failed(context, [k for k in failed if k not in broken], [SESSIONS, CLEANUP])
    yield _conflict_check(outcomes)
    missing = [k for k in keys if k not in taken]
    summary = {**totals(outcomes), "duration_ms": duration_ms, "missing_series": missing}
    context.log.info(f"run totals: {summary}")
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(keys)} series failed: "
                        + "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:10]),
            metadata={"failed_series": dg.MetadataValue.json(failed),
                      "totals": dg.MetadataValue.json(summary)},
            allow_retries=False,
        )


def _materializations(
    context: dg.AssetExecutionContext, keys: list[str], taken: dict[str, Any],
    previous: eng.PreviousRun, outcomes: list[eng.SeriesOutcome],
    retirements: list[eng.RetirementOutcome], *, record_all: bool,
) -> Iterator[dg.AssetMaterialization]:
    """What to record: everything that changed, is not materialized yet, or failed before.

    When a series failed, the run fails, and every successful series is recorded
    so that none of them can be taken for failed. (The partitions' live status is
    not used: during this run it reads "in progress".)
    """
    wanted = set(keys)
    materialized = {asset: wanted & context.instance.get_materialized_partitions(asset)
                    for asset in (RESOLVED, SESSIONS, CLEANUP)}
    fingerprints = previous.fingerprints

    def needed(asset: dg.AssetKey, key: str, changed: bool) -> bool:
        return (record_all or changed or key not in materialized[asset]
                or previous.statuses.get(key) == eng.FAILED)

    for key, snap in taken.items():
        if snap.error is None and needed(RESOLVED, key, fingerprints.get(key) != snap.fingerprint):
            yield dg.AssetMaterialization(asset_key=RESOLVED, partition=key,
                                          metadata=_snapshot_metadata(snap))
    for outcome in outcomes:
        key = outcome.series_key
        if outcome.status != eng.FAILED and needed(
                SESSIONS, key, outcome.changed or fingerprints.get(key) != taken[key].fingerprint):
            yield dg.AssetMaterialization(asset_key=SESSIONS, partition=key,
                                          metadata=_outcome_metadata(outcome, context.run.run_id))
    generated = {o.series_key for o in outcomes if o.status == eng.SUCCESS}
    for result in retirements:
        if (result.error is None and result.series_key in generated
                and needed(CLEANUP, result.series_key, result.retired)):
            yield dg.AssetMaterialization(asset_key=CLEANUP, partition=result.series_key,
                                          metadata={"retired": result.retired,
                                                    "reason": result.reason,
                                                    "sessions_kept": result.sessions_kept})


def _snapshot_metadata(snap: Any) -> dict[str, Any]:
    return {
        "config_hash": snap.config_hash,
        "fingerprint": snap.fingerprint,
        "series_version": snap.spec.version,
        "provenance": dg.MetadataValue.json(dict(snap.config.provenance)),
        "config": dg.MetadataValue.json(snap.config.as_dict()),
    }


def _outcome_metadata(outcome: eng.SeriesOutcome, run_id: str) -> dict[str, Any]:
    fields = series_fields(outcome, run_id)
    meta: dict[str, Any] = {
        name: fields[name] for name in (
            "status", "created", "updated", "deleted", "protected", "duration_ms")
    }
    meta["window_start"] = fields["window_start"] or ""
    meta["window_end"] = fields["window_end"] or ""
    meta["config_hash"] = outcome.config_hash or ""
    meta["provenance"] = dg.MetadataValue.json(outcome.provenance or {})
    meta["conflicts"] = dg.MetadataValue.json([k.as_dict() for k in outcome.conflicts])
    return meta


def _conflict_check(outcomes: list[eng.SeriesOutcome]) -> dg.AssetCheckResult:
    found = [k for o in outcomes for k in o.conflicts]
    errors = [k for k in found if k.severity == c.ERROR]
    severity = dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN
    by_series: dict[str, list[str]] = {}
    for k in found:
        by_series.setdefault(k.series_key, []).append(f"{k.severity} {k.code}: {k.message}")
    return dg.AssetCheckResult(
        check_name=CONFLICT_CHECK, asset_key=SESSIONS, passed=not found, severity=severity,
        metadata={"errors": len(errors), "warnings": len(found) - len(errors),
                  "conflicts": dg.MetadataValue.json(by_series)},
    )
