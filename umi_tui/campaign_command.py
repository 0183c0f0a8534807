"""`umi-tui sim --campaign N`: N seeds of one simulation config, with a live progress bar.

stdout holds the campaign's size, any violation (with its replay command) and the totals;
the progress bar (seeds done, steps/s, violations so far, time left) goes to stderr, drawn
only on a terminal. Stops at the first violation. Exit 0: no violation; 1: a violation.
"""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeRemainingColumn)

from umi_store.dst.campaign import SeedOutcome, campaign_seeds, checked_jobs, run_campaign
from umi_store.dst.simulation import SimulationConfig
from umi_store.store import mask_url

CAMPAIGN_EXIT_INTERRUPTED = 130


def run_campaign_command(template: SimulationConfig, count: int, jobs: int, out: TextIO,
                         err: TextIO) -> int:
    """Run `count` seeds from template.seed in `jobs` processes; the exit code."""
    seeds, jobs = campaign_seeds(template.seed, count), checked_jobs(jobs)
    explicit = " ".join(f"{c.fault_type}={c.probability!r}" for c in template.faults)
    mix = ("swarm (each seed draws its own)" + (f" over {explicit}" if explicit else "")
           if template.swarm else explicit or "none")
    print(f"umi-tui sim: campaign of {count} seeds from seed {seeds.start}, {template.steps} "
          f"steps each on {mask_url(template.url)}, {jobs} process{'es' if jobs > 1 else ''}",
          file=out)
    print(f"faults: {mix}", file=out, flush=True)
    console = Console(file=err)
    progress = Progress(TextColumn("campaign"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("seeds · {task.fields[rate]} steps/s · "
                                   "{task.fields[violations]} violations"),
                        TimeRemainingColumn(), console=console,
                        disable=not console.is_terminal)
    task = progress.add_task("campaign", total=count, rate="–", violations=0)
    started = time.perf_counter()
    steps = violations = 0

    def seed_done(outcome: SeedOutcome) -> None:
        nonlocal steps, violations
        steps += outcome.steps_run
        violations += outcome.violation is not None
        rate = steps / max(time.perf_counter() - started, 1e-9)
        progress.update(task, advance=1, rate=f"{rate:,.0f}", violations=violations)

    interrupted = False
    with progress:
        try:
            result = run_campaign(template, seeds, jobs=jobs, on_seed=seed_done)
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.perf_counter() - started
    if interrupted:
        print(f"interrupted after {steps} steps", file=out)
        return CAMPAIGN_EXIT_INTERRUPTED
    for violation in result.violations:
        print(violation.report(), file=out)
    print(f"seeds: {result.seeds_run} of {count}, steps: {result.steps_run}, violating seeds: "
          f"{len(result.violations)}", file=out)
    print("faults fired: " + (", ".join(f"{name} {n}" for name, n in
                                        sorted(result.faults.items())) or "none"), file=out)
    print(f"{result.steps_run} steps in {elapsed:.2f} s "
          f"({result.steps_run / max(elapsed, 1e-9):,.0f} steps/s)", file=err)
    return 0 if result.ok else 1
