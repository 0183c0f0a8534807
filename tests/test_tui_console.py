"""The Simulation console: clock steps and speed, faults, workload runs, the log, replay,
new seed, the replay command, and a scratch agent that never touches the inspected one."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from textual.widgets import Button, DataTable, Input, OptionList, ProgressBar

from umi_store import SimClock, open_store
from umi_store.dst.faults import FaultType
from umi_store.dst.simulation import StepRecord, Violation
from umi_tui.app import UmiApp
from umi_tui.panes import simulation as simulation_pane
from umi_tui.formatting import parse_duration
from umi_tui.panes.simulation import CLOCK_STEP_MS_MAX, SimulationPane, next_seed
from umi_tui.settings import Settings

from .conftest import postgres_url, store_url, wipe_postgres
from .tui_support import (TEST_SEED, FixedTimer, fixed_query_timer,  # noqa: F401 (fixtures)
                          isolated_user_dirs, make_app, settle)

pytestmark = pytest.mark.usefixtures("fixed_query_timer")


@pytest.fixture(autouse=True)
def fixed_ops_timer(monkeypatch):
    """ops/s reads the same on every run."""
    monkeypatch.setattr(SimulationPane, "perf_counter", FixedTimer())


def log_lines(pane: SimulationPane) -> list[str]:
    """The run's event log as the pane holds it, line by line."""
    return [entry.text for entry in pane.entries]


def console(app) -> SimulationPane:
    return app.query_one(SimulationPane)


async def open_console(pilot) -> SimulationPane:
    await settle(pilot)
    await pilot.press("4")
    return console(pilot.app)


async def run_steps(pilot, steps: int) -> None:
    pane = console(pilot.app)
    pane.query_one("#sim-steps", Input).value = str(steps)
    pane.focus()
    await pilot.press("r")
    await settle(pilot)


async def test_step_keys_buttons_and_a_custom_amount_move_the_clock_for_every_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        start = app.store.clock.now_ms()
        await pilot.press("s", "m", "h")
        await settle(pilot)
        assert app.store.clock.now_ms() - start == 1_000 + 60_000 + 3_600_000
        await pilot.click("#step-60000")
        await pilot.press("c", *"2d", "enter")
        await settle(pilot)
        assert app.store.clock.now_ms() - start == 3_661_000 + 60_000 + 2 * 86_400_000
        assert "2026-01-03 01:02:01" in str(pane.query_one("#sim-header").render())
        assert "01:02:01 sim" in app.sub_title  # the app heard it: so did every pane


async def test_a_custom_amount_that_does_not_parse_is_refused_and_kept():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_console(pilot)
        start = app.store.clock.now_ms()
        await pilot.press("c", *"soon", "enter")
        await settle(pilot)
        assert app.store.clock.now_ms() == start
        assert app.screen.query_one(Input).value == "soon"
        assert "Not applied" in str(app.screen.query_one("#error").render())


def test_durations_read_like_a_person_writes_them():
    assert parse_duration("90") == 90_000
    assert parse_duration("250ms") == 250
    assert parse_duration("5m") == parse_duration("5min") == 300_000
    assert parse_duration("1d") == 86_400_000
    for bad in ("", "-1s", "0s", "1y", "400d"):
        with pytest.raises(ValueError):
            parse_duration(bad, ms_max=CLOCK_STEP_MS_MAX)


async def test_a_clock_following_real_time_runs_no_workload_until_space_starts_it():
    app = UmiApp(Settings(demo=True, seed=TEST_SEED), clock=SimClock(), follow_wall_clock=True)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        app.session._wall_ms -= 1_000
        app.tick()
        await settle(pilot)
        assert pane.simulation is None  # the demo's clock runs; the workload waits for space
        assert "paused (1×)" in str(pane.query_one("#sim-header").render())
        assert str(pane.query_one("#toggle-clock", Button).label) == "▶ run"
        await pilot.press("space")  # one press starts the simulation
        assert "▶ running 1×" in str(pane.query_one("#sim-header").render())
        app.session._wall_ms -= 1_000
        app.tick()
        await settle(pilot)
        assert pane.simulation.result.steps_run >= 1


