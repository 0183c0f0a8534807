"""The umi-tui App: lays out the four panes at once, then opens the store (its Session),
ticks the clock, follows the change feed, and routes both down to the panes. Thin: each
pane does its own work, and fills itself when the store is ready."""

from __future__ import annotations

import asyncio
import getpass
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from typing import ClassVar
from collections.abc import Iterable

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Input, Label
from textual.widgets._header import HeaderTitle

from umi_store import ChangeEvent, FaultInjector, SimClock, Store, UmiError, mask_url
from umi_store.store import default_actor
from umi_store.dst.clock import Clock

from .demo import seed_demo
from .feedback import report_error
from .messages import ClockMoved, StoreChanged, ViewChanged
from .panes.archival import ArchivalPane
from .formatting import format_ms
from .panes.core import CorePane
from .panes.simulation import SimulationPane
from .panes.working import WorkingPane
from .screens.agents import AgentSwitcherScreen
from .screens.help import HelpScreen
from .session import Session
from .settings import Settings, config_dir
from .theming import SHIPPED_THEMES_DIR, load_themes
from .widgets.footer import KeyFooter
from .widgets.timeline import Timeline

CLOCK_TICK_SECS = 1.0
TIMELINE_SETTLE_SECS = 0.15  # the panes read as of the cursor once it rests this long
TIMELINE_PAGE_RECORDS_COUNT_MAX = 10_000  # history_since answers at most this many at once
TIMELINE_RECORDS_COUNT_MAX = 200_000  # the timeline reads no more changes than this


