"""How long `import umi_store` takes, from `python -X importtime`, best of several runs.

    .venv/bin/python bench/import_time.py [--runs 7]

Prints the time of umi_store's own modules (the sum of their self times), the whole
import (cumulative, with the standard library modules it is first to load, such as
asyncio), the drivers if any were loaded (aiosqlite, asyncpg: they should not be), and,
measured in the same run, the baseline `import asyncio` that any asyncio program pays.
Also lists any module of the simulation harness that the import loaded (there should be
none). Goal (issue 12): umi_store's own modules ≤ 25 ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

IMPORT_TIME_OWN_MS_GOAL = 25
DRIVERS = ("aiosqlite", "asyncpg")
HARNESS = ("umi_store.dst.model", "umi_store.dst.workload", "umi_store.dst.simulation")


def _importtime(statement: str) -> dict[str, tuple[int, int]]:
    """Module -> (self µs, cumulative µs) for one fresh interpreter running `statement`."""
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                            capture_output=True, text=True, check=True).stderr
    times = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        times[name.strip()] = (int(own), int(cumulative))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    own, whole, drivers, baseline = [], [], [], []
    loaded_harness: set[str] = set()
    for _ in range(args.runs):
        times = _importtime("import umi_store")
        own.append(sum(s for name, (s, _) in times.items() if name.startswith("umi_store")))
        whole.append(times["umi_store"][1])
        drivers.append(sum(times[d][1] for d in DRIVERS if d in times))
        loaded_harness |= {name for name in HARNESS if name in times}
        baseline.append(_importtime("import asyncio")["asyncio"][1])
    print(f"import umi_store: own modules {min(own) / 1000:.1f} ms (goal ≤ "
          f"{IMPORT_TIME_OWN_MS_GOAL} ms), whole import {min(whole) / 1000:.1f} ms, drivers "
          f"{min(drivers) / 1000:.1f} ms; baseline import asyncio {min(baseline) / 1000:.1f} ms "
          f"(best of {args.runs})")
    print("harness modules loaded: " + (", ".join(sorted(loaded_harness)) or "none"))
    return 1 if loaded_harness else 0


if __name__ == "__main__":
    sys.exit(main())
