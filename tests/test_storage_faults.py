"""The storage_* faults, injected into sim and SQLite: typed errors, never bad data."""

import pytest

from umi_store import (CorruptionError, DeterministicRng, FaultConfig, FaultInjector, SimClock,
                       StorageError, open_store)

from .conftest import store_url


async def _open(backend_name, tmp_path, fault, **options):
    injector = FaultInjector(DeterministicRng(7), [FaultConfig(fault, 1.0, **options)])
    return injector, open_store(store_url(backend_name, tmp_path), agent="f", clock=SimClock(),
                                faults=injector)


async def test_write_fail_raises_and_changes_nothing(backend_name, tmp_path):
    injector, opening = await _open(backend_name, tmp_path, "storage_write_fail")
    async with opening as store:
        with pytest.raises(StorageError):
            await store.working.set("k", b"v")
        injector.remove("storage_write_fail")
        assert await store.working.get("k") is None
        assert injector.counts["storage_write_fail"] == 1


async def test_read_fail_raises_a_typed_error(backend_name, tmp_path):
    injector, opening = await _open(backend_name, tmp_path, "storage_read_fail")
    async with opening as store:
        with pytest.raises(StorageError):
            await store.core.get_block("human")


async def test_corruption_is_detected_never_returned(backend_name, tmp_path):
    injector, opening = await _open(backend_name, tmp_path, "storage_corruption",
                                    max_injections=1)
    async with opening as store:
        await store.working.set("k", b"precious")
        with pytest.raises(CorruptionError):
            await store.working.get("k")


async def test_latency_moves_the_store_clock(backend_name, tmp_path):
    injector, opening = await _open(backend_name, tmp_path, "storage_latency")
    async with opening as store:
        before = store.clock.now_ms()
        await store.core.get_block("human")
        assert store.clock.now_ms() > before


def test_unknown_fault_name_is_invalid_input():
    from umi_store import InvalidInputError
    with pytest.raises(InvalidInputError):
        FaultConfig("storage_explodes", 0.5)
