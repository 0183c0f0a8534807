"""A campaign: many seeds of one simulation config, in this process or in several.

Each seed runs as its own Simulation (the config's seed replaced); a seed's outcome is
whatever its run found: the steps it ran, the faults that fired, its violation. The
campaign stops at the first violation (seeds already running in other processes finish,
seeds not started are dropped), so the violation and its replay command come at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from ..errors import InvalidInputError
from .config import SIM_SEED_MAX
from .simulation import Simulation, SimulationConfig, Violation

CAMPAIGN_JOBS_COUNT_MAX = 64
CAMPAIGN_SEEDS_COUNT_MAX = 10_000_000


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """What one seed's run found."""

    seed: int
    steps_run: int
    faults: Counter[str]
    violation: Violation | None


@dataclass(slots=True)
class CampaignResult:
    seeds_run: int = 0
    steps_run: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, outcome: SeedOutcome) -> None:
        self.seeds_run += 1
        self.steps_run += outcome.steps_run
        self.faults.update(outcome.faults)
        if outcome.violation is not None:
            self.violations.append(outcome.violation)


def campaign_seeds(first_seed: int, count: int) -> range:
    """The seeds of a campaign of `count` seeds from `first_seed` (checked, typed errors)."""
    if not 1 <= count <= CAMPAIGN_SEEDS_COUNT_MAX:
        raise InvalidInputError(
            f"a campaign runs 1 to {CAMPAIGN_SEEDS_COUNT_MAX:,} seeds, got {count}")
    if first_seed + count - 1 > SIM_SEED_MAX:
        raise InvalidInputError(f"a campaign from seed {first_seed} would pass the largest "
                                f"seed {SIM_SEED_MAX}")
    return range(first_seed, first_seed + count)


def checked_jobs(jobs: int) -> int:
    if not 1 <= jobs <= CAMPAIGN_JOBS_COUNT_MAX:
        raise InvalidInputError(f"jobs must be between 1 and {CAMPAIGN_JOBS_COUNT_MAX}, got {jobs}")
    return jobs


async def run_seed(config: SimulationConfig) -> SeedOutcome:
    """One seed's run; no event log is kept (a violation carries its replay command)."""
    result = await Simulation(config).run()
    violation = result.violations[0] if result.violations else None
    return SeedOutcome(config.seed, result.steps_run, result.faults, violation)


def _run_seed_in_worker(config: SimulationConfig) -> SeedOutcome:
    return asyncio.run(run_seed(config))


def run_campaign(template: SimulationConfig, seeds: range, *, jobs: int = 1,
                 on_seed: Callable[[SeedOutcome], None] = lambda outcome: None
                 ) -> CampaignResult:
    """Run `template` for every seed (its own seed ignored) in `jobs` processes; stop at
    the first violation. `on_seed` hears of each seed as it finishes."""
    result = CampaignResult()
    for outcome in _outcomes(template, seeds, checked_jobs(jobs)):
        result.add(outcome)
        on_seed(outcome)
        if outcome.violation is not None:
            break
    return result


def _outcomes(template: SimulationConfig, seeds: range, jobs: int) -> Iterator[SeedOutcome]:
    configs = (replace(template, seed=seed) for seed in seeds)
    if jobs == 1:
        yield from _outcomes_here(configs)
        return
    context = multiprocessing.get_context("spawn")  # no inherited event loop or store
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        pending: set[concurrent.futures.Future[SeedOutcome]] = set()
        try:
            for config in configs:
                if len(pending) >= 2 * jobs:  # a few queued per process, not all N at once
                    done, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    yield from (future.result() for future in done)
                pending.add(pool.submit(_run_seed_in_worker, config))
            for future in concurrent.futures.as_completed(pending):
                yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _outcomes_here(configs: Iterator[SimulationConfig]) -> Iterator[SeedOutcome]:
    """Seeds one after another in this process, on one event loop."""
    with asyncio.Runner() as runner:
        for config in configs:
            yield runner.run(run_seed(config))
