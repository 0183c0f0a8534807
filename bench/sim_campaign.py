"""A simulation campaign for local runs: many seeds, each drawing its own fault mix.

    .venv/bin/python bench/sim_campaign.py --seeds 2000 --steps 1000 [--start 0] [URL]

Prints one line per violating seed (with its replay command), then the campaign's size,
time, steps/s and the faults that fired. Exits 1 if any seed found a violation.
Not a test: the CI campaign (tests/test_simulation.py) is the smaller, always-run one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

from umi_store.dst import Simulation, SimulationConfig


async def campaign(url: str, start: int, seeds: int, steps: int) -> int:
    fired: Counter[str] = Counter()
    violating = 0
    steps_run = 0
    started = time.perf_counter()
    for seed in range(start, start + seeds):
        config = SimulationConfig(seed, steps, url=url, swarm=True)
        try:
            result = await Simulation(config).run()
        except BaseException:
            print(f"seed {seed} broke the harness itself; replay: {config.replay_command()}")
            raise
        fired.update(result.faults)
        steps_run += result.steps_run
        for violation in result.violations:
            violating += 1
            print(violation.report(), flush=True)
    elapsed = time.perf_counter() - started
    print(f"campaign: {seeds} seeds x {steps} steps on {url}: {steps_run} steps in "
          f"{elapsed:.1f} s ({steps_run / max(elapsed, 1e-9):.0f} steps/s), "
          f"{violating} violating seeds")
    print("faults fired: " + ", ".join(f"{name} {n}" for name, n in sorted(fired.items())))
    return 1 if violating else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="sim://")
    parser.add_argument("--seeds", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    args = parser.parse_args()
    return asyncio.run(campaign(args.url, args.start, args.seeds, args.steps))


if __name__ == "__main__":
    sys.exit(main())
