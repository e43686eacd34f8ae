"""Generation for one series or many: snapshot -> plan -> apply in committed chunks.

- ``take_snapshots`` reads every series and configuration scope in one
  transaction, resolves and validates each series, and stores the snapshots in
  the application database (FR-011).
- ``generate`` expands each valid snapshot over its window (pure core), then,
  in batches of series, takes the series' locks, reads their rows, plans, and
  applies the plan in chunk transactions; each chunk advances
  ``last_generated_through`` of the series it covers in the same transaction
  (FR-010). A broken series fails alone; the others are generated.
- ``retire`` deletes series past ``end_date + cleanup_grace_days`` whose
  occurrences are all committed; their sessions stay (FR-004).

One module a job: ``snapshots``, ``generation`` (the run, batch by batch),
``planning``, ``writing`` (chunk transactions), ``recording`` (generation log,
conflicts, double bookings, notifications), ``retirement``; ``work`` holds a
series' state between preparation and outcome, ``outcomes`` what a run reports.
Callers use this package: ``from seriesgen_pipeline.service import engine as eng``.
"""

from seriesgen_pipeline.service.engine.generation import generate
from seriesgen_pipeline.service.engine.outcomes import (
    FAILED,
    SKIPPED,
    SUCCESS,
    RetirementOutcome,
    SeriesOutcome,
    Status,
)
from seriesgen_pipeline.service.engine.retirement import retire
from seriesgen_pipeline.service.engine.snapshots import (
    PreviousRun,
    current_fingerprints,
    previous_run,
    take_snapshots,
)
from seriesgen_pipeline.service.engine.work import EngineSettings

__all__ = [
    "FAILED",
    "SKIPPED",
    "SUCCESS",
    "EngineSettings",
    "PreviousRun",
    "RetirementOutcome",
    "SeriesOutcome",
    "Status",
    "current_fingerprints",
    "generate",
    "previous_run",
    "retire",
    "take_snapshots",
]
