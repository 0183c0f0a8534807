"""The agent switcher: every agent in the store, with its counts and last change, filtered
fuzzily as you type; enter switches to the highlighted one (or to the name typed, when no
agent matches it: a new, empty agent)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from umi_store import AgentSummary, UmiError

from ..panes.core import format_ms

AgentLoader = Callable[[], Awaitable[list[AgentSummary]]]


def ranked(agents: list[AgentSummary], query: str) -> list[AgentSummary]:
    """The agents matching `query` fuzzily, best match first (all of them, in name order,
    for an empty query)."""
    if not query:
        return agents
    matcher = Matcher(query)
    scored = [(matcher.match(summary.agent), summary) for summary in agents]
    return [summary for score, summary in sorted(scored, key=lambda pair: -pair[0]) if score > 0]


class AgentSwitcherScreen(ModalScreen[str | None]):
    """Dismisses with the chosen agent's name, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("down", "move(1)", "Next agent", show=False),
                Binding("up", "move(-1)", "Previous agent", show=False)]
    DEFAULT_CSS = """
    AgentSwitcherScreen { align: center middle; }
    AgentSwitcherScreen > Vertical { width: 84; height: 24; border: thick $primary;
                                     background: $surface; padding: 0 1; }
    AgentSwitcherScreen DataTable { height: 1fr; }
    AgentSwitcherScreen #status { color: $text-muted; height: 1; }
    """

    def __init__(self, current: str, load: AgentLoader) -> None:
        super().__init__()
        self.current = current
        self.load = load
        self.agents: list[AgentSummary] = []
        self.shown: list[AgentSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical() as frame:
            frame.border_title = "Switch agent"
            frame.border_subtitle = "type to filter · ↑↓ choose · enter switch · esc cancel"
            yield Label(f"Now: {self.current}")
            yield Input(placeholder="agent name", id="filter")
            table: DataTable[str] = DataTable(cursor_type="row", id="agents")
            table.add_columns("agent", "blocks", "keys", "entities", "last change")
            yield table
            yield Static("Loading agents…", id="status")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()
        self.fetch()

    @work(exclusive=True, group="agent-list", exit_on_error=False)
    async def fetch(self) -> None:
        try:
            self.agents = await self.load()
        except UmiError as error:
            self.query_one("#status", Static).update(f"Cannot list agents: {error}")
            return
        self.show(self.query_one("#filter", Input).value)

    def show(self, query: str) -> None:
        self.shown = ranked(self.agents, query.strip())
        table = self.query_one("#agents", DataTable)
        table.clear()
        for summary in self.shown:
            marker = "● " if summary.agent == self.current else "  "
            table.add_row(marker + summary.agent, str(summary.blocks), str(summary.keys),
                          str(summary.entities), format_ms(summary.last_change_at),
                          key=summary.agent)
        status = f"{len(self.shown)} of {len(self.agents)} agents"
        if query.strip() and not self.shown:
            status = f"No agent matches; enter opens a new agent {query.strip()!r}"
        self.query_one("#status", Static).update(status)

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.show(event.value)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        table = self.query_one("#agents", DataTable)
        if self.shown:
            self.dismiss(self.shown[min(table.cursor_row, len(self.shown) - 1)].agent)
        elif event.value.strip():
            self.dismiss(event.value.strip())

    @on(DataTable.RowSelected, "#agents")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_move(self, rows: int) -> None:
        table = self.query_one("#agents", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + rows))

    def action_cancel(self) -> None:
        self.dismiss(None)
