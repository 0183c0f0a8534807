"""The DST pieces a replay depends on: the seed, the rng streams, the simulated clock."""

import asyncio

import pytest

from umi_store import DeterministicRng, InvalidInputError, SimClock, SimConfig, SystemClock
from umi_store.constants import DST_EPOCH_MS


def test_same_seed_same_stream_and_forks_are_independent():
    a, b = DeterministicRng(42), DeterministicRng(42)
    assert [a.randint(0, 10**9) for _ in range(5)] == [b.randint(0, 10**9) for _ in range(5)]
    assert DeterministicRng(42).fork("faults").random() == DeterministicRng(42).fork("faults").random()
    assert DeterministicRng(42).fork("faults").random() != DeterministicRng(42).fork("workload").random()


def test_seed_from_env_and_malformed_seed_is_clear(monkeypatch):
    monkeypatch.setenv("UMI_SEED", "1234")
    assert SimConfig.from_env().seed == 1234
    monkeypatch.setenv("UMI_SEED", "12x")
    with pytest.raises(InvalidInputError, match="UMI_SEED"):
        SimConfig.from_env()


def test_fresh_seed_is_announced_with_its_replay_line(monkeypatch):
    monkeypatch.delenv("UMI_SEED", raising=False)
    lines = []
    config = SimConfig.from_env(announce=lines.append)
    assert lines == [f"seed {config.seed}; replay with --seed {config.seed}"]


async def test_clock_starts_at_epoch_never_goes_back_and_wakes_sleepers():
    clock = SimClock()
    assert clock.now_ms() == DST_EPOCH_MS
    with pytest.raises(InvalidInputError):
        clock.advance(-1)
    sleeper = asyncio.ensure_future(clock.sleep(1_000))
    await asyncio.sleep(0)
    clock.advance(999)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, 1)


def test_system_clock_moves_forward_by_what_is_added_and_never_back():
    clock = SystemClock()
    before = clock.now_ms()
    after = clock.advance(60_000)
    assert after >= before + 60_000
    assert clock.now_ms() >= after
    with pytest.raises(InvalidInputError):
        clock.advance(-1)


async def test_elapse_advances_a_sim_clock_without_waiting():
    clock = SimClock()
    await asyncio.wait_for(clock.elapse(5_000), 1)
    assert clock.now_ms() == DST_EPOCH_MS + 5_000
