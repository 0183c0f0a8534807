"""A simulation campaign for local runs: many seeds, each drawing its own fault mix.

    .venv/bin/python bench/sim_campaign.py --seeds 1000 --steps 1000 [--start 0] [--jobs 2] [URL]

Runs the campaign with the engine `umi-tui sim --campaign` uses (swarm faults, every step
checked against the model), then, in the same run as a baseline, the same operations of
the first seeds on the same store with nothing checked: the store's own speed under the
workload, which a checked step cannot beat. Prints any violation with its replay command,
both figures, and the faults that fired. Exits 1 on a violation.
A SQLite campaign is fastest on a file in a tmpfs directory (sqlite:////dev/shm/umi.db).
Not a test: the CI campaign (.ci/run) is the smaller, always-run one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from umi_store.dst import Simulation, SimulationConfig
from umi_store.dst.campaign import campaign_seeds, run_campaign
from umi_store.dst.simulation import execute_op
from umi_store.errors import UmiError

BASELINE_SEEDS_COUNT_MAX = 50


async def unchecked_ops_per_sec(template: SimulationConfig, seeds: range) -> float:
    """The seeds' workload ops run on the store (faults on), nothing read back or checked."""
    ops = 0
    elapsed = 0.0
    for seed in seeds:
        simulation = Simulation(SimulationConfig(seed, template.steps, url=template.url,
                                                 swarm=template.swarm))
        drawn = [simulation.workload.next_op() for _ in range(template.steps)]
        async with simulation.opened() as opened:
            store = opened.store
            assert store is not None
            started = time.perf_counter()
            for op in drawn:
                try:
                    await execute_op(store, op)
                except UmiError:
                    pass
            elapsed += time.perf_counter() - started
        ops += len(drawn)
    return ops / max(elapsed, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="sim://")
    parser.add_argument("--seeds", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=1, help="processes to run seeds in")
    args = parser.parse_args()
    template = SimulationConfig(args.start, args.steps, url=args.url, swarm=True)
    seeds = campaign_seeds(args.start, args.seeds)
    started = time.perf_counter()
    result = run_campaign(template, seeds, jobs=args.jobs)
    elapsed = time.perf_counter() - started
    for violation in result.violations:
        print(violation.report(), flush=True)
    baseline_seeds = seeds[:BASELINE_SEEDS_COUNT_MAX]
    baseline = asyncio.run(unchecked_ops_per_sec(template, baseline_seeds))
    print(f"campaign: {result.seeds_run} seeds x {args.steps} steps on {args.url}, "
          f"{args.jobs} process{'es' if args.jobs > 1 else ''}: {result.steps_run} steps in "
          f"{elapsed:.1f} s ({result.steps_run / max(elapsed, 1e-9):,.0f} steps/s), "
          f"{len(result.violations)} violating seeds")
    print(f"baseline: the same ops unchecked, one process, first {len(baseline_seeds)} seeds: "
          f"{baseline:,.0f} ops/s")
    print("faults fired: " + ", ".join(f"{name} {n}" for name, n in sorted(result.faults.items())))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