async def test_the_fault_sparkline_stays_empty_until_a_fault_fires():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        assert not pane.query_one("#spark-faults").visible
        await run_steps(pilot, 20)
        assert pane.simulation.result.steps_run == 20
        assert not pane.query_one("#spark-faults").visible, "no fault fired yet"
        pane.set_fault(FaultType("storage_write_fail"), True, 1.0)
        await run_steps(pilot, 20)
        assert sum(pane.simulation.result.faults.values()) > 0
        assert pane.query_one("#spark-faults").visible


async def test_run_pause_and_speed_drive_the_apps_tick():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        clock = app.store.clock
        await pilot.press("x")  # 10×
        await pilot.press("space")
        assert app.clock_speed == 10
        assert "▶ running 10×" in str(pane.query_one("#sim-header").render())
        start = clock.now_ms()
        app.session._wall_ms -= 1_000  # as if a second went by
        app.tick()
        assert clock.now_ms() - start >= 10_000
        await settle(pilot)
        assert pane.simulation.result.steps_run >= 10  # running also runs 10 workload steps a tick
        await pilot.press("space")
        assert app.clock_speed == 0
        start, steps = clock.now_ms(), pane.simulation.result.steps_run
        app.session._wall_ms -= 1_000
        app.tick()
        await settle(pilot)
        assert clock.now_ms() == start and pane.simulation.result.steps_run == steps
        await pilot.press("x", "x", "x")
        assert str(pane.query_one("#speed", Button).label) == "1×"


async def test_a_run_of_n_steps_fills_the_progress_bar_log_and_header():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 50)
        bar = pane.query_one("#sim-progress", ProgressBar)
        assert (bar.progress, bar.total) == (50, 50)
        assert len(log_lines(pane)) == 50 and log_lines(pane)[0].startswith("0 ")
        steps = [entry.record for entry in pane.entries]  # structured, not parsed from text
        assert [record.step for record in steps] == list(range(50))
        assert all(isinstance(r, StepRecord) and r.outcome.startswith(("ok", "err"))
                   for r in steps)
        assert pane.query_one("#sim-log", OptionList).option_count == 50
        header = str(pane.query_one("#sim-header").render())
        assert "steps 50" in header and "0 violations" in header
        assert "ops/s" in header and "–" not in header
        await run_steps(pilot, 10)  # a second run goes on where the first stopped
        assert len(log_lines(pane)) == 60 and log_lines(pane)[-1].startswith("59 ")


async def test_a_run_of_ten_thousand_faulted_steps_keeps_the_ui_answering():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        for fault in (FaultType.STORAGE_WRITE_FAIL, FaultType.STORAGE_LATENCY,
                      FaultType.CRASH_AFTER_COMMIT):
            pane.set_fault(fault, True, 0.05)
        pane.run_workload(10_000)
        seen: list[int] = []  # the steps done at each redraw of the bar
        show_progress = pane._show_progress
        pane._show_progress = lambda bar, done, rate: (seen.append(done),  # type: ignore[method-assign]
                                                       show_progress(bar, done, rate))
        tabs = pane.query_one("#sim-tabs")
        answered_mid_run: list[bool] = []
        show_tab = pane.action_show_tab

        def show_tab_noting_the_run(tab: str) -> None:
            answered_mid_run.append(pane._run_active)
            show_tab(tab)

        pane.action_show_tab = show_tab_noting_the_run  # type: ignore[method-assign]
        await pilot.pause()
        while pane._run_active and not seen:
            await asyncio.sleep(0.01)  # not pilot.pause(): it waits until the run is over
        await pilot.press("F")  # pressed as the bar first moves, answered while the run goes on
        await settle(pilot)
        assert answered_mid_run == [True] and tabs.active == "tab-faults"
        assert len(set(seen) - {0, 10_000}) >= 2, "the bar moved while the run went on"
        assert pane.simulation.result.ok and sum(pane.simulation.result.faults.values()) > 0
        assert len(log_lines(pane)) == 10_000
        log = pane.query_one("#sim-log", OptionList)
        assert log.option_count == simulation_pane.SIM_LOG_SHOWN_COUNT_MAX
        assert "steps 10,000" in str(pane.query_one("#sim-header").render())


