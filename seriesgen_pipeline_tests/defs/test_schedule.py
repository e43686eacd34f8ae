"""``nightly_generation`` turns every class series partition into ranged run requests.

Contract: evaluated for 02:00 UTC on 2026-03-02 with ``chunk_size=10``, the
schedule requests runs whose partition ranges cover every partition exactly
once, in partition order, each of at most 10 partitions (a range of one is a
plain partition run); run keys are unique and stamped with the scheduled time.
Without a run size set (``SERIESGEN_RUN_CHUNK`` unset), runs hold 2,500
partitions up to 25,000 partitions, and above that a night is ten runs. With no
partitions it skips, and in production without
``ENABLE_SERIES_GENERATION=true`` it skips naming that variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
import pytest

from seriesgen_pipeline.definitions import build_definitions
from seriesgen_pipeline.defs.resources import SeriesgenResource
from seriesgen_pipeline.defs.runs import RANGE_END, RANGE_START, RANGE_TAG
from seriesgen_pipeline_tests.defs.support import PARTITIONS, covered

if TYPE_CHECKING:  # not exported by ``dagster``: what the daemon gets from a schedule tick
    from dagster._core.definitions.schedule_definition import ScheduleExecutionData

SCHEDULED = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


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


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERIESGEN_ENV", raising=False)
    monkeypatch.delenv("ENABLE_SERIES_GENERATION", raising=False)


def evaluate(instance: dg.DagsterInstance, chunk_size: int | None = 10
             ) -> ScheduleExecutionData:
    """One tick of the schedule, through the same entry point the daemon uses."""
    defs = build_definitions(chunk_size=chunk_size)
    schedule = defs.resolve_schedule_def("nightly_generation")
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=SCHEDULED,
                                   repository_def=defs.get_repository_def(),
                                   resources={"seriesgen": SeriesgenResource()}) as context:
        return schedule.evaluate_tick(context)


@pytest.mark.parametrize(("count", "sizes"), [(25, [10, 10, 5]), (21, [10, 10, 1]),
                                              (10, [10]), (1, [1])])
def test_ranges_cover_every_partition_once_in_order(
        instance: dg.DagsterInstance, count: int, sizes: list[int]) -> None:
    # Added out of alphabetical order: the partition order is the instance's order.
    keys = [f"series-{(i * 7) % count:02d}-{i:02d}" for i in range(count)]
    instance.add_dynamic_partitions(PARTITIONS, keys)
    order = instance.get_dynamic_partitions(PARTITIONS)
    assert order == keys

    data = evaluate(instance)

    assert data.skip_message is None
    requests = list(data.run_requests or [])
    spans = covered(order, requests)
    assert [len(span) for span in spans] == sizes
    assert [key for span in spans for key in span] == keys
    assert all(len(span) <= 10 for span in spans)
    run_keys = [request.run_key for request in requests]
    assert len(set(run_keys)) == len(run_keys)
    for request, span in zip(requests, spans, strict=True):
        assert request.run_key == f"nightly:2026-03-02T02:00:00+00:00:{span[0]}..{span[-1]}"
        assert request.tags[RANGE_TAG] == f"{span[0]}..{span[-1]}"
        if len(span) == 1:
            assert request.partition_key == span[0]
        else:
            assert request.partition_key is None
            assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (span[0], span[-1])


def test_25_partitions_make_three_runs(instance: dg.DagsterInstance) -> None:
    keys = [f"k{i:02d}" for i in range(25)]
    instance.add_dynamic_partitions(PARTITIONS, keys)

    data = evaluate(instance)

    requests = list(data.run_requests or [])
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [
        ("k00", "k09"), ("k10", "k19"), ("k20", "k24")]
    assert covered(keys, requests) == [keys[0:10], keys[10:20], keys[20:25]]


def test_no_partitions_skips(instance: dg.DagsterInstance) -> None:
    data = evaluate(instance)

    assert not data.run_requests
    assert data.skip_message == "no class series partitions yet (the sensor adds them)"


def test_production_without_enable_skips(instance: dg.DagsterInstance,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    instance.add_dynamic_partitions(PARTITIONS, ["k00", "k01"])
    monkeypatch.setenv("SERIESGEN_ENV", "production")

    data = evaluate(instance)

    assert not data.run_requests
    assert data.skip_message is not None
    assert "ENABLE_SERIES_GENERATION" in data.skip_message
    assert "SERIESGEN_ENV=production" in data.skip_message


def test_production_with_enable_runs(instance: dg.DagsterInstance,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    instance.add_dynamic_partitions(PARTITIONS, ["k00", "k01"])
    monkeypatch.setenv("SERIESGEN_ENV", "production")
    monkeypatch.setenv("ENABLE_SERIES_GENERATION", "true")

    data = evaluate(instance)

    assert data.skip_message is None
    assert covered(["k00", "k01"], data.run_requests or []) == [["k00", "k01"]]


@pytest.mark.parametrize(("count", "sizes"), [(25_000, [2500] * 10),
                                              (30_001, [3001] * 9 + [2992]),
                                              (2_600, [2500, 100])])
def test_without_a_run_size_a_night_is_runs_of_2500_or_ten_runs(count: int,
                                                                 sizes: list[int]) -> None:
    with dg.instance_for_test() as instance:
        keys = [f"s{i:06d}" for i in range(count)]
        instance.add_dynamic_partitions(PARTITIONS, keys)

        data = evaluate(instance, chunk_size=None)

        spans = covered(keys, list(data.run_requests or []))
        assert [len(span) for span in spans] == sizes
        assert [key for span in spans for key in span] == keys
