"""The simulation harness: replayable event logs, a clean campaign, and a checker that fails."""

from umi_store import open_store
from umi_store.backends.sim import SimTx
from umi_store.dst import FaultConfig, Simulation, SimulationConfig, swarm_faults
from umi_store.dst.simulation import SWARM_CORE_SIZES_BYTES

from .conftest import store_url

CAMPAIGN_SEEDS_COUNT = 200
CAMPAIGN_STEPS_COUNT = 300


async def _run(config: SimulationConfig) -> tuple[list[str], object]:
    lines: list[str] = []
    result = await Simulation(config, log=lines.append).run()
    return lines, result


async def test_event_log_is_byte_identical_for_a_seed_on_every_backend(backend_name, tmp_path):
    url = store_url(backend_name, tmp_path)
    config = SimulationConfig(7, 150, url=url, swarm=True)
    first, result = await _run(config)
    again, _ = await _run(config)  # on a file, the second run starts from the first's leftovers
    reference, _ = await _run(SimulationConfig(7, 150, swarm=True))
    assert result.ok, result.violations[0].report()
    assert first == again == reference
    assert result.steps_run == 150 and len(first) >= 150
    assert sum(result.faults.values()) > 0, "the seed's swarm mix fired some faults"


async def test_a_different_seed_gives_a_different_log():
    one, _ = await _run(SimulationConfig(1, 50))
    two, _ = await _run(SimulationConfig(2, 50))
    assert one != two


async def test_campaign_of_many_seeds_with_swarm_faults_finds_no_violation():
    fired: set[str] = set()
    steps = 0
    for seed in range(CAMPAIGN_SEEDS_COUNT):
        lines, result = await _run(SimulationConfig(seed, CAMPAIGN_STEPS_COUNT, swarm=True))
        assert result.ok, "\n".join(lines[-5:])
        fired |= set(result.faults)
        steps += result.steps_run
    assert steps == CAMPAIGN_SEEDS_COUNT * CAMPAIGN_STEPS_COUNT
    assert {"storage_write_fail", "storage_corruption", "storage_latency"} <= fired


def test_swarm_draws_a_mix_per_seed_and_explicit_faults_override_it():
    mixes = {swarm_faults(seed) for seed in range(20)}
    assert len(mixes) > 10
    limits = {SimulationConfig(seed, 1, swarm=True).core_size_bytes_max for seed in range(20)}
    assert limits == set(SWARM_CORE_SIZES_BYTES)
    explicit = FaultConfig("storage_read_fail", 0.5)
    config = SimulationConfig(3, 10, faults=(explicit,), swarm=True)
    assert explicit in config.fault_mix()
    assert config.replay_command() == \
        "umi-tui sim --seed 3 --steps 10 --fault storage_read_fail=0.5 --swarm"


async def test_a_dropped_write_is_reported_with_seed_step_and_replay(monkeypatch):
    real_put = SimTx.working_put
    puts = 0

    async def drops_the_fifth_write(self, entry):
        nonlocal puts
        puts += 1
        if puts != 5:
            await real_put(self, entry)

    monkeypatch.setattr(SimTx, "working_put", drops_the_fifth_write)
    lines, result = await _run(SimulationConfig(11, 300))
    assert len(result.violations) == 1
    violation = result.violations[0]
    assert violation.seed == 11
    assert violation.step == result.steps_run - 1 < 299
    assert violation.replay == f"umi-tui sim --seed 11 --steps {violation.step + 1}"
    assert "working" in violation.expected + violation.actual or \
        violation.op.startswith("working.")
    assert lines[-1] == violation.report()


async def test_returning_corrupted_bytes_is_a_violation(monkeypatch):
    from umi_store.backends import sim
    monkeypatch.setattr(sim, "_verified_entry", lambda stored: stored.entry)
    faults = (FaultConfig("storage_corruption", 0.3),)
    _, result = await _run(SimulationConfig(5, 300, faults=faults))
    assert not result.ok
    assert "corrupt" in result.violations[0].report().lower()


async def test_an_untyped_exception_is_a_violation(monkeypatch):
    async def explodes(self, key):
        raise KeyError(key)

    monkeypatch.setattr(SimTx, "working_delete", explodes)
    _, result = await _run(SimulationConfig(2, 300))
    assert "KeyError" in result.violations[0].actual


