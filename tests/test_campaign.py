"""`umi-tui sim --campaign N`: many seeds, stopped at the first violation with its replay."""

from __future__ import annotations

import io

import pytest

from umi_store.backends.sim import SimTx
from umi_store.dst import SimulationConfig
from umi_store.dst.campaign import campaign_seeds, run_campaign
from umi_tui.sim_command import main

from .test_checker_mutations import _on_call


def _sim(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_clean_campaign_runs_every_seed_and_says_so():
    code, out, err = _sim("--campaign", "6", "--seed", "40", "--steps", "80", "--swarm")
    assert code == 0
    assert "campaign of 6 seeds from seed 40, 80 steps each on sim://, 1 process" in out
    assert "faults: swarm (each seed draws its own)" in out
    assert "seeds: 6 of 6, steps: 480, violating seeds: 0" in out
    assert "steps/s" in err and "steps/s" not in out


def test_a_campaign_stops_at_the_first_violation_with_its_replay_command(monkeypatch):
    async def dropped(self, entry):
        return None

    monkeypatch.setattr(SimTx, "working_put", _on_call(20, SimTx.working_put, dropped))
    code, out, _ = _sim("--campaign", "50", "--seed", "7", "--steps", "60")
    assert code == 1
    assert out.count("VIOLATION") == 1
    replay = next(line for line in out.splitlines() if "replay:" in line).split("replay:")[1]
    seed = int(replay.split("--seed ")[1].split()[0])
    assert 7 <= seed < 50 + 7 and replay.strip().startswith(f"umi-tui sim --seed {seed} --steps")
    assert f"seeds: {seed - 7 + 1} of 50" in out, "no seed after the violating one ran"


def test_seeds_in_several_processes_add_up_to_the_same_campaign():
    template = SimulationConfig(0, 60, swarm=True)
    here = run_campaign(template, campaign_seeds(100, 6), jobs=1)
    spread = run_campaign(template, campaign_seeds(100, 6), jobs=2)
    assert here.ok and spread.ok
    assert (spread.seeds_run, spread.steps_run, spread.faults) == \
        (here.seeds_run, here.steps_run, here.faults)


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "2"], "give --campaign N too"),
    (["--campaign", "0"], "a campaign runs 1 to"),
    (["--campaign", "3", "--jobs", "0"], "jobs must be between 1 and"),
    (["--campaign", "3", "--log", "-"], "a campaign keeps no event log"),
])
def test_a_malformed_campaign_is_refused_with_a_reason(argv, message):
    code, out, err = _sim("--seed", "1", *argv)
    assert code == 2 and message in err and "campaign of" not in out
