"""`umi-tui sim`: run a deterministic simulation headless (SPEC §3, §4).

stdout holds only what the seed and config decide, so two runs print the same bytes;
progress and speed go to stderr. Exit 0: no violation; 1: a violation; 2: bad usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from types import SimpleNamespace
from typing import TextIO

import click

from umi_store import InvalidInputError, StoreUnavailableError, url_without_password
from umi_store.dst import FaultConfig, FaultType, SimConfig, Simulation, SimulationConfig
from umi_store.dst.config import parse_seed
from umi_store.store import mask_url

from .campaign_command import run_campaign_command

SIM_STEPS_DEFAULT = 1_000
SIM_PROGRESS_UPDATES_COUNT = 100
SIM_EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    pass


def _fault(text: str) -> FaultConfig:
    name, sep, probability = text.partition("=")
    if not sep:
        raise _UsageError(f"--fault takes NAME=PROBABILITY, got {text!r}")
    try:
        value = float(probability)
    except ValueError:
        raise _UsageError(f"fault probability must be a number, got {probability!r}") from None
    try:
        return FaultConfig(name, value)  # type: ignore[arg-type]  # a name; unknown is refused
    except InvalidInputError as error:
        raise _UsageError(str(error)) from None


@click.command("sim", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url", required=False, default="sim://")
@click.option("--seed", help="the run's seed (default: UMI_SEED, else a fresh one)")
@click.option("--steps", type=int, default=SIM_STEPS_DEFAULT, show_default=True,
              help="operations to run")
@click.option("--fault", multiple=True, metavar="NAME=P",
              help="inject a fault type with probability P (repeatable); names: "
                   + ", ".join(FaultType))
@click.option("--swarm", is_flag=True, help="let the seed draw its own fault mix as well")
@click.option("--log", metavar="PATH",
              help="write the event log, one line per step ('-' for stdout)")
@click.option("--progress-every", type=int, default=0, metavar="N",
              help="print a progress line to stderr every N steps")
@click.option("--campaign", type=int, metavar="N",
              help="run N seeds from the seed on (each --steps long), with a progress bar; "
                   "stops at the first violation")
@click.option("--jobs", type=int, default=1, metavar="J",
              help="with --campaign: run the seeds in J processes (default 1)")
def sim_cli(**params: object) -> None:
    """Run a seeded simulation headless.

    Runs the workload against URL (default sim://; a real store is used only through the
    scratch agent sim-<seed>) and checks the store against the reference model after
    every step. Exit 0: no violation; 1: a violation; 2: bad usage."""
    sys.exit(run(SimpleNamespace(**params), sys.stdout, sys.stderr))


def _parse(argv: list[str], err: TextIO) -> SimpleNamespace | int:
    """The arguments, or the exit code when there is nothing to run (--help, bad usage)."""
    try:
        context = sim_cli.make_context("umi-tui sim", list(argv))
    except click.exceptions.Exit as done:  # --help, printed
        return done.exit_code
    except click.ClickException as error:
        print(f"umi-tui sim: error: {error.format_message()}", file=err)
        return 2
    return SimpleNamespace(**context.params)


def _config(args: SimpleNamespace, out: TextIO) -> SimulationConfig:
    """The run the arguments ask for; everything is checked before a fresh seed is announced."""
    if args.progress_every < 0:
        raise _UsageError(f"--progress-every must be ≥ 0, got {args.progress_every}")
    if args.campaign is None and args.jobs != 1:
        raise _UsageError("--jobs runs a campaign's seeds in parallel; give --campaign N too")
    if args.campaign is not None and args.log:
        raise _UsageError("a campaign keeps no event log; replay one seed with --log")
    checked = SimulationConfig(0, args.steps, tuple(_fault(f) for f in args.fault), args.url,
                               args.swarm)
    if args.seed is not None:
        seed = parse_seed(args.seed, "--seed")
    else:
        seed = SimConfig.from_env(announce=lambda line: print(line, file=out)).seed
    return dataclasses.replace(checked, seed=seed)


def _progress(config: SimulationConfig, every: int, err: TextIO):
    live = err.isatty()
    live_every = max(1, config.steps // SIM_PROGRESS_UPDATES_COUNT)

    def report(step: int) -> None:
        if live and (step % live_every == 0 or step == config.steps):
            err.write(f"\rstep {step}/{config.steps}" + ("\n" if step == config.steps else ""))
            err.flush()
        elif every and step % every == 0:
            print(f"step {step}/{config.steps}", file=err, flush=True)
    return report


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `umi-tui sim ARGV`; the exit code of SPEC §4."""
    out, err = out or sys.stdout, err or sys.stderr
    parsed = _parse(argv, err)
    return parsed if isinstance(parsed, int) else run(parsed, out, err)


def run(args: SimpleNamespace, out: TextIO, err: TextIO) -> int:
    """Run the simulation the parsed arguments ask for; the exit code."""
    try:
        return _run(args, out, err)
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: SimpleNamespace, out: TextIO, err: TextIO) -> int:
    try:
        config = _config(args, out)
    except (_UsageError, InvalidInputError) as error:
        print(f"umi-tui sim: error: {error}", file=err)
        return 2
    if args.campaign is not None:
        try:
            return run_campaign_command(config, args.campaign, args.jobs, out, err)
        except (InvalidInputError, StoreUnavailableError) as error:
            print(f"umi-tui sim: error: {error}", file=err)
            return 2
    try:
        log_file = out if args.log == "-" else open(args.log, "w", encoding="utf-8") \
            if args.log else None
    except OSError as error:
        print(f"umi-tui sim: error: cannot write the event log: {error}", file=err)
        return 2
    log = None if log_file is None else (lambda line: print(line, file=log_file))
    mix = config.fault_mix()
    print(f"umi-tui sim: seed {config.seed}, {config.steps} steps on {mask_url(config.url)}, "
          f"agent {config.agent}", file=out)
    print(f"core memory limit: {config.core_size_bytes_max} bytes", file=out)
    print("faults: " + (" ".join(f"{c.fault_type}={c.probability!r}" for c in mix) or "none"),
          file=out)
    started = time.perf_counter()
    interrupted = False
    simulation = Simulation(config, log=log, progress=_progress(config, args.progress_every, err))
    try:
        result = asyncio.run(simulation.run())
    except (InvalidInputError, StoreUnavailableError) as error:
        print(f"umi-tui sim: error: {error}", file=err)
        return 2
    except KeyboardInterrupt:
        result, interrupted = simulation.result, True
        print(f"interrupted after step {result.steps_run}", file=out)
    finally:
        if log_file not in (None, out):
            log_file.close()
    elapsed = time.perf_counter() - started
    print(f"steps: {result.steps_run} of {config.steps}", file=out)
    print("ops: " + ", ".join(f"{name} {n}" for name, n in sorted(result.ops.items())), file=out)
    print("faults fired: " + (", ".join(f"{name} {n}" for name, n in
                                        sorted(result.faults.items())) or "none"), file=out)
    print(f"violations: {len(result.violations)}", file=out)
    for violation in result.violations:
        print(violation.report(), file=out)
    print(f"replay: {config.replay_command()}", file=out)
    if url_without_password(config.url) != config.url:
        print("replay: the URL leaves the password out; PGPASSWORD or ~/.pgpass supplies it",
              file=err)
    print(f"{result.steps_run} steps in {elapsed:.2f} s "
          f"({result.steps_run / max(elapsed, 1e-9):.0f} steps/s)", file=err)
    return 1 if not result.ok else SIM_EXIT_INTERRUPTED if interrupted else 0
