"""``class_series_changes`` keeps partitions in step with series and reruns what changed.

Contract, tick by tick against a real SQLite application database and a real
Dagster instance (the sensor's partition requests applied between ticks, as the
daemon does):

- a new series gets its partition added and a run covering it; runs cover at
  most ``SERIESGEN_RUN_CHUNK`` series (``build_definitions(chunk_size=...)``), as
  the schedule's; unset, 2,500, or a tenth of the partitions from the first
  changed one to the last when that is more;
- with the cursor of the previous tick and nothing changed, the tick skips; it
  reads no series to know it (the database's input change count is the one the
  cursor holds), yet partitions deleted in Dagster are put back;
- a raw SQL ``UPDATE`` of one series' content (``version`` and ``updated_at``
  untouched) requests a run for exactly that series;
- a raw SQL ``UPDATE`` of a branch's configuration requests runs for the series
  of that branch, in as few ranges as the run chunk allows (a range may hold
  unchanged series between changed ones; base-scope edits: every series);
- new partitions are registered by the tick in one bulk insert, deleted ones
  removed by it (no dynamic partition requests are left to the daemon);
- a deleted series gets its partition deleted and no run;
- in production without ``ENABLE_SERIES_GENERATION=true`` the sensor skips,
  naming that variable, and changes nothing;
- run keys are unique per change: each tick that requests runs takes the next
  number of the cursor's sequence; a tick evaluated again from the same cursor
  builds the same run keys; a reset cursor starts above every earlier number;
  a cursor of the old format (fingerprints only) still decodes and is honoured.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
import pytest
import sqlalchemy as sa

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import RANGE_TAG
from seriesgen_pipeline.defs.sensors import (
    ChangeCursor,
    class_series_changes,
    decode_cursor,
    load_cursor,
)
from seriesgen_pipeline.persistence import repository as repo
from seriesgen_pipeline_tests.builders import (
    STAMP,
    execute,
    seed_base,
    seed_branch,
    seed_series,
)
from seriesgen_pipeline_tests.defs.support import (
    PARTITIONS,
    apply_partition_requests,
    covered,
    migrated_engine,
)

if TYPE_CHECKING:  # not exported by ``dagster``: what the daemon gets from a sensor tick
    from dagster._core.definitions.sensor_definition import SensorExecutionData

# Partition order == insertion order == series id order; West series are k02, k03, k05.
BRANCH_OF = {"k01": "east", "k02": "west", "k03": "west", "k04": "east", "k05": "west",
             "k06": "east"}
KEYS = list(BRANCH_OF)
WEST = {"k02", "k03", "k05"}


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERIESGEN_ENV", raising=False)
    monkeypatch.delenv("ENABLE_SERIES_GENERATION", raising=False)


@pytest.fixture
def app(tmp_path) -> Iterator[tuple[sa.Engine, str]]:  # type: ignore[no-untyped-def]
    """A migrated SQLite application database with East (default) and West (14 days)."""
    url = f"sqlite:///{tmp_path}/app.db"
    engine = migrated_engine(url)
    seed_base(engine)
    seed_branch(engine, "east")
    seed_branch(engine, "west", horizon_days=14)
    for number, (key, branch) in enumerate(BRANCH_OF.items()):
        seed_series(engine, key, branch=branch, room=f"Room {number}",
                    instructor=f"Instructor {number}")
    yield engine, url
    engine.dispose()


@pytest.fixture(scope="module")
def shared_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance(shared_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """The module's instance with no partitions (one instance: its setup takes seconds)."""
    for key in shared_instance.get_dynamic_partitions(PARTITIONS):
        shared_instance.delete_dynamic_partition(PARTITIONS, key)
    return shared_instance


def tick(instance: dg.DagsterInstance, url: str, cursor: str | None, *,
         chunk_size: int | None = None) -> SensorExecutionData:
    """One evaluation of the sensor, as the daemon runs it; its partition requests applied."""
    defs = build_definitions() if chunk_size is None else build_definitions(chunk_size=chunk_size)
    sensor = defs.resolve_sensor_def("class_series_changes")
    with dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources={"seriesgen": SeriesgenResource(database_url=url)},
    ) as context:
        data = sensor.evaluate_tick(context)
    apply_partition_requests(instance, data.dynamic_partitions_requests or [])
    return data


