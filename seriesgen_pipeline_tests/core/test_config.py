"""Contract of ``core.config.resolve_config`` (SPEC §2, FR-001).

- Every field is resolved on its own: the most specific scope that sets it
  (non-null) wins, series > branch > base; "set" includes falsy values such as
  ``False`` and ``0``.
- The resolved configuration reports, per field, the scope it came from.
- ``closed_dates`` is the union of the three scopes; its provenance lists the
  contributing scopes (``base+branch+series`` order), ``base`` when none lists a date.
- A base that leaves any field unset raises ``IncompleteBaseConfigError`` naming
  every missing field, even when other scopes set them.
- Out-of-range values (horizon 1..730, duration 1..1440, capacity >= 0, grace >= 0,
  ``HH:MM`` times, IANA zones, boolean switch) raise a ``SeriesDefinitionError``
  naming the field and the scope that set it.
- ``config_hash`` depends on the resolved content only: equal content gives an
  equal hash whatever the provenance and the order of ``closed_dates``, and it is
  the same in every process; any change of content changes it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from seriesgen_pipeline.core.config import (
    CONFIG_FIELDS,
    BranchResolver,
    ConfigValues,
    resolve_config,
)
from seriesgen_pipeline.core.errors import (
    IncompleteBaseConfigError,
    InvalidTimezoneError,
    SeriesDefinitionError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

XMAS = date(2026, 12, 25)
JULY4 = date(2026, 7, 4)
MAYDAY = date(2026, 5, 1)

BASE = ConfigValues(
    horizon_days=28,
    timezone="UTC",
    default_duration_minutes=60,
    default_capacity=20,
    open_time="06:00",
    close_time="22:00",
    closed_dates=(XMAS,),
    generation_enabled=True,
    cleanup_grace_days=0,
)
BRANCH = ConfigValues(
    horizon_days=56,
    timezone="America/New_York",
    default_duration_minutes=45,
    default_capacity=12,
    open_time="07:00",
    close_time="21:00",
    closed_dates=(JULY4,),
    generation_enabled=False,
    cleanup_grace_days=3,
)
SERIES = ConfigValues(
    horizon_days=14,
    timezone="Europe/London",
    default_duration_minutes=90,
    default_capacity=8,
    open_time="08:00",
    close_time="20:00",
    closed_dates=(MAYDAY,),
    generation_enabled=True,
    cleanup_grace_days=7,
)

# The resolved value each scope's raw value turns into.
RESOLVED = {
    "base": {
        "horizon_days": 28, "timezone": "UTC", "default_duration_minutes": 60,
        "default_capacity": 20, "open_time": time(6, 0), "close_time": time(22, 0),
        "generation_enabled": True, "cleanup_grace_days": 0,
    },
    "branch": {
        "horizon_days": 56, "timezone": "America/New_York", "default_duration_minutes": 45,
        "default_capacity": 12, "open_time": time(7, 0), "close_time": time(21, 0),
        "generation_enabled": False, "cleanup_grace_days": 3,
    },
    "series": {
        "horizon_days": 14, "timezone": "Europe/London", "default_duration_minutes": 90,
        "default_capacity": 8, "open_time": time(8, 0), "close_time": time(20, 0),
        "generation_enabled": True, "cleanup_grace_days": 7,
    },
}
SCALAR_FIELDS = [name for name in CONFIG_FIELDS if name != "closed_dates"]


def only(values: ConfigValues, name: str) -> ConfigValues:
    """A scope that sets ``name`` (taken from ``values``) and nothing else."""
    return ConfigValues(**{name: getattr(values, name)})


def test_scalar_fields_list_is_the_spec_table() -> None:
    assert SCALAR_FIELDS == [
        "horizon_days", "timezone", "default_duration_minutes", "default_capacity",
        "open_time", "close_time", "generation_enabled", "cleanup_grace_days",
    ]
    assert set(CONFIG_FIELDS) == {*SCALAR_FIELDS, "closed_dates"}


def test_base_alone_resolves_every_field_from_base() -> None:
    resolved = resolve_config(BASE)
    for name in SCALAR_FIELDS:
        assert getattr(resolved, name) == RESOLVED["base"][name], name
    assert resolved.closed_dates == frozenset({XMAS})
    assert resolved.provenance == {name: "base" for name in CONFIG_FIELDS}


@pytest.mark.parametrize("name", SCALAR_FIELDS)
def test_branch_overrides_base_for_each_field(name: str) -> None:
    resolved = resolve_config(BASE, only(BRANCH, name), None)
    assert getattr(resolved, name) == RESOLVED["branch"][name]
    assert resolved.provenance[name] == "branch"
    for other in SCALAR_FIELDS:
        if other != name:
            assert getattr(resolved, other) == RESOLVED["base"][other], other
            assert resolved.provenance[other] == "base", other


@pytest.mark.parametrize("name", SCALAR_FIELDS)
def test_series_overrides_branch_and_base_for_each_field(name: str) -> None:
    resolved = resolve_config(BASE, only(BRANCH, name), only(SERIES, name))
    assert getattr(resolved, name) == RESOLVED["series"][name]
    assert resolved.provenance[name] == "series"
    for other in SCALAR_FIELDS:
        if other != name:
            assert getattr(resolved, other) == RESOLVED["base"][other], other
            assert resolved.provenance[other] == "base", other


@pytest.mark.parametrize("name", SCALAR_FIELDS)
def test_series_overrides_base_when_branch_is_silent(name: str) -> None:
    resolved = resolve_config(BASE, ConfigValues(), only(SERIES, name))
    assert getattr(resolved, name) == RESOLVED["series"][name]
    assert resolved.provenance[name] == "series"


def test_fields_resolve_independently_across_scopes() -> None:
    branch = ConfigValues(timezone="America/New_York", horizon_days=56, open_time="07:00")
    series = ConfigValues(horizon_days=14, default_capacity=8)
    resolved = resolve_config(BASE, branch, series)
    assert resolved.horizon_days == 14
    assert resolved.timezone == "America/New_York"
    assert resolved.open_time == time(7, 0)
    assert resolved.default_capacity == 8
    assert resolved.close_time == time(22, 0)
    assert resolved.default_duration_minutes == 60
    assert resolved.provenance == {
        "horizon_days": "series",
        "timezone": "branch",
        "default_duration_minutes": "base",
        "default_capacity": "series",
        "open_time": "branch",
        "close_time": "base",
        "closed_dates": "base",
        "generation_enabled": "base",
        "cleanup_grace_days": "base",
    }


def test_full_series_scope_wins_everywhere() -> None:
    resolved = resolve_config(BASE, BRANCH, SERIES)
    for name in SCALAR_FIELDS:
        assert getattr(resolved, name) == RESOLVED["series"][name], name
        assert resolved.provenance[name] == "series", name


def test_full_branch_scope_wins_over_base() -> None:
    resolved = resolve_config(BASE, BRANCH, ConfigValues())
    for name in SCALAR_FIELDS:
        assert getattr(resolved, name) == RESOLVED["branch"][name], name
        assert resolved.provenance[name] == "branch", name


@pytest.mark.parametrize(
    ("name", "branch_value", "series_value"),
    [
        ("generation_enabled", True, False),
        ("cleanup_grace_days", 5, 0),
        ("default_capacity", 30, 0),
    ],
)
def test_falsy_values_are_set_not_inherited(
    name: str, branch_value: Any, series_value: Any
) -> None:
    resolved = resolve_config(
        BASE, ConfigValues(**{name: branch_value}), ConfigValues(**{name: series_value})
    )
    assert getattr(resolved, name) == series_value
    assert resolved.provenance[name] == "series"


def test_generation_disabled_at_branch_beats_enabled_base() -> None:
    resolved = resolve_config(BASE, ConfigValues(generation_enabled=False))
    assert resolved.generation_enabled is False
    assert resolved.provenance["generation_enabled"] == "branch"


# closed_dates ---------------------------------------------------------------


def test_closed_dates_are_the_union_of_all_scopes() -> None:
    resolved = resolve_config(BASE, BRANCH, SERIES)
    assert resolved.closed_dates == frozenset({XMAS, JULY4, MAYDAY})
    assert resolved.provenance["closed_dates"] == "base+branch+series"


@pytest.mark.parametrize(
    ("base_dates", "branch_dates", "series_dates", "expected", "provenance"),
    [
        ((XMAS,), None, None, {XMAS}, "base"),
        ((XMAS,), (JULY4,), None, {XMAS, JULY4}, "base+branch"),
        ((XMAS,), None, (MAYDAY,), {XMAS, MAYDAY}, "base+series"),
        ((), (JULY4,), None, {JULY4}, "branch"),
        ((), None, (MAYDAY,), {MAYDAY}, "series"),
        ((), (JULY4,), (MAYDAY, JULY4), {JULY4, MAYDAY}, "branch+series"),
        ((), (), (), set(), "base"),
        ((XMAS,), (XMAS,), (XMAS,), {XMAS}, "base+branch+series"),
    ],
)
def test_closed_dates_union_and_provenance(
    base_dates: tuple[date, ...],
    branch_dates: tuple[date, ...] | None,
    series_dates: tuple[date, ...] | None,
    expected: set[date],
    provenance: str,
) -> None:
    resolved = resolve_config(
        replace(BASE, closed_dates=base_dates),
        ConfigValues(closed_dates=branch_dates),
        ConfigValues(closed_dates=series_dates),
    )
    assert resolved.closed_dates == frozenset(expected)
    assert resolved.provenance["closed_dates"] == provenance


# incomplete base --------------------------------------------------------------


def test_incomplete_base_names_every_missing_field() -> None:
    base = ConfigValues(horizon_days=28, timezone="UTC", open_time="06:00")
    with pytest.raises(IncompleteBaseConfigError) as info:
        resolve_config(base, BRANCH, SERIES)
    err = info.value
    expected = [
        "default_duration_minutes", "default_capacity", "close_time", "closed_dates",
        "generation_enabled", "cleanup_grace_days",
    ]
    assert err.missing == expected
    assert err.code == "INCOMPLETE_BASE_CONFIG"
    assert err.scope == "base"
    for name in expected:
        assert name in str(err)
    assert "horizon_days" not in str(err)


@pytest.mark.parametrize("name", CONFIG_FIELDS)
def test_base_missing_one_field_is_an_error_even_if_overridden(name: str) -> None:
    base = replace(BASE, **{name: None})
    with pytest.raises(IncompleteBaseConfigError) as info:
        resolve_config(base, BRANCH, SERIES)
    assert info.value.missing == [name]
    assert info.value.field == name
    assert name in str(info.value)


def test_empty_base_lists_all_fields() -> None:
    with pytest.raises(IncompleteBaseConfigError) as info:
        resolve_config(ConfigValues())
    assert info.value.missing == list(CONFIG_FIELDS)


# out-of-range values ------------------------------------------------------------


def scopes_with(
    name: str, value: Any, scope: str
) -> tuple[ConfigValues, ConfigValues, ConfigValues]:
    """base/branch/series where ``scope`` sets ``name`` to ``value`` (and wins)."""
    base, branch, series = BASE, ConfigValues(), ConfigValues()
    if scope == "base":
        base = replace(BASE, **{name: value})
    elif scope == "branch":
        branch = ConfigValues(**{name: value})
    else:
        series = ConfigValues(**{name: value})
    return base, branch, series


@pytest.mark.parametrize(
    ("name", "value", "scope"),
    [
        ("horizon_days", 0, "base"),
        ("horizon_days", 0, "series"),
        ("horizon_days", 731, "branch"),
        ("horizon_days", -1, "series"),
        ("horizon_days", True, "branch"),
        ("horizon_days", "28", "series"),
        ("default_duration_minutes", 0, "base"),
        ("default_duration_minutes", 0, "branch"),
        ("default_duration_minutes", 1441, "series"),
        ("default_capacity", -1, "series"),
        ("default_capacity", -5, "base"),
        ("cleanup_grace_days", -1, "branch"),
        ("open_time", "24:00", "branch"),
        ("open_time", "7:00", "series"),
        ("open_time", "07:60", "base"),
        ("close_time", "22h00", "series"),
        ("close_time", "", "branch"),
        ("generation_enabled", "yes", "branch"),
        ("generation_enabled", 1, "series"),
    ],
)
def test_out_of_range_value_names_field_and_scope(name: str, value: Any, scope: str) -> None:
    with pytest.raises(SeriesDefinitionError) as info:
        resolve_config(*scopes_with(name, value, scope))
    err = info.value
    # SPEC §6 lists a non-positive duration as its own error, whichever scope set it.
    expected = ("NON_POSITIVE_DURATION" if name == "default_duration_minutes" and value < 1
                else "INVALID_CONFIG")
    assert err.code == expected
    assert err.field == name
    assert err.scope == scope
    assert name in str(err)
    assert f"{scope} scope" in str(err)


@pytest.mark.parametrize(
    ("zone", "scope"),
    [
        ("Mars/Olympus_Mons", "base"),
        ("America/Springfield", "branch"),
        ("Europe/london ", "series"),
        ("", "branch"),
        ("EST5EDT/Nowhere", "series"),
        ("America", "base"),
        ("../etc/passwd", "branch"),
    ],
)
def test_bad_zone_names_field_and_scope(zone: str, scope: str) -> None:
    with pytest.raises(InvalidTimezoneError) as info:
        resolve_config(*scopes_with("timezone", zone, scope))
    err = info.value
    assert err.code == "INVALID_TIMEZONE"
    assert err.field == "timezone"
    assert err.scope == scope
    assert "timezone" in str(err)
    assert f"{scope} scope" in str(err)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("horizon_days", 1, 1),
        ("horizon_days", 730, 730),
        ("default_duration_minutes", 1, 1),
        ("default_duration_minutes", 1440, 1440),
        ("default_capacity", 0, 0),
        ("cleanup_grace_days", 0, 0),
        ("open_time", "00:00", time(0, 0)),
        ("close_time", "23:59", time(23, 59)),
    ],
)
def test_boundary_values_are_accepted(name: str, value: Any, expected: Any) -> None:
    resolved = resolve_config(BASE, None, ConfigValues(**{name: value}))
    assert getattr(resolved, name) == expected
    assert resolved.provenance[name] == "series"


# config_hash ---------------------------------------------------------------------


def test_hash_is_stable_for_same_content() -> None:
    first = resolve_config(BASE, BRANCH, SERIES)
    second = resolve_config(BASE, BRANCH, SERIES)
    assert first.config_hash == second.config_hash
    assert len(first.config_hash) >= 8
    assert first == second


def test_hash_is_independent_of_provenance() -> None:
    from_base = resolve_config(
        replace(BASE, timezone="America/New_York", horizon_days=56,
                closed_dates=(XMAS, JULY4)),
    )
    from_scopes = resolve_config(
        replace(BASE, closed_dates=(XMAS,)),
        ConfigValues(timezone="America/New_York", closed_dates=(JULY4,)),
        ConfigValues(horizon_days=56),
    )
    assert from_base.provenance["timezone"] == "base"
    assert from_scopes.provenance["timezone"] == "branch"
    assert from_scopes.provenance["horizon_days"] == "series"
    assert from_scopes.provenance["closed_dates"] == "base+branch"
    assert from_base.config_hash == from_scopes.config_hash


def test_hash_ignores_closed_dates_order_and_duplicates() -> None:
    a = resolve_config(replace(BASE, closed_dates=(XMAS, JULY4, MAYDAY)))
    b = resolve_config(replace(BASE, closed_dates=(MAYDAY, XMAS, JULY4)))
    c = resolve_config(replace(BASE, closed_dates=(JULY4,)), ConfigValues(
        closed_dates=(MAYDAY, JULY4)), ConfigValues(closed_dates=(XMAS, MAYDAY)))
    assert a.config_hash == b.config_hash == c.config_hash


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("horizon_days", 29),
        ("timezone", "Europe/London"),
        ("default_duration_minutes", 61),
        ("default_capacity", 21),
        ("open_time", "06:01"),
        ("close_time", "21:59"),
        ("closed_dates", (XMAS, JULY4)),
        ("closed_dates", (date(2026, 12, 26),)),
        ("closed_dates", ()),
        ("generation_enabled", False),
        ("cleanup_grace_days", 1),
    ],
)
def test_hash_changes_with_any_content_change(name: str, value: Any) -> None:
    original = resolve_config(BASE)
    changed = resolve_config(replace(BASE, **{name: value}))
    assert changed.config_hash != original.config_hash


def test_open_and_close_times_are_not_interchangeable_in_hash() -> None:
    a = resolve_config(replace(BASE, open_time="06:00", close_time="22:00"))
    b = resolve_config(replace(BASE, open_time="22:00", close_time="06:00"))
    assert a.config_hash != b.config_hash


def test_hash_is_the_same_in_every_process() -> None:
    """Hash randomisation (PYTHONHASHSEED) must not leak into the hash (dates in a set)."""
    script = (
        "from datetime import date\n"
        "from seriesgen_pipeline.core.config import ConfigValues, resolve_config\n"
        "base = ConfigValues(horizon_days=28, timezone='UTC', default_duration_minutes=60,"
        " default_capacity=20, open_time='06:00', close_time='22:00',"
        " closed_dates=tuple(date(2026, 1, d) for d in range(1, 29)),"
        " generation_enabled=True, cleanup_grace_days=0)\n"
        "print(resolve_config(base).config_hash)\n"
    )
    hashes = set()
    for seed in ("1", "2", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True,
            cwd=REPO_ROOT, env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)},
        )
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1
    expected = resolve_config(replace(
        BASE, closed_dates=tuple(date(2026, 1, d) for d in range(1, 29))
    )).config_hash
    assert hashes == {expected}


# --- BranchResolver: many series of one read of the scopes ---------------------------


def test_branch_resolver_resolves_as_resolve_config_does() -> None:
    resolve = BranchResolver(BASE)
    assert resolve(None) == resolve_config(BASE)
    assert resolve(BRANCH) == resolve_config(BASE, BRANCH)
    assert resolve(BRANCH, SERIES) == resolve_config(BASE, BRANCH, SERIES)
    only_series = resolve(None, SERIES)
    assert only_series.provenance == resolve_config(BASE, None, SERIES).provenance
    assert only_series.provenance["horizon_days"] == "series"
    with_branch = resolve(BRANCH)
    assert with_branch.timezone == "America/New_York"
    assert with_branch.provenance["timezone"] == "branch"
    assert with_branch.config_hash == resolve_config(BASE, BRANCH).config_hash


def test_branch_resolver_resolves_a_branch_once() -> None:
    resolve = BranchResolver(BASE)
    first = resolve(BRANCH)
    assert resolve(BRANCH) is first
    assert resolve(None) is resolve(None)
    # Another branch object with the same values is another branch: resolved on its own.
    twin = replace(BRANCH)
    assert resolve(twin) is not first
    assert resolve(twin) == first
    # A series with a scope of its own is never given its branch's configuration.
    assert resolve(BRANCH, replace(SERIES)).horizon_days == SERIES.horizon_days
    assert resolve(BRANCH, ConfigValues()) is not first


def test_branch_resolver_raises_again_for_a_bad_branch() -> None:
    resolve = BranchResolver(BASE)
    bad = replace(BRANCH, default_capacity=-1)
    for _ in range(2):
        with pytest.raises(SeriesDefinitionError) as raised:
            resolve(bad)
        assert (raised.value.field, raised.value.scope) == ("default_capacity", "branch")
    assert resolve(BRANCH).default_capacity == 12
