"""`umi-tui sim`: same seed, same output; clear refusals; exit codes of SPEC §4."""

import asyncio
import io
import subprocess
import sys

import pytest

from umi_store.backends.sim import SimTx
from umi_store.dst import SimulationConfig
from umi_tui.__main__ import main as umi_tui
from umi_tui.sim_command import main


def _sim(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_same_seed_prints_the_same_output_twice():
    argv = ("--seed", "42", "--steps", "400", "--fault", "storage_write_fail=0.05")
    first, second = _sim(*argv), _sim(*argv)
    assert first[0] == 0
    assert first[1] == second[1]
    out = first[1]
    assert "seed 42, 400 steps on sim://, agent sim-42" in out
    assert "violations: 0" in out
    assert "faults fired: storage_write_fail " in out
    assert out.rstrip().endswith(
        "replay: umi-tui sim --seed 42 --steps 400 --fault storage_write_fail=0.05")
    assert "steps/s" in first[2] and "steps/s" not in out


def test_the_umi_tui_entry_point_dispatches_sim(capsys):
    assert umi_tui(["sim", "--seed", "1", "--steps", "5"]) == 0
    assert "violations: 0" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--fault", "storage_explodes=0.1"], "unknown fault 'storage_explodes'"),
    (["--fault", "storage_write_fail=1.5"], "between 0 and 1"),
    (["--fault", "storage_write_fail=often"], "must be a number"),
    (["--fault", "storage_write_fail"], "NAME=PROBABILITY"),
    (["--seed", "12x"], "--seed must be a whole number"),
    (["--seed", "-3"], "--seed must be between"),
    (["--steps", "-1"], "steps must be between"),
    (["--steps", "many"], "'many' is not a valid integer"),
    (["ftp://example.org/x"], "unknown store URL"),
    (["postgresql://me:hunter2@127.0.0.1:1/none"], "me:***@"),
    (["--log", "/nonexistent-dir/events.log"], "cannot write the event log"),
])
def test_bad_usage_exits_2_with_a_clear_message(argv, message):
    code, _, err = _sim("--steps", "3", *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and "hunter2" not in err


def test_without_a_seed_one_is_picked_and_printed(monkeypatch):
    monkeypatch.delenv("UMI_SEED", raising=False)
    code, out, _ = _sim("--steps", "3")
    assert code == 0
    seed = out.split("seed ", 1)[1].split(";", 1)[0]
    assert out.startswith(f"seed {seed}; replay with --seed {seed}\n")  # one spelling
    assert f"replay: umi-tui sim --seed {seed} --steps 3" in out


@pytest.mark.parametrize("argv", [["--fault", "bogus=0.1"], ["--fault", "storage_write_fail"],
                                  ["--steps", "-1"], ["--progress-every", "-2"]])
def test_bad_usage_is_refused_before_a_seed_is_announced(monkeypatch, argv):
    monkeypatch.delenv("UMI_SEED", raising=False)
    code, out, err = _sim(*argv)
    assert code == 2 and err.startswith("umi-tui sim: error: ")
    assert out == "", "nothing, not even a seed to replay, before the usage error"


def test_stdout_is_the_same_bytes_for_a_seed_and_the_speed_goes_to_stderr():
    argv = [sys.executable, "-m", "umi_tui", "sim", "--seed", "8", "--steps", "150",
            "--fault", "db_deadlock=0.2"]
    first, second = (subprocess.run(argv, capture_output=True, check=True) for _ in range(2))
    assert first.stdout == second.stdout
    assert b"steps/s" in first.stderr and b"steps/s" not in first.stdout
    assert b" s (" not in first.stdout


def test_the_replay_command_leaves_a_password_out_so_it_still_runs():
    config = SimulationConfig(4, 20, url="postgresql://umi:hunter2@db.example:5432/umi")
    assert config.replay_command() == \
        "umi-tui sim --seed 4 --steps 20 postgresql://umi@db.example:5432/umi"


def test_seed_from_umi_seed(monkeypatch):
    monkeypatch.setenv("UMI_SEED", "77")
    assert "seed 77, 3 steps" in _sim("--steps", "3")[1]


def test_a_violation_exits_1_and_prints_the_report(monkeypatch):
    async def drops_every_write(self, entry):
        return None

    monkeypatch.setattr(SimTx, "working_put", drops_every_write)
    code, out, _ = _sim("--seed", "3", "--steps", "200")
    assert code == 1
    assert "violations: 1" in out
    assert "VIOLATION at step" in out and "(seed 3)" in out
    assert "replay:   umi-tui sim --seed 3 --steps " in out


def test_event_log_to_a_file_and_progress_lines(tmp_path):
    log = tmp_path / "events.log"
    code, _, err = _sim("--seed", "9", "--steps", "50", "--log", str(log),
                        "--progress-every", "25")
    assert code == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 50 and lines[0].startswith("0 1767225600000 ")
    assert "step 25/50" in err and "step 50/50" in err


def test_a_real_store_is_used_through_the_scratch_agent_only(tmp_path):
    from umi_store import open_store
    url = f"sqlite:///{tmp_path}/umi.db"

    async def persona_of_default(content=None):
        async with open_store(url, agent="default") as store:
            if content is not None:
                await store.core.set_block("persona", content)
            return [b.content for b in await store.core.blocks()]

    asyncio.run(persona_of_default("keep me"))
    code, out, _ = _sim("--seed", "5", "--steps", "100", url)
    assert code == 0 and "agent sim-5" in out and out.rstrip().endswith(url)
    assert asyncio.run(persona_of_default()) == ["keep me"]
