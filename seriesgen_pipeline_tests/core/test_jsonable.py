"""The JSON form of the core's values (``as_dict``), one conversion for all of them.

Contract: ``SeriesSpec.as_dict``, ``ConfigValues.as_dict``, ``ResolvedConfig.as_dict``
and ``Conflict.as_dict`` give exactly the dicts they gave when each was written by
hand (dates as ISO text, times as ``HH:MM``, ``exdates`` and sets sorted, tuples
kept in order), so a series' fingerprint and a configuration's ``config_hash``,
which are stored, do not change: the values pinned below were computed before
the conversion was shared.
"""

from __future__ import annotations

from datetime import date

from seriesgen_pipeline.core.config import ConfigValues, resolve_config
from seriesgen_pipeline.core.conflicts import Conflict
from seriesgen_pipeline.core.series import SeriesSpec

SPEC = SeriesSpec(
    id=7, key="east-yoga", branch_id="east", title="Yoga", instructor=None, room="Studio 2",
    capacity=12, recurrence="FREQ=WEEKLY;BYDAY=MO", start_time="18:00", duration_minutes=None,
    start_date=date(2026, 1, 5), end_date=None,
    exdates=(date(2026, 3, 2), date(2026, 2, 16)), version=3)
BASE = ConfigValues(
    horizon_days=28, timezone="UTC", default_duration_minutes=60, default_capacity=20,
    open_time="06:00", close_time="22:00", closed_dates=(date(2026, 12, 25), date(2026, 1, 1)),
    generation_enabled=True, cleanup_grace_days=0)


def test_a_series_as_dict_and_its_fingerprint_are_unchanged() -> None:
    assert SPEC.as_dict() == {
        "id": 7, "key": "east-yoga", "branch_id": "east", "title": "Yoga", "instructor": None,
        "room": "Studio 2", "capacity": 12, "recurrence": "FREQ=WEEKLY;BYDAY=MO",
        "start_time": "18:00", "duration_minutes": None, "start_date": "2026-01-05",
        "end_date": None, "exdates": ["2026-02-16", "2026-03-02"], "version": 3}
    assert list(SPEC.as_dict()) == [
        "id", "key", "branch_id", "title", "instructor", "room", "capacity", "recurrence",
        "start_time", "duration_minutes", "start_date", "end_date", "exdates", "version"]
    assert SPEC.fingerprint() == "6e07e06ae213ff00"
    assert SeriesSpec.from_dict(SPEC.as_dict()).as_dict() == SPEC.as_dict()


def test_configuration_as_dict_and_config_hash_are_unchanged() -> None:
    assert BASE.as_dict() == {
        "horizon_days": 28, "timezone": "UTC", "default_duration_minutes": 60,
        "default_capacity": 20, "open_time": "06:00", "close_time": "22:00",
        "closed_dates": ["2026-12-25", "2026-01-01"], "generation_enabled": True,
        "cleanup_grace_days": 0}
    assert ConfigValues(horizon_days=3).as_dict()["closed_dates"] is None

    resolved = resolve_config(BASE, ConfigValues(closed_dates=(date(2026, 11, 26),)),
                              ConfigValues(horizon_days=14))

    assert resolved.as_dict() == {
        "horizon_days": 14, "timezone": "UTC", "default_duration_minutes": 60,
        "default_capacity": 20, "open_time": "06:00", "close_time": "22:00",
        "closed_dates": ["2026-01-01", "2026-11-26", "2026-12-25"],
        "generation_enabled": True, "cleanup_grace_days": 0}
    assert resolved.config_hash == "2f841f8251138363"


def test_a_conflict_as_dict_keeps_its_dates_in_order_and_its_details() -> None:
    details = {"scope": "base"}
    conflict = Conflict("east-yoga", "CLOSED_DATE", "WARN", "closed",
                        (date(2026, 12, 25), date(2026, 11, 26)), details)

    assert conflict.as_dict() == {
        "series_key": "east-yoga", "code": "CLOSED_DATE", "severity": "WARN",
        "message": "closed", "dates": ["2026-12-25", "2026-11-26"], "details": details}
    assert conflict.as_dict()["details"] is details