async def test_a_long_run_keeps_only_the_newest_log_lines(monkeypatch):
    monkeypatch.setattr(simulation_pane, "SIM_LOG_KEPT_COUNT_MAX", 40)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 100)
        assert len(log_lines(pane)) == 40
        assert log_lines(pane)[0].startswith("60 ") and log_lines(pane)[-1].startswith("99 ")


async def test_cancel_stops_a_run_between_steps():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        pane.run_workload(100_000)
        await pilot.pause()
        await pilot.press("k")
        await settle(pilot)
        steps = pane.simulation.result.steps_run
        assert 0 < steps < 100_000
        assert any("Cancelled" in n.message for n in app._notifications)
        assert pane.query_one("#cancel-run", Button).disabled


async def test_a_fault_toggle_and_probability_take_effect_on_the_running_simulation():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 5)
        injector = pane.simulation.injector
        table = pane.query_one("#fault-table", DataTable)
        pane.focus()
        await pilot.press("f")  # first brings the table into view, changing nothing
        assert injector.configs == [] and table.has_focus
        table.move_cursor(row=list(FaultType).index(FaultType.STORAGE_READ_FAIL))
        await pilot.press("f")
        assert [c.fault_type for c in injector.configs] == [FaultType.STORAGE_READ_FAIL]
        assert "⚡1 fault on" in str(pane.query_one("#sim-header").render())
        await pilot.press("p", "1", "enter")
        await settle(pilot)
        assert injector.configs[0].probability == 1.0
        assert table.get_cell("storage_read_fail", "p") == "1"
        await run_steps(pilot, 20)
        fired = int(table.get_cell("storage_read_fail", "fired"))
        assert fired > 0
        assert any("faults=storage_read_fail" in line for line in log_lines(pane))
        assert any(dict(entry.record.faults).get("storage_read_fail") for entry in pane.entries
                   if isinstance(entry.record, StepRecord)), "the records say which faults fired"
        assert "--fault storage_read_fail=1.0" in pane.replay_command()
        assert "faults changed mid-run" in str(pane.query_one("#sim-replay").render())
        table.focus()
        await pilot.press("f")
        assert injector.configs == []


async def test_a_bad_probability_is_refused_and_changes_nothing():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await pilot.press("F", "p", *"1.5", "enter")
        await settle(pilot)
        assert "between 0 and 1" in str(app.screen.query_one("#error").render())
        assert pane.enabled == {}


async def test_the_log_filter_shows_only_matching_lines():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 80)
        log_filter = pane.query_one("#log-filter", Input)
        log_filter.value = "working.set"
        await settle(pilot)
        shown = pane.shown_entries()
        assert shown and all("working.set" in entry.text for entry in shown)
        assert pane.query_one("#sim-log", OptionList).option_count == len(shown) < 80
        log_filter.value = ""
        await settle(pilot)
        assert pane.query_one("#sim-log", OptionList).option_count == 80


async def test_jump_goes_from_one_violation_to_the_next_and_wraps():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        for record in (StepRecord(0, 1, "working.get", "ok"), Violation(7, 0, "x", "a", "b", ""),
                       StepRecord(2, 1, "core.blocks", "ok"), Violation(7, 2, "y", "a", "b", "")):
            pane._take_record(record)
        pane._flush_log()
        log = pane.query_one("#sim-log", OptionList)
        pane.focus()
        await pilot.press("v")
        assert log.highlighted == 1 and log.has_focus
        await pilot.press("v")
        assert log.highlighted == 3
        await pilot.press("v")
        assert log.highlighted == 1


async def test_replay_from_the_seed_shows_the_same_events():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        pane.set_fault(FaultType.STORAGE_WRITE_FAIL, True, 0.1)
        await run_steps(pilot, 70)
        first = log_lines(pane)
        assert any("faults=" in line for line in first)
        await pilot.press("R", *"70", "enter")
        await settle(pilot)
        assert log_lines(pane) == first
        await pilot.press("R", *"30", "enter")
        await settle(pilot)
        assert log_lines(pane) == first[:30]


