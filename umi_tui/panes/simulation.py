"""The Simulation console: the simulated clock (step, run at a speed), the fault catalogue,
seeded workload runs on a scratch agent with their event log, replay and the command that
reproduces a run."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from contextlib import AsyncExitStack
from time import perf_counter
from typing import NamedTuple

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import (Button, DataTable, Input, Label, OptionList, ProgressBar, Sparkline,
                             Static, TabbedContent, TabPane)
from textual.widgets.option_list import Option

from umi_store import InvalidInputError, SimClock, Store, UmiError, url_without_password
from umi_store.constants import DST_SIMULATION_STEPS_MAX, DST_TIME_ADVANCE_MS_MAX
from umi_store.dst.config import SIM_SEED_MAX
from umi_store.dst.faults import FaultConfig, FaultType
from umi_store.dst.rng import DeterministicRng
from umi_store.dst.simulation import RunRecord, Simulation, SimulationConfig, Violation

from ..feedback import report_error
from ..formatting import format_ms, parse_duration
from ..messages import ClockMoved
from ..screens.prompt import PromptScreen
from ..session import Session
from ..widgets.counts import counted
from ..widgets.pane_input import PaneInput

CLOCK_SPEEDS = (1, 10, 60, 600)
CLOCK_STEP_MS_MAX = 365 * 86_400_000  # a custom step may jump a year, in day-long advances
SIM_STEPS_DEFAULT = 100
SIM_FAULT_PROBABILITY_DEFAULT = 0.01
SIM_RUN_SLICE_SECS = 0.05  # a run hands the loop back this often: the bar moves, keys answer
# ...for this long: a key takes several loop turns to reach its action, and one is too few.
SIM_RUN_YIELD_SECS = 0.002
SIM_RUN_LOG_REFRESH_SECS = 1.0  # and the log catches up this often during a run
SIM_RUN_CLOCK_READ_EVERY_STEPS = 16  # steps between looks at the wall clock within a slice
SIM_LOG_SHOWN_COUNT_MAX = 1_000  # the log shows the last lines that match the filter
SIM_RUN_LOG_SHOWN_COUNT_MAX = 100  # mid-run, only the newest (a screenful): cheap to redraw
SIM_LOG_KEPT_COUNT_MAX = 100_000  # older lines are dropped (R replays to any step)
SPARK_BUCKET_MS = 60_000  # one sparkline bar per simulated minute
SPARK_BUCKETS_COUNT_MAX = 60
NEW_SEED_MAX = 2**32 - 1


class LogEntry(NamedTuple):
    """One record of a run, with its event-log text (what the filter looks in)."""

    record: RunRecord
    text: str

    @property
    def is_violation(self) -> bool:
        return isinstance(self.record, Violation)

    def matches(self, wanted: str) -> bool:
        return wanted.casefold() in self.text.casefold()

    def option(self) -> Option:
        """Its line in the log: a step's clock reads as a date and time, not milliseconds;
        a violation in bold red, a step where faults fired in the warning colour."""
        record = self.record
        if isinstance(record, Violation):
            return Option(f"[b $error]{_escaped(self.text)}[/]")
        text = _escaped(record.line(clock=format_ms(record.clock_ms)[5:]))
        return Option(f"[$warning]{text}[/]" if record.faults else text)


def _escaped(text: str) -> str:
    """`text` shown as it is: no `[` in it opens markup."""
    return text.replace("[", r"\[")


def parse_steps(text: str) -> int:
    try:
        steps = int(text.strip())
    except ValueError:
        raise ValueError(f"steps must be a whole number, got {text!r}") from None
    if not 0 < steps <= DST_SIMULATION_STEPS_MAX:
        raise ValueError(f"steps must be between 1 and {DST_SIMULATION_STEPS_MAX:,}")
    return steps


def next_seed(seed: int) -> int:
    """The seed 'new seed' moves to: drawn from the current one, so a session replays."""
    return DeterministicRng(seed).fork("console-new-seed").randint(0, NEW_SEED_MAX)


class SimulationPane(Widget, can_focus=True):
    """Drive the simulated clock and run seeded workloads on a scratch agent."""

    perf_counter = staticmethod(perf_counter)  # tests swap in a fixed timer: stable ops/s
    BINDINGS = [
        Binding("s", "step_clock(1000)", "Clock +1 s"),
        Binding("m", "step_clock(60000)", "Clock +1 min"),
        Binding("h", "step_clock(3600000)", "Clock +1 h"),
        Binding("c", "step_custom", "Clock + custom amount"),
        Binding("space", "toggle_clock", "Run/pause the simulation"),
        Binding("x", "next_speed", "Clock speed"),
        Binding("r", "run_steps", "Run N workload steps"),
        Binding("k", "cancel_run", "Cancel the workload run"),
        Binding("L", "show_tab('tab-log')", "Show and filter the event log"),
        Binding("F", "show_tab('tab-faults')", "Show the fault catalogue"),
        Binding("f", "toggle_fault", "Toggle the selected fault"),
        Binding("p", "fault_probability", "Set the selected fault's probability"),
        Binding("v", "next_violation", "Jump to the next violation"),
        Binding("R", "replay", "Replay from the seed to step K"),
        Binding("N", "new_seed", "Start again with a new seed"),
        Binding("y", "copy_command", "Copy the replay command"),
    ]
    DEFAULT_CSS = """
    SimulationPane { layout: vertical; }
    SimulationPane #sim-header { height: 2; }
    SimulationPane #sim-controls { height: 1; }
    SimulationPane #sim-controls Button { margin-right: 1; min-width: 3; width: 3; }
    SimulationPane #sim-controls #toggle-clock { width: 9; }
    SimulationPane #sim-controls #speed { width: 6; }
    SimulationPane #sim-notice { color: $text-muted; height: auto; max-height: 2; }
    SimulationPane #sim-header { text-wrap: nowrap; text-overflow: ellipsis; }
    SimulationPane #sim-notice.-warning { color: $warning; }
    SimulationPane TabbedContent { height: 1fr; }
    SimulationPane TabPane { padding: 0; }
    SimulationPane .row { height: 1; }
    SimulationPane .row Label { margin-right: 1; }
    SimulationPane .row Button { width: auto; min-width: 8; margin-right: 1; }
    SimulationPane #sim-steps { width: 9; margin-right: 1; }
    SimulationPane #sim-progress { height: 1; width: 1fr; }
    SimulationPane #sim-progress Bar { width: 1fr; }
    SimulationPane .spark-label { width: auto; color: $text-muted; }
    SimulationPane Sparkline { width: 1fr; height: 1; }
    SimulationPane #spark-faults > .sparkline--max-color { color: $error; }
    SimulationPane #spark-faults > .sparkline--min-color { color: $warning 30%; }
    SimulationPane #sim-replay { color: $accent; height: 1; text-wrap: nowrap;
                                 text-overflow: ellipsis; }
    SimulationPane #log-filter { height: 1; }
    SimulationPane #sim-log { height: 1fr; border: none; padding: 0; }
    SimulationPane #fault-table { height: 1fr; }
    """

    def __init__(self, session: Session, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.session = session
        self.seed = session.seed
        self.speed = CLOCK_SPEEDS[0]
        self.probabilities = dict.fromkeys(FaultType, SIM_FAULT_PROBABILITY_DEFAULT)
        self.enabled: dict[FaultType, FaultConfig] = {}
        self.simulation: Simulation | None = None
        # The run's records, each with its event-log text (what the filter looks in)
        self.entries: deque[LogEntry] = deque(maxlen=SIM_LOG_KEPT_COUNT_MAX)
        self.ops_per_sec: float | None = None
        self.buckets: dict[int, list[int]] = {}  # simulated minute: [ops, faults]
        self.step_times: list[int] = []  # the scratch store's clock after each step run
        self.faults_changed_mid_run = False
        self._pending: list[LogEntry] = []
        self._faults_total = 0
        self._cancel_wanted = False
        self._run_active = False
        self._simulating = False  # started with space: workload steps run as the clock runs
        self._resources = AsyncExitStack()
        self._replay_shown = ""

    # Layout

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="sim-header")
        with Horizontal(id="sim-controls"):
            for label, ms in (("+1s", 1000), ("+1m", 60_000), ("+1h", 3_600_000)):
                yield Button(label, id=f"step-{ms}", compact=True)
            yield Button("+…", id="step-custom", compact=True)
            yield Button("▶ run", id="toggle-clock", compact=True)
            yield Button(f"{self.speed}×", id="speed", compact=True)
        yield Static("", id="sim-notice")
        with Horizontal(classes="row"):
            yield Label("steps")
            yield PaneInput(str(SIM_STEPS_DEFAULT), id="sim-steps", type="integer",
                            leave_to=lambda: self)
            yield Button("Run", id="run-steps", compact=True)
            yield Button("Cancel", id="cancel-run", compact=True, disabled=True)
            yield ProgressBar(total=SIM_STEPS_DEFAULT, id="sim-progress", show_eta=False)
        with Horizontal(classes="row"):
            yield Label("ops", classes="spark-label")
            yield Sparkline([], id="spark-ops")
            yield Label(" faults", classes="spark-label")
            yield Sparkline([], id="spark-faults")
        yield Static(id="sim-replay")
        with TabbedContent(id="sim-tabs"):
            with TabPane("Log", id="tab-log"):
                yield PaneInput(placeholder="filter the log (working.set, faults=, VIOLATION)",
                                id="log-filter", leave_to=lambda: self.query_one("#sim-log"))
                yield OptionList(id="sim-log")
            with TabPane("Faults", id="tab-faults"):
                yield DataTable(id="fault-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#fault-table", DataTable)
        table.add_column("on", key="on", width=3)
        table.add_column("fault", key="fault")
        table.add_column("p", key="p", width=6)
        table.add_column("fired", key="fired", width=6)
        for fault in FaultType:
            table.add_row("·", str(fault), self._probability_text(fault), "0", key=str(fault))
        for button in self.query("#sim-controls Button"):
            button.disabled = True
            if button.id and button.id.startswith("step-"):
                button.styles.line_pad = 0  # so the row fits 80 columns (CSS refuses 0)
        self._fill()

    @work(group="sim-fill")
    async def _fill(self) -> None:
        """Once the store is ready: its seed, the clock controls (for a sim clock), status."""
        store = await self.session.ready()
        if store.seed is not None:
            self.seed = store.seed
        for button in self.query("#sim-controls Button"):
            button.disabled = self._sim_clock() is None
        self.query_one("#sim-notice", Static).update(self._notice())
        self._show_clock_state()
        self._show_sparklines()
        self._show_status()

    def _sim_clock(self) -> SimClock | None:
        return self.session.sim_clock if self.session.is_ready else None

    def _config(self, steps: int = 0) -> SimulationConfig:
        """The run the console is making: its seed, faults in force and scratch store."""
        store = self.session.store
        url = "sim://" if store.seed is not None else store.url
        faults = tuple(self.enabled[t] for t in FaultType if t in self.enabled)
        return SimulationConfig(self.seed, steps, faults, url)

    def _notice(self) -> str:
        config = self._config()
        if self.session.store.seed is not None:
            where = "in its own sim store"
        else:
            where = "in this store, never the inspected one"
        text = f"Workloads: scratch agent {config.agent}, {where}."
        if self._sim_clock() is None:
            text = "Clock controls off (system clock). " + text
        return text

    # The header: seed, clock, faults, steps, ops/s, violations

    def _show_status(self) -> None:
        if not self.session.is_ready:
            return
        now = self.session.clock.now_ms()
        result = self.simulation.result if self.simulation else None
        steps = result.steps_run if result else 0
        violations = len(result.violations) if result else 0
        rate = "–" if self.ops_per_sec is None else f"{self.ops_per_sec:,.0f}"
        faults = len(self.enabled)
        fault_badge = f"[$warning]⚡{counted(faults, 'fault')} on[/]" if faults \
            else "[$text-muted]no faults[/]"
        violation_badge = f"[b $error]{counted(violations, 'violation')}[/]" if violations \
            else "[$success]0 violations[/]"
        # Both lines have a fixed height: a tick redraws them without a layout pass.
        self.query_one("#sim-header", Static).update(
            f"seed [b]{self.seed}[/] · {format_ms(now)} UTC · {self._clock_state()}\n"
            f"{fault_badge} · steps {steps:,} · {rate} ops/s · {violation_badge}", layout=False)
        replay = self._replay_text()
        if replay != self._replay_shown:
            self._replay_shown = replay
            self.query_one("#sim-replay", Static).update(replay, layout=False)

    def _clock_state(self) -> str:
        if self._sim_clock() is None:
            return "system clock"
        return f"▶ running {self.speed}×" if self._simulating else f"paused ({self.speed}×)"

    def _show_clock_state(self) -> None:
        self.query_one("#toggle-clock", Button).label = "‖ pause" if self._simulating \
            else "▶ run"
        self.query_one("#speed", Button).label = f"{self.speed}×"

    def replay_command(self) -> str:
        steps = self.simulation.result.steps_run if self.simulation else 0
        return self._config(steps).replay_command()

    def _replay_text(self) -> str:
        note = " [$warning](faults changed mid-run: the replay differs)[/]" \
            if self.faults_changed_mid_run else ""
        return f"[$text-muted]replay (y copies):[/] {self.replay_command()}{note}"

    def on_clock_moved(self, message: ClockMoved) -> None:
        self._show_status()
        speed = self.session.clock_speed
        if self._simulating and speed and not self._run_active:
            self.run_workload(speed)  # running: `speed` workload steps each tick, as time flows

    # Clock

    def action_step_clock(self, ms: int) -> None:
        clock = self._sim_clock()
        if clock is None:
            self.notify("This store runs on the system clock; open a sim:// store to step it.",
                        severity="warning")
            return
        while ms > 0:
            chunk = min(ms, DST_TIME_ADVANCE_MS_MAX)
            clock.advance(chunk)
            ms -= chunk
        self.session.clock_moved()

    def action_step_custom(self) -> None:
        if self._sim_clock() is None:
            self.action_step_clock(0)
            return

        async def apply(text: str) -> None:
            self.action_step_clock(parse_duration(text, ms_max=CLOCK_STEP_MS_MAX))

        self.app.push_screen(PromptScreen("Step the clock", "Advance the simulated clock by "
                                          "(90s, 5m, 2h, 1d):", "10m", apply))

    def action_toggle_clock(self) -> None:
        if self._sim_clock() is None:
            self.action_step_clock(0)
            return
        self._simulating = not self._simulating  # a clock that follows real time is not a run
        self.session.clock_speed = self.speed if self._simulating else 0
        self._show_clock_state()
        self._show_status()

    def _pause_on_violation(self) -> None:
        if self._simulating:
            self._simulating = False
            self.session.clock_speed = 0
            self._show_clock_state()
            self.notify("Paused at a violation; v jumps to it.", title="Simulation",
                        severity="error")

    def action_next_speed(self) -> None:
        self.speed = CLOCK_SPEEDS[(CLOCK_SPEEDS.index(self.speed) + 1) % len(CLOCK_SPEEDS)]
        if self._simulating:
            self.session.clock_speed = self.speed
        self._show_clock_state()
        self._show_status()

    @on(Button.Pressed, "#sim-controls Button")
    def _clock_button(self, event: Button.Pressed) -> None:
        event.stop()
        name = event.button.id or ""
        if name == "step-custom":
            self.action_step_custom()
        elif name == "toggle-clock":
            self.action_toggle_clock()
        elif name == "speed":
            self.action_next_speed()
        else:
            self.action_step_clock(int(name.removeprefix("step-")))

    # Faults

    def _probability_text(self, fault: FaultType) -> str:
        return f"{self.probabilities[fault]:g}"

    def _selected_fault(self) -> FaultType:
        table = self.query_one("#fault-table", DataTable)
        return list(FaultType)[table.cursor_row]

    def set_fault(self, fault: FaultType, on: bool, probability: float | None = None) -> None:
        """Turn one fault type on or off (at a probability); the running simulation sees it."""
        if probability is not None:
            FaultConfig(fault, probability)  # refuses a bad probability before changing anything
            self.probabilities[fault] = probability
        injector = self.simulation.injector if self.simulation else None
        if on:
            self.enabled[fault] = FaultConfig(fault, self.probabilities[fault])
            if injector is not None:
                injector.set_config(self.enabled[fault])
        else:
            self.enabled.pop(fault, None)
            if injector is not None:
                injector.remove(fault)
        if self.simulation is not None and self.simulation.result.steps_run:
            self.faults_changed_mid_run = True
        table = self.query_one("#fault-table", DataTable)
        table.update_cell(str(fault), "on", "●" if on else "·")
        table.update_cell(str(fault), "p", self._probability_text(fault))
        self._show_status()

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#sim-tabs", TabbedContent).active = tab
        self.query_one("#log-filter" if tab == "tab-log" else "#fault-table").focus()

    def _faults_shown(self) -> bool:
        """True when the fault table is in view; otherwise brings it into view first."""
        if self.query_one("#sim-tabs", TabbedContent).active == "tab-faults":
            return True
        self.action_show_tab("tab-faults")
        return False

    def action_toggle_fault(self) -> None:
        if not self._faults_shown():
            return
        fault = self._selected_fault()
        self.set_fault(fault, fault not in self.enabled)

    def action_fault_probability(self) -> None:
        if not self._faults_shown():
            return
        fault = self._selected_fault()

        async def apply(text: str) -> None:
            try:
                probability = float(text)
            except ValueError:
                raise ValueError(f"expected a number between 0 and 1, got {text!r}") from None
            self.set_fault(fault, True, probability)

        self.app.push_screen(PromptScreen(f"Probability of {fault}", "Fire on each operation "
                                          "it targets with probability (0 to 1):",
                                          self._probability_text(fault), apply))

    @on(DataTable.RowSelected, "#fault-table")
    def _fault_selected(self, event: DataTable.RowSelected) -> None:
        self.action_toggle_fault()

    def _show_fault_counts(self) -> None:
        if self.simulation is None:
            return
        table = self.query_one("#fault-table", DataTable)
        fired = self.simulation.result.faults
        for fault in FaultType:
            table.update_cell(str(fault), "fired", str(fired[str(fault)]))

    # Workload runs

    def action_run_steps(self) -> None:
        try:
            steps = parse_steps(self.query_one("#sim-steps", Input).value)
        except ValueError as error:
            self.notify(str(error), title="Run", severity="error")
            return
        self.run_workload(steps)

    def action_cancel_run(self) -> None:
        self._cancel_wanted = True

    @on(Button.Pressed, "#run-steps")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run_steps()

    @on(Button.Pressed, "#cancel-run")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel_run()

    @on(Input.Submitted, "#sim-steps")
    def _steps_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run_steps()

    async def _opened(self) -> Simulation:
        """The simulation of the current seed, opened on its scratch store (once)."""
        if self.simulation is None:
            store = await self.session.ready()
            if store.seed is None and self._config().agent == store.agent:
                raise InvalidInputError(f"the scratch agent {store.agent} is the agent being "
                                        "inspected; N picks another seed")
            simulation = Simulation(self._config(), records=self._take_record)
            await self._resources.enter_async_context(simulation.opened())
            self.simulation = simulation
        return self.simulation

    async def _close(self) -> None:
        await self._resources.aclose()
        self._resources = AsyncExitStack()
        self.simulation = None

    def _busy(self) -> bool:
        if self._run_active:
            self.notify("A workload run is going; k cancels it.", title="Run", severity="warning")
        return self._run_active

    @work(group="sim-run", exit_on_error=False)
    async def run_workload(self, steps: int) -> None:
        """Run `steps` more workload steps of the current simulation."""
        if not self._busy():
            await self._run(steps)

    async def _run(self, steps: int) -> None:
        """Each step checked against the model, the whole store once more at the end; steps
        run in slices of SIM_RUN_SLICE_SECS, after each of which the bar, log and header
        catch up and the loop gets the thread back (keys answer, a cancel gets through)."""
        self._run_active, self._cancel_wanted = True, False
        bar = self.query_one("#sim-progress", ProgressBar)
        bar.update(total=steps, progress=0)
        self.query_one("#cancel-run", Button).disabled = False
        done = 0
        started = self.perf_counter()
        wall_started = perf_counter()
        log_due = wall_started + SIM_RUN_LOG_REFRESH_SECS
        try:
            simulation = await self._opened()
            violation = None
            while done < steps and not self._cancel_wanted and violation is None:
                slice_ends = perf_counter() + SIM_RUN_SLICE_SECS
                while done < steps and violation is None and \
                        (done % SIM_RUN_CLOCK_READ_EVERY_STEPS or perf_counter() < slice_ends):
                    violation = await simulation.step(simulation.workload.next_op())
                    done += 1
                    self._count_step(simulation)
                if done < steps and violation is None:
                    now = perf_counter()
                    if now >= log_due:  # the log costs most to redraw: less often
                        self._flush_log(SIM_RUN_LOG_SHOWN_COUNT_MAX)
                        log_due = now + SIM_RUN_LOG_REFRESH_SECS
                    self._show_progress(bar, done, done / (now - wall_started))
                    await asyncio.sleep(SIM_RUN_YIELD_SECS)  # the screen redraws, keys are handled
            if violation is None and not self._cancel_wanted:
                violation = await simulation.check_all()
            if violation is not None:
                self._pause_on_violation()
        except UmiError as error:
            report_error(self, "run the workload", error)
        finally:
            self._run_active = False
            elapsed = self.perf_counter() - started
            if done:
                self.ops_per_sec = done / elapsed if elapsed > 0 else None
            bar.update(progress=done)
            self.query_one("#cancel-run", Button).disabled = True
            self._flush_log()
            self._show_fault_counts()
            self._show_status()
        if self._cancel_wanted:
            self.notify(f"Cancelled after {done:,} of {steps:,} steps.", title="Run")

    def _show_progress(self, bar: ProgressBar, done: int, steps_per_sec: float) -> None:
        """Mid-run: the bar and the header with the live rate."""
        bar.update(progress=done)
        self.ops_per_sec = steps_per_sec
        self._show_status()

    def workload(self) -> tuple[Store, list[int]] | None:
        """The scratch store of the steps run so far, and its clock after each step (for
        the timeline to step through), or None before any step ran."""
        store = self.simulation.store if self.simulation else None
        return (store, self.step_times) if store is not None and self.step_times else None

    def _count_step(self, simulation: Simulation) -> None:
        self.step_times.append(simulation.clock.now_ms())
        minute = simulation.clock.now_ms() // SPARK_BUCKET_MS
        fired = sum(simulation.result.faults.values())
        bucket = self.buckets.setdefault(minute, [0, fired])
        bucket[0] += 1
        self._faults_total = fired
        if len(self.buckets) > SPARK_BUCKETS_COUNT_MAX:
            del self.buckets[next(iter(self.buckets))]

    def _spark_data(self) -> tuple[list[int], list[int]]:
        ops = [bucket[0] for bucket in self.buckets.values()]
        starts = [bucket[1] for bucket in self.buckets.values()]
        ends = starts[1:] + [self._faults_total]
        return ops, [end - start for start, end in zip(starts, ends)]

    # The event log

    def _take_record(self, record: RunRecord) -> None:
        self._pending.append(LogEntry(record, record.line()))

    def _flush_log(self, shown_count_max: int = SIM_LOG_SHOWN_COUNT_MAX) -> None:
        """The pending entries into the log, which keeps the last `shown_count_max` shown."""
        pending, self._pending = self._pending, []
        self.entries.extend(pending)
        wanted = self.query_one("#log-filter", Input).value
        log = self.query_one("#sim-log", OptionList)
        shown = [entry for entry in pending if entry.matches(wanted)]
        if log.option_count + len(shown) > shown_count_max:
            log.set_options([entry.option() for entry in self.shown_entries(shown_count_max)])
        else:
            log.add_options([entry.option() for entry in shown])
        self._show_sparklines()

    def _show_sparklines(self) -> None:
        """Operations and faults per simulated minute; no fault line until a fault fires."""
        ops, faults = self._spark_data()
        self.query_one("#spark-ops", Sparkline).data = ops
        spark_faults = self.query_one("#spark-faults", Sparkline)
        spark_faults.data = faults
        spark_faults.visible = any(faults)

    def shown_entries(self, count_max: int = SIM_LOG_SHOWN_COUNT_MAX) -> list[LogEntry]:
        """The log entries the filter lets through (the last `count_max`)."""
        wanted = self.query_one("#log-filter", Input).value
        newest = itertools.islice((entry for entry in reversed(self.entries)
                                   if entry.matches(wanted)), count_max)
        return list(newest)[::-1]

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        log = self.query_one("#sim-log", OptionList)
        log.clear_options()
        log.add_options([entry.option() for entry in self.shown_entries()])

    def action_next_violation(self) -> None:
        shown = self.shown_entries()
        log = self.query_one("#sim-log", OptionList)
        start = -1 if log.highlighted is None else log.highlighted
        violations = [i for i, entry in enumerate(shown) if entry.is_violation]
        later = [i for i in violations if i > start]
        earlier = [i for i in violations if i <= start]
        if not later and not earlier:
            self.notify("No violation in the log.", title="Violations")
            return
        self.query_one("#sim-tabs", TabbedContent).active = "tab-log"
        log.highlighted = (later or earlier)[0]
        log.focus()

    # Replay, new seed, reproduce

    async def _reset(self, seed: int) -> None:
        await self._close()
        self.seed = seed
        self.entries.clear()
        self._pending, self.buckets, self.step_times = [], {}, []
        self._faults_total = 0
        self.ops_per_sec = None
        self.faults_changed_mid_run = False
        self.query_one("#sim-log", OptionList).clear_options()
        self.query_one("#sim-progress", ProgressBar).update(progress=0)
        self.query_one("#sim-notice", Static).update(self._notice())
        self._flush_log()
        for fault in FaultType:
            self.query_one("#fault-table", DataTable).update_cell(str(fault), "fired", "0")
        self._show_status()

    def action_replay(self) -> None:
        steps = self.simulation.result.steps_run if self.simulation else 0

        async def apply(text: str) -> None:
            self.replay_to(parse_steps(text))

        self.app.push_screen(PromptScreen("Replay", f"Reset to seed {self.seed} and run to "
                                          "step:", str(steps or SIM_STEPS_DEFAULT), apply))

    @work(group="sim-run", exit_on_error=False)
    async def replay_to(self, steps: int) -> None:
        """Start over from the seed (faults as now) and run `steps` steps."""
        if not self._busy():
            await self._reset(self.seed)
            await self._run(steps)

    @work(group="sim-run", exit_on_error=False)
    async def action_new_seed(self) -> None:
        if self._busy():
            return
        seed = next_seed(self.seed)
        assert 0 <= seed <= SIM_SEED_MAX
        await self._reset(seed)
        self.notify(f"New seed {seed}; replay with --seed {seed}", title="Simulation")

    def action_copy_command(self) -> None:
        command = self.replay_command()
        self.app.copy_to_clipboard(command)
        url = self._config().url
        if url_without_password(url) != url:
            command += ("\nThe password is left out of the URL: it is read from PGPASSWORD "
                        "or ~/.pgpass, as psql does.")
        self.notify(command, title="Copied the replay command", markup=False)

    async def on_unmount(self) -> None:
        await self._resources.aclose()

