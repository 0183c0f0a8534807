"""The simulation checks history: a store whose history disagrees with its rows is caught."""

from umi_store.backends.sim import SimTx
from umi_store.dst import SimulationConfig
from umi_store.dst.simulation import Simulation


async def test_a_seed_runs_clean_with_history_checked():
    result = await Simulation(SimulationConfig(3, 200, swarm=True)).run()
    assert result.ok, result.violations[0].report()


async def test_history_that_records_the_wrong_value_is_a_violation(monkeypatch):
    real = SimTx.history_append

    async def wrong_value(self, record, *limits):
        if record.value is not None:
            record = record._replace(value=record.value + b"!")
        return await real(self, record, *limits)
    monkeypatch.setattr(SimTx, "history_append", wrong_value)
    result = await Simulation(SimulationConfig(3, 200)).run()
    assert not result.ok
    assert "history" in result.violations[0].expected


async def test_history_that_misses_a_delete_is_a_violation(monkeypatch):
    real = SimTx.history_append

    async def no_deletes(self, record, *limits):
        if record.value is None:
            return 1
        return await real(self, record, *limits)
    monkeypatch.setattr(SimTx, "history_append", no_deletes)
    result = await Simulation(SimulationConfig(3, 300)).run()
    assert not result.ok
    assert "history" in result.violations[0].expected