async def test_a_new_seed_starts_over_and_is_announced():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 10)
        await pilot.press("N")
        await settle(pilot)
        seed = next_seed(TEST_SEED)
        assert pane.seed == seed != TEST_SEED
        assert not log_lines(pane) and pane.simulation is None
        assert any(f"replay with --seed {seed}" in n.message for n in app._notifications)
        await run_steps(pilot, 10)
        assert pane.replay_command() == f"umi-tui sim --seed {seed} --steps 10"


async def test_y_copies_the_command_that_replays_the_run():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 12)
        await pilot.press("y")
        assert app.clipboard == f"umi-tui sim --seed {TEST_SEED} --steps 12"
        assert app.clipboard in str(pane.query_one("#sim-replay").render())


@pytest.mark.postgres
async def test_y_on_postgres_copies_a_runnable_command_that_leaves_the_password_out():
    url = postgres_url()
    await wipe_postgres(url)
    parts = urlsplit(url)  # the test server trusts local users: any password will do
    user, _, host = parts.netloc.rpartition("@")
    secret = "not-on-screen"
    app = UmiApp(Settings(url=urlunsplit(parts._replace(
        netloc=f"{user.split(':')[0] or 'postgres'}:{secret}@{host}")), seed=TEST_SEED))
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await run_steps(pilot, 5)
        await pilot.press("y")
        command = app.clipboard
        assert secret not in command and "***" not in command
        assert secret not in str(pane.query_one("#sim-replay").render())
        toast = list(app._notifications)[-1].message
        assert command in toast and "PGPASSWORD" in toast and secret not in toast
    replay = subprocess.run([sys.executable, "-m", "umi_tui", *shlex.split(command)[1:]],
                            capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    assert "violations: 0" in replay.stdout


@pytest.mark.parametrize("backend",
                         ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_on_a_real_backend_the_clock_is_off_and_runs_touch_only_the_scratch_agent(
        backend, tmp_path):
    url = store_url(backend, tmp_path)
    if backend == "postgres":
        await wipe_postgres(url)
    async with open_store(url, agent="default") as store:
        await store.core.set_block("human", "Ada, keep me")
        await store.working.set("k", b"v")
        await store.archival.remember("Ada likes tea", "person", name="Ada")
    app = UmiApp(Settings(url=url, seed=TEST_SEED))
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        assert all(b.disabled for b in pane.query("#sim-controls Button"))
        notice = str(pane.query_one("#sim-notice").render())
        assert "system clock" in notice and f"sim-{TEST_SEED}" in notice
        await run_steps(pilot, 40)
        assert pane.simulation.result.steps_run == 40
        assert "sim --seed" in pane.replay_command()
    async with open_store(url, agent="default") as store:
        assert (await store.core.get_block("human")).content == "Ada, keep me"
        assert [e.key for e in await store.working.entries()] == ["k"]
        assert [e.name for e in await store.archival.list()] == ["Ada"]
    async with open_store(url, agent=f"sim-{TEST_SEED}") as scratch:
        assert await scratch.core.blocks() or await scratch.archival.count() \
            or await scratch.working.entry_count()


def test_console_snapshot_after_forty_steps_maximised(snap_compare):
    async def run(pilot):
        await open_console(pilot)
        await run_steps(pilot, 40)
        await pilot.press("z")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=run)


def test_console_snapshot_of_the_fault_tab_in_its_quarter(snap_compare):
    async def faults(pilot):
        pane = await open_console(pilot)
        pane.set_fault(FaultType.DB_DEADLOCK, True, 0.05)
        await pilot.press("F")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=faults)


async def test_a_scratch_agent_that_is_the_inspected_agent_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/umi.db"
    app = UmiApp(Settings(url=url, seed=TEST_SEED, agent=f"sim-{TEST_SEED}"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_console(pilot)
        await app.store.working.set("mine", b"keep")
        await run_steps(pilot, 20)
        assert pane.simulation is None
        assert any("being inspected" in n.message for n in app._notifications)
        assert [e.key for e in await app.store.working.entries()] == ["mine"]


def test_console_snapshot_of_a_filtered_log_maximised_at_80_by_24(snap_compare):
    async def filtered(pilot):
        await open_console(pilot)
        await run_steps(pilot, 60)
        await pilot.press("z", "L", *"set_block")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=filtered)