@pytest.fixture
def primed(app: tuple[sa.Engine, str], instance: dg.DagsterInstance) -> str:
    """The cursor after a first tick that saw every series."""
    data = tick(instance, app[1], None)
    assert instance.get_dynamic_partitions(PARTITIONS) == KEYS
    assert data.cursor is not None
    return data.cursor


def assert_quiet(instance: dg.DagsterInstance, url: str, cursor: str | None) -> None:
    data = tick(instance, url, cursor)
    assert not data.run_requests
    assert not data.dynamic_partitions_requests
    assert data.skip_message == "no series changed"


def test_first_tick_adds_every_partition_and_one_run(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance) -> None:
    data = tick(instance, app[1], None)

    # Registered by the tick itself, in bulk (not left to the daemon key by key).
    assert not data.dynamic_partitions_requests
    order = instance.get_dynamic_partitions(PARTITIONS)
    assert order == KEYS
    requests = list(data.run_requests or [])
    assert covered(order, requests) == [KEYS]
    assert requests[0].tags[RANGE_TAG] == "k01..k06"
    assert requests[0].run_key is not None
    assert requests[0].run_key.startswith("change:k01..k06:")
    assert set(load_cursor(instance, data.cursor).fingerprints) == set(KEYS)


def test_runs_hold_at_most_the_run_chunk(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance) -> None:
    data = tick(instance, app[1], None, chunk_size=4)

    assert covered(KEYS, data.run_requests or []) == [KEYS[:4], KEYS[4:]]


def test_unchanged_tick_skips(app: tuple[sa.Engine, str], instance: dg.DagsterInstance,
                              primed: str) -> None:
    assert_quiet(instance, app[1], primed)


def test_quiet_tick_reads_no_series(app: tuple[sa.Engine, str], instance: dg.DagsterInstance,
                                    primed: str) -> None:
    engine, url = app
    # Renaming a table is not a change of input; any read of a series would now fail.
    execute(engine, "ALTER TABLE class_series RENAME TO class_series_elsewhere")
    try:
        data = tick(instance, url, primed)
    finally:
        execute(engine, "ALTER TABLE class_series_elsewhere RENAME TO class_series")

    assert not data.run_requests
    assert data.skip_message == "no series changed"
    assert data.cursor == primed


