"""The Simulation pane: for now the seed and the simulated clock (the console: issue 6)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Label

from ..messages import ClockMoved
from .core import format_ms


class SimulationPane(Widget, can_focus=True):
    DEFAULT_CSS = """
    SimulationPane { layout: vertical; }
    SimulationPane Label { width: 1fr; }
    SimulationPane #sim-note { color: $text-muted; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        store = self.app.store
        seed = "none (not a simulated store)" if store.seed is None else str(store.seed)
        yield Label(f"seed   {seed}", id="sim-seed")
        yield Label(self._clock_text(store.clock.now_ms()), id="sim-clock")
        yield Label("Stepping the clock, faults and workloads arrive with the simulation "
                    "console.", id="sim-note")

    def _clock_text(self, now_ms: int) -> str:
        kind = "simulated" if self.app.store.seed is not None else "system"
        return f"clock  {format_ms(now_ms)} UTC ({kind})"

    def on_clock_moved(self, message: ClockMoved) -> None:
        self.query_one("#sim-clock", Label).update(self._clock_text(message.now_ms))
