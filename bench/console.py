"""The Simulation console's "run N steps": 10 000 faulted steps in the TUI, wall and CPU.

    .venv/bin/python bench/console.py [--steps 10000] [--probability 0.05]

The pane runs headless (Textual's run_test) on sim:// with three faults on; as a baseline
in the same run, the same simulation (seed, faults, steps) on the engine alone, with no
UI: the figure the console cannot beat. Issue 14's goal: the console under one second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from textual.pilot import Pilot

from umi_store import SimClock
from umi_store.dst import Simulation
from umi_store.dst.faults import FaultType
from umi_tui.app import UmiApp
from umi_tui.panes.simulation import SimulationPane
from umi_tui.settings import Settings

BENCH_SEED = 7
BENCH_FAULTS = (FaultType.STORAGE_WRITE_FAIL, FaultType.STORAGE_LATENCY,
                FaultType.CRASH_AFTER_COMMIT)


def faulted_pane(app: UmiApp, probability: float) -> SimulationPane:
    pane = app.query_one(SimulationPane)
    for fault in BENCH_FAULTS:
        pane.set_fault(fault, True, probability)
    return pane


async def until_idle(app: UmiApp) -> None:
    for _ in range(3):
        finite = [w for w in app.workers if w.group != "store-changes"]
        if finite:
            await app.workers.wait_for_complete(finite)
        await asyncio.sleep(0)


def bench_app() -> UmiApp:
    return UmiApp(Settings(url=f"sim://?seed={BENCH_SEED}", demo=True, seed=BENCH_SEED),
                  clock=SimClock(), follow_wall_clock=False)


async def opened_console(app: UmiApp, pilot: Pilot[None], probability: float) -> SimulationPane:
    """The Simulation pane shown, idle, its faults on."""
    await until_idle(app)
    await pilot.press("4")
    await until_idle(app)
    return faulted_pane(app, probability)


async def console_secs(steps: int, probability: float) -> tuple[float, float]:
    """(wall, CPU) seconds of the pane's run of `steps` steps, from key to final redraw."""
    app = bench_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await opened_console(app, pilot, probability)
        wall, cpu = time.perf_counter(), time.process_time()
        pane.run_workload(steps)
        await until_idle(app)
        await pilot.pause()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(pane.lines) >= steps, "the run stopped early"
    return wall, cpu


async def engine_secs(steps: int, probability: float) -> tuple[float, float]:
    """(wall, CPU) seconds of the same simulation on the engine alone: no UI."""
    app = bench_app()
    async with app.run_test(size=(120, 40)) as pilot:
        config = (await opened_console(app, pilot, probability))._config()
    simulation = Simulation(config, log=lambda line: None)
    wall, cpu = time.perf_counter(), time.process_time()
    async with simulation.opened():
        for _ in range(steps):
            if await simulation.step(simulation.workload.next_op()) is not None:
                break
        await simulation.check_all()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--probability", type=float, default=0.05)
    args = parser.parse_args()
    engine_wall, engine_cpu = asyncio.run(engine_secs(args.steps, args.probability))
    wall, cpu = asyncio.run(console_secs(args.steps, args.probability))
    print(f"engine alone: {args.steps:,} faulted steps in {engine_wall:.2f} s wall, "
          f"{engine_cpu:.2f} s CPU")
    print(f"console: {args.steps:,} faulted steps in {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"({wall / max(engine_wall, 1e-9):.2f}x the engine alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