def test_partitions_deleted_in_dagster_are_put_back(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    instance.delete_dynamic_partition(PARTITIONS, "k03")

    data = tick(instance, app[1], primed)

    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == sorted(KEYS)
    assert not data.run_requests  # its series did not change
    assert_quiet(instance, app[1], data.cursor)


def test_new_series_adds_its_partition_and_runs_it_alone(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    seed_series(engine, "k07", branch="east", room="Room 7", instructor="Instructor 7")

    data = tick(instance, url, primed)

    assert not data.dynamic_partitions_requests
    order = instance.get_dynamic_partitions(PARTITIONS)
    assert order == [*KEYS, "k07"]
    (request,) = data.run_requests or []
    assert request.partition_key == "k07"
    assert covered(order, [request]) == [["k07"]]
    assert_quiet(instance, url, data.cursor)


def test_raw_sql_room_update_reruns_exactly_that_series(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    with engine.connect() as conn:
        before = conn.execute(sa.text(
            "SELECT version, updated_at FROM class_series WHERE key = 'k04'")).one()
    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'k04'")
    with engine.connect() as conn:
        after = conn.execute(sa.text(
            "SELECT version, updated_at, room FROM class_series WHERE key = 'k04'")).one()
    assert (after.version, after.updated_at, after.room) == (*before, "Studio 9")

    data = tick(instance, url, primed)

    assert not data.dynamic_partitions_requests
    (request,) = data.run_requests or []
    assert request.partition_key == "k04"
    assert request.tags[RANGE_TAG] == "k04..k04"
    assert covered(KEYS, [request]) == [["k04"]]
    assert_quiet(instance, url, data.cursor)


def test_branch_config_update_reruns_exactly_that_branch(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    execute(engine, "UPDATE scheduling_configs SET horizon_days = 21 "
                    "WHERE scope = 'branch' AND branch_id = 'west'")

    data = tick(instance, url, primed)

    assert not data.dynamic_partitions_requests
    requests = list(data.run_requests or [])
    spans = covered(KEYS, requests)
    # One run from the branch's first series to its last: k04 (East) in between costs
    # that run a millisecond, a second run seconds of start-up.
    assert spans == [["k02", "k03", "k04", "k05"]]
    assert set(spans[0]) >= WEST
    assert_quiet(instance, url, data.cursor)


def test_scattered_changes_are_covered_by_few_runs_of_at_most_the_run_chunk(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    for key in ("k01", "k03", "k06"):
        execute(engine, "UPDATE class_series SET title = 'Edited' WHERE key = :key", key=key)

    data = tick(instance, url, primed, chunk_size=3)

    assert covered(KEYS, data.run_requests or []) == [["k01", "k02", "k03"], ["k06"]]


def test_base_config_update_reruns_every_series(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    execute(engine, "UPDATE scheduling_configs SET close_time = '21:00' WHERE scope = 'base'")

    data = tick(instance, url, primed)

    assert covered(KEYS, data.run_requests or []) == [KEYS]


def test_deleted_series_deletes_its_partition_and_runs_nothing(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    execute(engine, "DELETE FROM class_series WHERE key = 'k03'")

    data = tick(instance, url, primed)

    assert not data.dynamic_partitions_requests
    assert not data.run_requests
    assert instance.get_dynamic_partitions(PARTITIONS) == [k for k in KEYS if k != "k03"]
    assert "k03" not in load_cursor(instance, data.cursor).fingerprints
    assert_quiet(instance, url, data.cursor)


def test_production_without_enable_skips_and_changes_nothing(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERIESGEN_ENV", "production")

    with dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        resources={"seriesgen": SeriesgenResource(database_url=app[1])},
    ) as context:
        result = class_series_changes(context)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message is not None
    assert "ENABLE_SERIES_GENERATION" in result.skip_message
    data = tick(instance, app[1], None)
    assert data.skip_message is not None
    assert "ENABLE_SERIES_GENERATION" in data.skip_message
    assert not data.run_requests
    assert data.cursor is None
    assert instance.get_dynamic_partitions(PARTITIONS) == []

    monkeypatch.setenv("ENABLE_SERIES_GENERATION", "true")
    data = tick(instance, app[1], None)
    assert covered(KEYS, data.run_requests or []) == [KEYS]


def _sequence(run_key: str | None) -> int:
    assert run_key is not None
    return int(run_key.rsplit(":", 1)[1])


def test_each_change_gets_a_new_run_key_and_a_retried_tick_the_same(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    first = load_cursor(instance, primed).sequence
    assert first is not None
    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'k04'")

    edited = tick(instance, url, primed)
    again = tick(instance, url, primed)  # the daemon retrying the same tick

    (request,) = edited.run_requests or []
    assert request.run_key == f"change:k04..k04:{first + 1}"
    assert [r.run_key for r in again.run_requests or []] == [request.run_key]
    assert load_cursor(instance, edited.cursor).sequence == first + 1

    execute(engine, "UPDATE class_series SET room = 'Room 3' WHERE key = 'k04'")
    reverted = tick(instance, url, edited.cursor)
    (back,) = reverted.run_requests or []
    assert back.run_key == f"change:k04..k04:{first + 2}"
    # A tick that requests nothing keeps the number.
    quiet = tick(instance, url, reverted.cursor)
    assert quiet.skip_message == "no series changed"
    execute(engine, "DELETE FROM class_series WHERE key = 'k06'")
    removed = tick(instance, url, reverted.cursor)
    assert not removed.run_requests
    assert load_cursor(instance, removed.cursor).sequence == first + 2


def test_a_reset_cursor_never_reuses_an_earlier_run_key(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'k04'")
    before = tick(instance, url, primed)
    for key in KEYS:
        instance.delete_dynamic_partition(PARTITIONS, key)

    reset = tick(instance, url, None)

    (request,) = reset.run_requests or []
    assert covered(KEYS, [request]) == [KEYS]
    assert _sequence(request.run_key) > _sequence((before.run_requests or [])[0].run_key)


def test_a_cursor_of_the_old_format_still_decodes(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    engine, url = app
    fingerprints = load_cursor(instance, primed).fingerprints
    raw = json.dumps(fingerprints, separators=(",", ":"), sort_keys=True).encode()
    old = base64.b64encode(zlib.compress(raw, 9)).decode()  # fingerprints only

    assert decode_cursor(old) == ChangeCursor(fingerprints=fingerprints, sequence=None)
    assert_quiet(instance, url, old)
    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'k02'")
    data = tick(instance, url, old)
    (request,) = data.run_requests or []
    assert request.partition_key == "k02"
    assert load_cursor(instance, data.cursor).fingerprints.keys() == fingerprints.keys()
    assert decode_cursor("not a cursor") == ChangeCursor()


def test_the_cursor_keeps_its_fingerprints_in_the_instance(
        app: tuple[sa.Engine, str], instance: dg.DagsterInstance, primed: str) -> None:
    """Dagster copies the cursor into every tick record: it holds no fingerprint, only
    where they are kept. New fingerprints go to the other of two slots, so a tick
    retried from the cursor before still reads that cursor's; a cursor two changes
    old (only one set by hand can be) counts as empty: every series is rerun."""
    engine, url = app
    assert len(primed) < 300
    assert load_cursor(instance, primed).fingerprints.keys() == set(KEYS)
    assert_quiet(instance, url, primed)

    execute(engine, "UPDATE class_series SET room = 'Studio 9' WHERE key = 'k04'")
    edited = tick(instance, url, primed)
    assert edited.cursor is not None and len(edited.cursor) < 300
    assert load_cursor(instance, edited.cursor).slot != load_cursor(instance, primed).slot
    retried = tick(instance, url, primed)
    assert [r.partition_key for r in retried.run_requests or []] == ["k04"]

    execute(engine, "UPDATE class_series SET room = 'Studio 8' WHERE key = 'k05'")
    again = tick(instance, url, edited.cursor)
    assert [r.partition_key for r in again.run_requests or []] == ["k05"]
    assert load_cursor(instance, primed) == ChangeCursor()  # its slot was written over
    stale = tick(instance, url, primed)
    assert covered(KEYS, stale.run_requests or []) == [KEYS]


def test_without_a_run_size_a_block_of_edits_runs_side_by_side_and_scattered_ones_in_ten(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """30,001 series: 5,000 consecutive ones edited make two runs of 2,500; 300 edited
    one in a hundred across all of them make ten runs (a tenth of the span, 3,000)."""
    url = f"sqlite:///{tmp_path}/big.db"
    engine = migrated_engine(url)
    seed_base(engine)
    seed_branch(engine, "east")
    keys = [f"s{i:06d}" for i in range(30_001)]
    with engine.begin() as conn:
        conn.execute(sa.insert(repo.series_t), [{
            "key": key, "branch_id": "east", "title": key, "instructor": "Ana",
            "room": "Studio 2", "capacity": None, "recurrence": "FREQ=WEEKLY;BYDAY=MO",
            "start_time": "18:00", "duration_minutes": 60, "start_date": date(2026, 1, 5),
            "end_date": None, "exdates": [], "version": 1, "created_at": STAMP,
            "updated_at": STAMP} for key in keys])
    with dg.instance_for_test() as instance:
        first = tick(instance, url, None)
        assert [len(span) for span in covered(keys, first.run_requests or [])] == (
            [3001] * 9 + [2992])

        execute(engine, "UPDATE class_series SET title = 'Edited' "
                        "WHERE key >= 's010000' AND key < 's015000'")
        block = tick(instance, url, first.cursor)
        assert covered(keys, block.run_requests or []) == [keys[10_000:12_500],
                                                           keys[12_500:15_000]]

        execute(engine, "UPDATE class_series SET title = 'Again' WHERE id % 100 = 0")
        scattered = tick(instance, url, block.cursor)
        edited = [key for key in keys if (int(key[1:]) + 1) % 100 == 0]  # ids start at 1
        spans = covered(keys, scattered.run_requests or [])
        assert len(spans) == 10
        assert all(len(span) <= 2991 for span in spans)  # a tenth of s000099..s029999
        assert [key for span in spans for key in span if key in edited] == edited
    engine.dispose()