def person_actor() -> str:
    """Who the inspector's writes are attributed to in history: the person at the keys."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"person:{login}"


@dataclass(frozen=True)
class PaneSpec:
    name: str
    title: str
    key: str
    pane_class: type[CorePane | WorkingPane | ArchivalPane | SimulationPane]


PANES = (PaneSpec("core", "Core", "1", CorePane),
         PaneSpec("working", "Working", "2", WorkingPane),
         PaneSpec("archival", "Archival", "3", ArchivalPane),
         PaneSpec("simulation", "Simulation", "4", SimulationPane))
# The panes that show the inspected agent's memory (the Simulation pane has its own agent).
AGENT_PANE_NAMES = ("core", "working", "archival")
AS_OF_FRAME_IDS = tuple(f"{name}-frame" for name in AGENT_PANE_NAMES)


class PaneFrame(Container):
    """The bordered, titled, maximisable frame around one pane."""

    ALLOW_MAXIMIZE = True


def bindings_by_action(bindings: Iterable[BindingType]) -> list[tuple[list[Binding], str]]:
    """Described bindings, keys of one action together: [([up, k], "Previous block"), …]."""
    described = [b for b in Binding.make_bindings(bindings) if b.description]
    return [(list(group), action.split("|")[1]) for action, group in
            groupby(described, key=lambda b: f"{b.action}|{b.description}")]


class UmiApp(App[None]):
    """Inspect one agent's memory in one store."""

    CSS_PATH = "app.tcss"
    TITLE = "umi"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(spec.key, f"focus_pane('{spec.name}')", f"Focus the {spec.title} pane",
                  show=False)
          for spec in PANES),
        Binding("f1,question_mark", "help", "Help"),
        Binding("z", "toggle_maximize", "Maximise"),
        Binding("escape", "restore", "Restore the maximised pane", show=False),
        Binding("ctrl+t", "next_theme", "Next theme"),
        Binding("a", "switch_agent", "Switch agent"),
        Binding("T", "timeline", "Timeline (as of)"),
        Binding("q", "quit", "Quit"),
    ]

    ESCAPE_TO_MINIMIZE = False  # Esc leaves a search box first; the app's binding restores

    connection: reactive[str] = reactive("connecting", init=False)

    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 faults: FaultInjector | None = None, follow_wall_clock: bool = True) -> None:
        """`clock`/`faults` go to open_store; `follow_wall_clock` runs a sim clock in real time
        (speed 1×); the Simulation pane changes `clock_speed` (0 pauses it)."""
        super().__init__()
        self.settings = settings
        self.url = settings.store_url()
        self.session = Session(self.url, agent=settings.agent, clock=clock, faults=faults,
                               clock_speed=1 if follow_wall_clock else 0, seed=settings.seed,
                               actor=person_actor())
        self.session.on_clock_moved(self._tell_panes_the_time)
        self._last_focus: dict[str | None, Widget] = {}
        self._theme_names: list[str] = []
        self._panes: list[Widget] = []
        self._timeline: Timeline | None = None
        self._theme_problems = self._register_themes()  # before the CSS is first built
        self.open_error: UmiError | None = None  # why the store could not be opened
        self._workload: Store | None = None  # the timeline steps the Simulation's scratch store

    # Layout

    @property
    def store(self) -> Store:
        """The open store (once the session is ready)."""
        return self.session.store

    @property
    def clock_speed(self) -> int:
        return self.session.clock_speed

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Container(id="panes"):
            for spec in PANES:
                with PaneFrame(id=f"{spec.name}-frame"):
                    yield spec.pane_class(self.session, id=spec.name)
        yield Timeline(id="timeline")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._timeline = self.query_one(Timeline)  # kept: a tick may come as the app closes
        for problem in self._theme_problems:
            self.notify(problem, title="Theme", severity="warning")
        for spec in PANES:
            self.query_one(f"#{spec.name}-frame").border_title = f"{spec.key} {spec.title}"
        self.action_focus_pane("core")
        self._show_header()
        self.call_after_refresh(self.start)  # the panes' frames first, then the store

    def _register_themes(self) -> list[str]:
        """Register the shipped and the user's themes and pick the wanted one; the problems
        to tell the user once the app runs."""
        themes, problems = load_themes(SHIPPED_THEMES_DIR, config_dir() / "themes")
        for theme in themes:
            self.register_theme(theme)
        self._theme_names = [theme.name for theme in themes]
        wanted = self.settings.theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.theme = "umi-dark"
            problems.append(f"unknown theme {wanted!r}; available: "
                            f"{', '.join(sorted(self.available_themes))}")
        return problems

    def panes(self) -> list[Widget]:
        """The panes (each waits for the store to be ready before it fills itself)."""
        if not self._panes:  # looked up once: a tick sends to them every second
            self._panes = [pane for spec in PANES for pane in self.query(f"#{spec.name}")]
        return self._panes

    # The store: open once, seed the demo, then follow the clock and the change feed

    @work(group="store-open", exit_on_error=False)
    async def start(self) -> None:
        fill = self._seed_demo if self.settings.demo else None
        try:
            await self.session.open(fill)
        except UmiError as error:
            await self._show_unavailable(error)
            return
        self.connection = "connected"
        self.set_interval(CLOCK_TICK_SECS, self.tick)
        self.follow_changes()

    async def _seed_demo(self, store: Store) -> None:
        self.connection = "seeding demo"
        try:
            # the demo plays the agent's own writes
            await seed_demo(store.as_actor(default_actor(store.agent)), self.settings.seed)
        except UmiError as error:
            report_error(self, "seed the demo dataset", error)

    async def _show_unavailable(self, error: UmiError) -> None:
        self.open_error = error
        self.connection = "unavailable"
        panes = self.query_one("#panes")
        for frame in panes.query(PaneFrame):
            frame.display = False
        for pane in self.panes():
            self.workers.cancel_node(pane)  # they wait for a store that will not come
        await panes.mount(Vertical(Label(Text(f"{error}\n\nq quits."), id="loading-text"),
                                   id="loading"))

    async def on_unmount(self) -> None:
        await self.session.close()

    def tick(self) -> None:
        """Once a second: a sim clock runs at `clock_speed` × real time; every pane hears it."""
        self.session.tick()

    def clock_moved(self) -> None:
        """Tell every pane the time; also call this after moving the sim clock by hand."""
        self.session.clock_moved()

    def _tell_panes_the_time(self, now_ms: int) -> None:
        for pane in self._live_panes():
            pane.post_message(ClockMoved(now_ms))
        self.timeline.clock_moved(now_ms)
        self._show_header()

    def _live_panes(self) -> list[Widget]:
        """The panes that follow the live clock and feed: as of a past instant, the agent's
        panes stand still (nothing in the past changes)."""
        if self.session.as_of_ms is None:
            return self.panes()
        return [pane for pane in self.panes() if pane.id not in AGENT_PANE_NAMES]

    @work(group="store-changes", exit_on_error=False)
    async def follow_changes(self) -> None:
        def deliver(event: ChangeEvent) -> None:
            for pane in self._live_panes():
                pane.post_message(StoreChanged(event))
            if self.timeline.loaded:
                self.timeline.add_change(event.at_ms, event.actor)
        try:
            await self.session.follow_changes(deliver)
        except UmiError as error:
            self.connection = "change feed lost"
            report_error(self, "follow changes", error)

    # The header: URL (password masked), agent, clock, connection

    def watch_connection(self) -> None:
        self._show_header()

    def _show_header(self) -> None:
        agent = self.session.store.agent if self.session.is_ready else self.settings.agent
        parts = [mask_url(self.url), f"agent {agent}"]
        if self.session.is_ready:
            clock = self.session.clock
            kind = "sim" if isinstance(clock, SimClock) else "UTC"
            parts.append(f"{format_ms(clock.now_ms())} {kind}")
        parts.append(f"● {self.connection}")
        sub_title = " · ".join(parts)
        if sub_title == self.sub_title:
            return
        # Setting sub_title repaints the whole screen (App.refresh), every second a tick
        # shows the clock; set it quietly and redraw only the header's title line.
        self.set_reactive(UmiApp.sub_title, sub_title)
        for header in self.screen_stack[0].query(Header):
            header.query_one(HeaderTitle).update(header.format_title(), layout=False)

    # Actions

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for ancestor in event.widget.ancestors_with_self:
            if isinstance(ancestor, PaneFrame):
                self._last_focus[ancestor.id] = event.widget

    def action_focus_pane(self, name: str) -> None:
        frames = self.query(f"#{name}-frame")
        if not frames:
            return
        frame = frames.first()
        remembered = self._last_focus.get(frame.id)
        if remembered is not None and remembered.is_attached and \
                not isinstance(remembered, Input):  # the number key is for the pane's keys
            remembered.focus()
            return
        frame.query_one(f"#{name}").focus()  # each pane focuses where its bindings act

    def focused_frame(self) -> PaneFrame | None:
        focused = self.screen.focused
        if focused is None:
            return None
        return next((node for node in focused.ancestors_with_self
                     if isinstance(node, PaneFrame)), None)

    def action_toggle_maximize(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        frame = self.focused_frame()
        if frame is not None:
            self.screen.maximize(frame, container=False)

    def action_restore(self) -> None:
        self.screen.minimize()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc restores a maximised pane; otherwise it is left to whatever else wants it."""
        return action != "restore" or self.screen.maximized is not None

    def action_next_theme(self) -> None:
        names = self._theme_names or sorted(self.available_themes)
        index = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[index % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def action_switch_agent(self) -> None:
        if self.session.is_ready and not isinstance(self.screen, AgentSwitcherScreen):
            self.push_screen(AgentSwitcherScreen(self.store.agent, self.store.agents),
                             self.switch_agent)

    async def switch_agent(self, agent: str | None) -> None:
        """Show `agent`'s memory in every pane, on the same open store (no restart)."""
        if agent is None or not self.session.is_ready or agent == self.store.agent:
            return
        self.close_timeline()
        try:
            self.session.switch_agent(agent)
        except UmiError as error:
            report_error(self, f"switch to agent {agent!r}", error)
            return
        self.workers.cancel_group(self, "store-changes")
        for spec in PANES:
            if spec.name in AGENT_PANE_NAMES:
                frame = self.query_one(f"#{spec.name}-frame", PaneFrame)
                await frame.remove_children()
                await frame.mount(spec.pane_class(self.session, id=spec.name))
        self._panes = []  # the panes are new: look them up again
        self.follow_changes()
        self._show_header()
        self.action_focus_pane("core")
        self.notify(f"Now inspecting agent {agent}", timeout=3)

    # The timeline: T shows it, its cursor puts the agent's panes as of an instant

    @property
    def timeline(self) -> Timeline:
        assert self._timeline is not None, "the timeline is composed before any tick"
        return self._timeline

    def action_timeline(self) -> None:
        """Show the timeline (and focus it); when shown, close it and go live."""
        if not self.session.is_ready:
            self.notify("The store is not open yet.", severity="warning")
            return
        timeline = self.timeline
        if timeline.display:
            self.close_timeline()
            self.notify("Live: the panes show memory as it is now.", timeout=3)
            return
        timeline.display = True
        timeline.focus()
        self.load_timeline()

    def close_timeline(self) -> None:
        timeline = self.timeline
        if not timeline.display:
            return
        timeline.go_live()
        timeline.display = False
        self._show_as_of(None)
        self._workload = None
        self.action_focus_pane("core")

    @work(exclusive=True, group="timeline-load", exit_on_error=False)
    async def load_timeline(self) -> None:
        """Every change of the agent (oldest first, in pages), onto the timeline; or of the
        Simulation's scratch agent, with the clock after each workload step."""
        store = self._workload or await self.session.ready_live()
        steps = self._workload_steps()
        changes: list[tuple[int, str]] = []
        since = -1
        try:
            while len(changes) < TIMELINE_RECORDS_COUNT_MAX:
                page = await store.history_since(since, limit=TIMELINE_PAGE_RECORDS_COUNT_MAX)
                changes += [(record.at_ms, record.actor) for record in page]
                if len(page) < TIMELINE_PAGE_RECORDS_COUNT_MAX:
                    break
                since = page[-1].at_ms  # (changes sharing this last ms may be cut)
        except UmiError as error:
            report_error(self, "read the history", error)
        self.timeline.show_changes(changes, store.clock.now_ms(), steps, store.agent)

    def _workload_steps(self) -> list[int]:
        workload = self.query_one(SimulationPane).workload() if self._workload else None
        return list(workload[1]) if workload else []

    def on_timeline_workload_toggled(self) -> None:
        """`w` on the timeline: step through the Simulation pane's workload run (its scratch
        agent in every pane), or back to the inspected agent."""
        if self._workload is None:
            workload = self.query_one(SimulationPane).workload()
            if workload is None:
                self.notify("Run workload steps in the Simulation pane first (4, then r); "
                            "w on the timeline then steps through them.", severity="warning")
                return
            store = workload[0]
        else:
            store = None
        self.timeline.go_live()
        self._show_as_of(None)
        self._workload = store
        self.load_timeline()

    def on_timeline_moved(self, message: Timeline.Moved) -> None:
        self._settle_timeline(message.at_ms)

    @work(exclusive=True, group="timeline-settle", exit_on_error=False)
    async def _settle_timeline(self, at_ms: int | None) -> None:
        """Once the cursor rests: every agent pane reads memory as of it."""
        await asyncio.sleep(TIMELINE_SETTLE_SECS)
        self._show_as_of(at_ms)

    def _show_as_of(self, at_ms: int | None) -> None:
        if at_ms == self.session.as_of_ms:
            return
        self.session.show_as_of(at_ms, self._workload)
        whose = f"{self.session.shown_agent} " if self._workload else ""
        for pane in self.panes():
            if pane.id in AGENT_PANE_NAMES:
                pane.post_message(ViewChanged())
        for frame in self.query(PaneFrame):
            if frame.id in AS_OF_FRAME_IDS:
                frame.set_class(at_ms is not None, "-as-of")
                frame.border_subtitle = "" if at_ms is None else \
                    f"{whose}as of {format_ms(at_ms)}"
        self._show_header()

    def help_sections(self) -> list[tuple[str, list[tuple[list[Binding], str]]]]:
        """Every described binding: the app's, then each pane's."""
        sections = [("App", bindings_by_action([*App.BINDINGS, *self.BINDINGS]))]
        sections += [(f"{spec.key} {spec.title} pane", bindings_by_action(spec.pane_class.BINDINGS))
                     for spec in PANES]
        return sections

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, then one for every action of the app and of each pane."""
        yield from super().get_system_commands(screen)
        for bindings, description in bindings_by_action(self.BINDINGS):
            keys = ", ".join(self.get_key_display(b) for b in bindings)
            yield SystemCommand(description, f"key {keys}",
                                partial(self.run_action, bindings[0].action))
        for spec in PANES:
            for bindings, description in bindings_by_action(spec.pane_class.BINDINGS):
                keys = ", ".join(self.get_key_display(b) for b in bindings)
                yield SystemCommand(f"{spec.title}: {description}", f"key {keys} in the "
                                    f"{spec.title} pane",
                                    partial(self.run_pane_action, spec.name, bindings[0].action))

    async def run_pane_action(self, name: str, action: str) -> None:
        """Focus pane `name` and run one of its actions, as if its key were pressed there."""
        panes = self.query(f"#{name}")
        if not panes:
            return
        self.action_focus_pane(name)
        await self.run_action(action, panes.first())