async def test_scratch_agent_never_touches_other_agents(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    async with open_store(url, agent="alice") as alice:
        await alice.working.set("k1", b"alice's", ttl_ms=10**8)
        await alice.core.set_block("human", "alice's block")
        kept = await alice.archival.remember("alice's note", "note", name="Alice")
    config = SimulationConfig(21, 200, url=url, swarm=True)
    _, result = await _run(config)
    assert result.ok
    async with open_store(url, agent="alice") as alice:
        assert await alice.working.get("k1") == b"alice's"
        assert (await alice.core.get_block("human")).content == "alice's block"
        assert await alice.archival.list() == [kept]
    async with open_store(url, agent=config.agent) as scratch:
        assert await scratch.archival.count() + await scratch.working.entry_count() > 0


def _plant_crashes(monkeypatch, simulation: Simulation, every: int, *, half: bool = False):
    """Every `every`-th changing write transaction fails ambiguously, as crash_after_commit
    would: committed or rolled back by turns, or (with `half`) committed with a cut value."""
    from contextlib import asynccontextmanager
    from dataclasses import replace

    from umi_store import StorageError
    from umi_store.backends.sim import SimBackend
    from umi_store.dst import FaultType

    real = SimBackend.transaction.__wrapped__
    writes = 0

    @asynccontextmanager
    async def crashing(self, agent, *, write):
        nonlocal writes
        crash = False
        async with asynccontextmanager(real)(self, agent, write=write) as tx:
            yield tx
            if write and tx._undo:
                writes += 1
                crash = writes % every == 0
                if crash:
                    simulation.injector.count_fired(FaultType.CRASH_AFTER_COMMIT)
                    # the last row written (history records are not the write itself)
                    table, key, _ = next(u for u in reversed(tx._undo)
                                         if u[0] is not tx._rows.history
                                         and u[0] is not tx._rows.history_keys
                                         and u[0] is not tx._rows.history_sizes
                                         and u[0] is not tx._rows.history_bytes)
                    if half and table is tx._rows.working and len(table[key].entry.value) > 1:
                        stored = table[key]
                        value = stored.entry.value
                        cut = replace(stored.entry, value=value[: len(value) // 2])
                        table[key] = replace(stored, entry=cut, written=cut.value,
                                             size_bytes=cut.size_bytes)
                    elif not half and writes % (2 * every) == 0:
                        raise StorageError("planted crash before commit", outcome_unknown=True)
        if crash:
            raise StorageError("planted crash after commit", outcome_unknown=True)

    async def run_in_transaction(self, agent, body, *, write):
        async with self.transaction(agent, write=write) as tx:
            return await body(tx)

    monkeypatch.setattr(SimBackend, "transaction", crashing)
    # run() is transaction() without the context manager: send it through the planted one
    monkeypatch.setattr(SimBackend, "run", run_in_transaction)


async def test_an_ambiguous_failure_may_go_either_way(monkeypatch):
    lines: list[str] = []
    simulation = Simulation(SimulationConfig(4, 300), log=lines.append)
    _plant_crashes(monkeypatch, simulation, every=4)
    result = await simulation.run()
    assert result.ok, result.violations[0].report()
    text = "\n".join(lines)
    assert "err StorageError (applied)" in text and "err StorageError (not applied)" in text


async def test_an_ambiguous_failure_that_applied_half_a_write_is_a_violation(monkeypatch):
    simulation = Simulation(SimulationConfig(4, 300))
    _plant_crashes(monkeypatch, simulation, every=4, half=True)
    result = await simulation.run()
    assert not result.ok
    assert "working" in result.violations[0].actual


def test_workload_is_seeded_and_reaches_every_op_and_limit():
    from umi_store.constants import WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX
    from umi_store.dst import DeterministicRng, Workload
    from umi_store.dst.workload import OP_NAMES

    def ops(seed):
        workload = Workload(DeterministicRng(seed).fork("workload"), "a")
        return [workload.next_op() for _ in range(3_000)]

    drawn = ops(1)
    assert [op.summary() for op in drawn] == [op.summary() for op in ops(1)]
    assert [op.summary() for op in drawn] != [op.summary() for op in ops(2)]
    assert {op.name for op in drawn} == set(OP_NAMES)
    sizes = {len(op.kwargs["value"]) for op in drawn if op.name == "working.set"}
    assert {WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX, WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX + 1} <= sizes
    ttls = {op.kwargs["ttl_ms"] for op in drawn if op.name == "working.set"}
    assert {1, 0, -1, 604_800_000, 604_800_001} <= ttls


async def test_crash_after_commit_goes_either_way_and_the_model_follows():
    faults = (FaultConfig("crash_after_commit", 0.1), FaultConfig("storage_latency", 0.1))
    lines, result = await _run(SimulationConfig(8, 300, faults=faults))
    assert result.ok, result.violations[0].report()
    text = "\n".join(lines)
    assert "err StorageError (applied)" in text
    assert result.faults["crash_after_commit"] > 5
