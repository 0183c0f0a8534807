"""The fault catalogue of SPEC §3, one test per type, on every backend.

Each type shows its own effect: nothing applied, applied-then-raises, the clock moved,
retried-then-succeeded, or retries exhausted into a typed error. No test ever receives
corrupted data as a value.
"""

from contextlib import asynccontextmanager

import pytest

from umi_store import (ConflictError, CorruptionError, DeterministicRng, FaultConfig,
                       FaultInjector, FaultType, InvalidInputError, SimClock, StorageError,
                       SystemClock, open_store)
from umi_store.backends.faulty import (RESOURCE_CPU_THROTTLE_MS_INJECTED,
                                       STORAGE_LATENCY_MS_INJECTED, TIME_CLOCK_SKEW_MS_MAX,
                                       TIME_LEAP_SECOND_MS)
from umi_store.constants import STORAGE_RETRY_COUNT_MAX
from umi_store.tiers.context import retry_delay_ms

from .conftest import store_url

FAILS_AT_ONCE = ["storage_write_fail", "storage_disk_full", "resource_oom",
                 "crash_before_commit"]
TRANSIENT = ["db_connection_fail", "db_query_timeout", "db_deadlock", "db_serialization_fail",
             "db_pool_exhausted", "network_timeout", "network_connection_refused",
             "network_dns_fail", "network_partial_write", "network_reset",
             "resource_file_limit"]
CLOCK_JUMPS_MS = {"storage_latency": STORAGE_LATENCY_MS_INJECTED,
                  "resource_cpu_throttle": RESOURCE_CPU_THROTTLE_MS_INJECTED,
                  "time_leap_second": TIME_LEAP_SECOND_MS}
OWN_TESTS = ["storage_read_fail", "storage_delete_fail", "storage_corruption",
             "time_clock_skew", "crash_after_commit"]
BACKOFF_MS_TOTAL = sum(retry_delay_ms(retry) for retry in range(STORAGE_RETRY_COUNT_MAX))


def test_every_fault_type_has_a_test_of_its_effect():
    tested = FAILS_AT_ONCE + TRANSIENT + list(CLOCK_JUMPS_MS) + OWN_TESTS
    assert sorted(tested) == sorted(FaultType) and len(tested) == len(set(tested))


@asynccontextmanager
async def faulty_store(backend_name, tmp_path, *configs: FaultConfig):
    injector = FaultInjector(DeterministicRng(7), list(configs))
    async with open_store(store_url(backend_name, tmp_path), agent="f", clock=SimClock(),
                          faults=injector) as store:
        async with store.backend.changes.subscribe(store.agent) as events:
            yield store, injector, events


def drained(queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


@pytest.mark.parametrize("fault", FAILS_AT_ONCE)
async def test_failure_raises_with_nothing_applied(backend_name, tmp_path, fault):
    async with faulty_store(backend_name, tmp_path, FaultConfig(fault, 1.0)) as (store, inj, events):
        with pytest.raises(StorageError) as raised:
            await store.working.set("k", b"v")
        assert not raised.value.transient and not raised.value.outcome_unknown
        assert inj.counts[fault] == 1, "a failure that a retry cannot fix is not retried"
        inj.remove(fault)
        assert await store.working.get("k") is None
        assert drained(events) == []


async def test_read_fail_raises_and_keeps_the_data(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path) as (store, inj, _):
        await store.working.set("k", b"v")
        inj.set_config(FaultConfig("storage_read_fail", 1.0))
        with pytest.raises(StorageError) as raised:
            await store.working.get("k")
        assert not raised.value.transient and inj.counts["storage_read_fail"] == 1
        inj.remove("storage_read_fail")
        assert await store.working.get("k") == b"v"


async def test_delete_fail_raises_and_the_key_stays(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("storage_delete_fail", 1.0)) as (store, inj, _):
        await store.working.set("k", b"v")
        with pytest.raises(StorageError):
            await store.working.delete("k")
        inj.remove("storage_delete_fail")
        assert await store.working.get("k") == b"v"


async def test_corruption_is_detected_by_checksum_never_returned(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("storage_corruption", 1.0, max_injections=2)
                            ) as (store, inj, _):
        await store.working.set("k", b"precious")
        entity = await store.archival.remember("Ada runs payments", "person", name="Ada")
        assert inj.counts["storage_corruption"] == 2, "both writes landed, then were damaged"
        with pytest.raises(CorruptionError):
            await store.working.get("k")
        with pytest.raises(CorruptionError):
            await store.working.entries()
        with pytest.raises(CorruptionError):
            await store.archival.get(entity.id)
        with pytest.raises(CorruptionError):
            await store.archival.search("payments")


async def test_corruption_keeps_the_size_that_was_written(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("storage_corruption", 1.0, max_injections=2)
                            ) as (store, inj, _):
        await store.working.set("empty", b"")  # damaging it adds a byte to the stored value
        await store.working.set("full", b"precious")
        assert inj.counts["storage_corruption"] == 2
        assert await store.working.used_bytes() == len("empty") + len("full") + len("precious")


@pytest.mark.parametrize("fault", list(CLOCK_JUMPS_MS))
async def test_clock_fault_moves_the_store_clock_by_its_amount(backend_name, tmp_path, fault):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig(fault, 1.0, operation_filter="working_put")
                            ) as (store, inj, _):
        before = store.clock.now_ms()
        await store.working.set("k", b"v")
        assert store.clock.now_ms() - before == CLOCK_JUMPS_MS[fault]
        assert await store.working.get("k") == b"v"


