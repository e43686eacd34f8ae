"""The conflict check's metadata stays small however many series warn.

Contract (``defs/assets.py``): the ``series_conflicts`` check of a run counts every
error and warning, names every series stopped by an error with its conflicts, and
lists the conflicts of at most ``MAX_CHECK_SERIES`` series with warnings only (the
first by key); ``seriesgen conflicts`` has them all. Dagster keeps every check
evaluation, so the list would otherwise grow the instance by hundreds of kilobytes
per run, every night.
"""

from __future__ import annotations

from seriesgen_pipeline.core import conflicts as c
from seriesgen_pipeline.defs.assets import MAX_CHECK_SERIES, _conflict_check
from seriesgen_pipeline.service import engine as eng


def _outcome(key: str, severity: str, code: str) -> eng.SeriesOutcome:
    status = eng.FAILED if severity == c.ERROR else eng.SUCCESS
    return eng.SeriesOutcome(key, status, conflicts=(
        c.Conflict(key, code, severity, f"{code} of {key}", (), {}),))


def test_every_error_and_at_most_a_hundred_warned_series_are_listed() -> None:
    warned = [f"w{i:04d}" for i in range(250)]
    outcomes = ([_outcome(key, c.WARN, c.OUTSIDE_BUSINESS_HOURS) for key in warned]
                + [_outcome(key, c.ERROR, c.INVALID_TIMEZONE) for key in ("z1", "z2")])

    result = _conflict_check(outcomes)

    meta = {name: value.value for name, value in result.metadata.items()}
    assert not result.passed
    assert (meta["errors"], meta["warnings"], meta["series_with_warnings"]) == (2, 250, 250)
    assert meta["series_with_errors"] == ["z1", "z2"]
    assert MAX_CHECK_SERIES == 100
    assert sorted(meta["conflicts"]) == [*warned[:100], "z1", "z2"]
    assert meta["conflicts"]["z2"] == ["ERROR INVALID_TIMEZONE: INVALID_TIMEZONE of z2"]
