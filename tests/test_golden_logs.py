"""Golden event logs: the same seed and config give the same log bytes, release after release.

The logs under tests/golden/ were written by the harness before it was optimised (issue 14);
every change to the simulation engine must leave them byte for byte as they are. A change
that means to alter the log (a new op, a new fault) regenerates them on purpose:
`.venv/bin/python -m tests.test_golden_logs` rewrites every file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from umi_store.dst import FaultConfig, Simulation, SimulationConfig

from .conftest import store_url

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_CONFIGS: dict[str, SimulationConfig] = {
    "seed7-swarm": SimulationConfig(7, 500, swarm=True),
    "seed42-swarm": SimulationConfig(42, 500, swarm=True),
    "seed1234-swarm": SimulationConfig(1234, 500, swarm=True),
    "seed8-crash-latency": SimulationConfig(8, 400, faults=(
        FaultConfig("crash_after_commit", 0.1), FaultConfig("storage_latency", 0.1),
        FaultConfig("storage_corruption", 0.05))),
    "seed3-no-faults": SimulationConfig(3, 500),
}
BACKEND_GOLDEN = "seed7-swarm"  # the one replayed on SQLite and Postgres too


async def _log_of(config: SimulationConfig) -> str:
    lines: list[str] = []
    result = await Simulation(config, log=lines.append).run()
    assert result.ok, result.violations[0].report()
    return "".join(line + "\n" for line in lines)


def _golden(name: str) -> str:
    return (GOLDEN_DIR / f"{name}.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(GOLDEN_CONFIGS))
async def test_golden_event_log_is_reproduced_byte_for_byte(name):
    assert await _log_of(GOLDEN_CONFIGS[name]) == _golden(name)


async def test_golden_event_log_is_the_same_on_every_backend(backend_name, tmp_path):
    config = GOLDEN_CONFIGS[BACKEND_GOLDEN]
    url = store_url(backend_name, tmp_path)
    backend_config = SimulationConfig(config.seed, config.steps, config.faults, url,
                                      config.swarm)
    assert await _log_of(backend_config) == _golden(BACKEND_GOLDEN)


def _regenerate() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, config in GOLDEN_CONFIGS.items():
        (GOLDEN_DIR / f"{name}.log").write_text(asyncio.run(_log_of(config)), encoding="utf-8")


if __name__ == "__main__":
    _regenerate()