async def test_clock_faults_move_a_system_clock_too(backend_name, tmp_path):
    clock = SystemClock()
    injector = FaultInjector(DeterministicRng(7), [
        FaultConfig("time_leap_second", 1.0, operation_filter="working_put")])
    async with open_store(store_url(backend_name, tmp_path), agent="f", clock=clock,
                          faults=injector) as store:
        before = clock.now_ms()
        await store.working.set("k", b"v")
        assert clock.now_ms() - before >= TIME_LEAP_SECOND_MS


async def test_clock_skew_moves_the_clock_forward_by_a_seeded_amount(backend_name, tmp_path):
    moved = []
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        async with faulty_store(backend_name, tmp_path / run,
                                FaultConfig("time_clock_skew", 1.0,
                                            operation_filter="working_put")) as (store, inj, _):
            before = store.clock.now_ms()
            await store.working.set("k", b"v")
            moved.append(store.clock.now_ms() - before)
    assert 0 < moved[0] <= TIME_CLOCK_SKEW_MS_MAX
    assert moved[0] == moved[1], "the same seed skews by the same amount"


async def test_crash_after_commit_applies_then_raises_an_ambiguous_outcome(backend_name,
                                                                           tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("crash_after_commit", 1.0)) as (store, inj, events):
        with pytest.raises(StorageError) as raised:
            await store.working.incr("n")
        assert raised.value.outcome_unknown and not raised.value.transient
        assert inj.counts["crash_after_commit"] == 1, "an ambiguous outcome is never retried"
        inj.remove("crash_after_commit")
        assert await store.working.get("n") == b"1", "applied exactly once"
        assert [(e.kind, e.key) for e in drained(events)] == [("set", "n")]


@pytest.mark.parametrize("fault", TRANSIENT)
async def test_transient_fault_exhausts_its_retries_into_a_typed_error(backend_name, tmp_path,
                                                                       fault):
    async with faulty_store(backend_name, tmp_path, FaultConfig(fault, 1.0)) as (store, inj, events):
        before = store.clock.now_ms()
        with pytest.raises(StorageError) as raised:
            await store.working.set("k", b"v")
        assert raised.value.transient
        assert inj.counts[fault] == 1 + STORAGE_RETRY_COUNT_MAX
        assert store.clock.now_ms() - before == BACKOFF_MS_TOTAL, "backoff waits on the store clock"
        inj.remove(fault)
        assert await store.working.get("k") is None
        assert drained(events) == []


@pytest.mark.parametrize("fault", TRANSIENT)
async def test_transient_fault_is_retried_invisibly(backend_name, tmp_path, fault):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig(fault, 1.0, max_injections=STORAGE_RETRY_COUNT_MAX)
                            ) as (store, inj, events):
        before = store.clock.now_ms()
        assert await store.working.incr("n") == 1
        assert inj.counts[fault] == STORAGE_RETRY_COUNT_MAX
        assert store.clock.now_ms() - before == BACKOFF_MS_TOTAL
        assert await store.working.get("n") == b"1", "the whole transaction ran once"
        assert [(e.kind, e.key) for e in drained(events)] == [("set", "n")]


async def test_a_retry_reruns_the_whole_transaction(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("storage_latency", 1.0, operation_filter="working_get"),
                            FaultConfig("db_deadlock", 1.0, operation_filter="working_put",
                                        max_injections=1)) as (store, inj, _):
        before = store.clock.now_ms()
        assert await store.working.incr("n", 5) == 5
        # Each read of "n" costs one latency; the read before the failed write ran again.
        two_reads_and_one_backoff = 2 * STORAGE_LATENCY_MS_INJECTED + retry_delay_ms(0)
        assert store.clock.now_ms() - before == two_reads_and_one_backoff


async def test_validation_errors_are_never_retried(backend_name, tmp_path):
    async with faulty_store(backend_name, tmp_path,
                            FaultConfig("storage_latency", 1.0, operation_filter="core_get")
                            ) as (store, inj, _):
        await store.core.set_block("human", "likes tea")
        before = store.clock.now_ms()
        with pytest.raises(ConflictError):
            await store.core.set_block("human", "likes coffee", if_version=7)
        assert store.clock.now_ms() - before == STORAGE_LATENCY_MS_INJECTED, "one attempt"


def test_unknown_fault_name_is_invalid_input():
    with pytest.raises(InvalidInputError):
        FaultConfig("storage_explodes", 0.5)


async def test_ttl_of_a_live_key_is_never_zero_when_the_clock_moves_during_the_read(
        backend_name, tmp_path):
    # Found by the simulation (seed 10093): liveness and time left must use one reading.
    latency = FaultConfig("storage_latency", 1.0, operation_filter="working_get")
    async with faulty_store(backend_name, tmp_path, latency) as (store, _, _):
        await store.working.set("k", b"v", ttl_ms=STORAGE_LATENCY_MS_INJECTED // 2)
        assert await store.working.ttl_ms("k") == STORAGE_LATENCY_MS_INJECTED // 2
        assert await store.working.ttl_ms("k") is None  # the last read's latency passed it
