"""The incremental checker is as strong as the full one: planted bugs, each caught by both.

Every bug is planted in the simulator backend (or, for expiry, in how live is decided) and
fires on a deterministic call of the workload, never on a call the checkers make, so both
checkers meet it at the same step. Each must report it there: same seed, same step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from umi_store.backends import sim
from umi_store.backends.sim import SimTx
from umi_store.dst import FaultConfig, Simulation, SimulationConfig
from umi_store.models import WorkingEntry

MUTATION_SEED = 11
MUTATION_STEPS = 400
LATE_MS = 60_000  # how long after its deadline the planted bug still returns a key


def _on_call(number: int, real: Callable, planted: Callable) -> Callable:
    """`real`, except that call `number` (1-based) runs `planted` instead."""
    calls = 0

    async def method(self, *args):
        nonlocal calls
        calls += 1
        return await (planted if calls == number else real)(self, *args)
    return method


def lose_a_write(monkeypatch) -> None:
    async def dropped(self, entry):
        return None
    monkeypatch.setattr(SimTx, "working_put", _on_call(5, SimTx.working_put, dropped))


def store_a_wrong_ttl(monkeypatch) -> None:
    real = SimTx.working_put

    async def longer(self, entry):
        await real(self, replace(entry, expires_at_ms=entry.expires_at_ms + 1_000))
    monkeypatch.setattr(SimTx, "working_put", _on_call(5, real, longer))


def return_expired_keys(monkeypatch) -> None:
    """Keys stay readable for LATE_MS past their deadline, on every read path."""
    real_list, real_usage = SimTx.working_list, SimTx.working_usage

    async def working_list(self, prefix, now_ms, limit):
        return await real_list(self, prefix, now_ms - LATE_MS, limit)

    async def working_usage(self, now_ms, exclude_key):
        return await real_usage(self, None if now_ms is None else now_ms - LATE_MS, exclude_key)

    monkeypatch.setattr(WorkingEntry, "is_live",
                        lambda self, now_ms: self.expires_at_ms + LATE_MS > now_ms)
    monkeypatch.setattr(SimTx, "working_list", working_list)
    monkeypatch.setattr(SimTx, "working_usage", working_usage)


def return_corrupted_rows(monkeypatch) -> None:
    monkeypatch.setattr(sim, "_verified_entry", lambda stored: stored.entry)


def return_a_wrong_search_result(monkeypatch) -> None:
    real = SimTx.entity_search
    calls = 0

    async def search(self, folded_query, entity_type, limit):
        nonlocal calls
        found = await real(self, folded_query, entity_type, limit)
        if found:
            calls += 1
            if calls == 3:
                return found[:-1]
        return found
    monkeypatch.setattr(SimTx, "entity_search", search)


def skip_a_change_event(monkeypatch) -> None:
    real = SimTx.emit
    calls = 0

    def emit(self, event):
        nonlocal calls
        calls += 1
        if calls != 7:
            real(self, event)
    monkeypatch.setattr(SimTx, "emit", emit)


CORRUPTION = (FaultConfig("storage_corruption", 0.3),)
PLANTED: dict[str, tuple[Callable, tuple[FaultConfig, ...], str]] = {
    "lost write": (lose_a_write, (), "working"),
    "wrong ttl": (store_a_wrong_ttl, (), "exp="),
    "expired key still returned": (return_expired_keys, (), "working"),
    "corrupted row returned": (return_corrupted_rows, CORRUPTION, "CorruptionError"),
    "wrong search result": (return_a_wrong_search_result, (), "archival.search"),
    "skipped change event": (skip_a_change_event, (), "change event"),
}


async def _first_violation(full_check_every: int, faults: tuple[FaultConfig, ...]):
    config = SimulationConfig(MUTATION_SEED, MUTATION_STEPS, faults=faults)
    result = await Simulation(config, full_check_every=full_check_every).run()
    assert len(result.violations) == 1, "the run stops at its first violation"
    return result.violations[0]


@pytest.mark.parametrize("bug", sorted(PLANTED))
async def test_a_planted_bug_is_reported_at_the_same_step_by_both_checkers(bug, monkeypatch):
    plant, faults, mentioned = PLANTED[bug]
    with monkeypatch.context() as planted:
        plant(planted)
        full = await _first_violation(1, faults)  # the whole agent read back every step
    with monkeypatch.context() as planted:
        plant(planted)  # the same bug, its call counters fresh
        incremental = await _first_violation(10**9, faults)  # only what a step touched
    assert (incremental.seed, incremental.step) == (full.seed, full.step) == \
        (MUTATION_SEED, full.step)
    assert full.step < MUTATION_STEPS - 1, "the bug was met well before the end"
    assert mentioned in incremental.report() and mentioned in full.report()


async def test_without_a_planted_bug_both_checkers_pass():
    for full_check_every in (1, 10**9):
        config = SimulationConfig(MUTATION_SEED, MUTATION_STEPS, faults=CORRUPTION)
        assert (await Simulation(config, full_check_every=full_check_every).run()).ok
