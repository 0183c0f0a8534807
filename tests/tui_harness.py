"""A tiny App that hosts one pane over a Session, as the real app does: the session opens
the store (filled by `seed`) before the pane mounts, follows the change feed into
StoreChanged, and says when the clock moved (ClockMoved). Tests drive the rest via Pilot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.app import App, ComposeResult
from textual.widget import Widget

from umi_store import ChangeEvent, FaultInjector, SimClock, Store
from umi_tui.messages import ClockMoved, StoreChanged
from umi_tui.session import Session

Seed = Callable[[Store], Awaitable[None]]


class PaneHarness(App[None]):
    """Hosts `make_pane(session)` over the store at `url`, filled by `seed` before it mounts."""

    CSS = "Screen { layout: vertical; }"
    AUTO_FOCUS = "DataTable"

    def __init__(self, make_pane: Callable[[Session], Widget], *, url: str = "sim://?seed=7",
                 seed: Seed | None = None, faults: FaultInjector | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self.clock = SimClock()
        self.session = Session(url, agent="harness", clock=self.clock, faults=faults)
        self.session.on_clock_moved(lambda now_ms: self.pane.post_message(ClockMoved(now_ms)))
        self._make_pane = make_pane
        self._seed = seed
        self.pane: Widget = Widget()

    @property
    def store(self) -> Store:
        return self.session.store

    async def on_load(self) -> None:
        await self.session.open(self._seed)
        self.run_worker(self.session.follow_changes(self._deliver), group="store-changes")

    def _deliver(self, event: ChangeEvent) -> None:
        self.pane.post_message(StoreChanged(event))

    def compose(self) -> ComposeResult:
        self.pane = self._make_pane(self.session)
        yield self.pane

    def advance(self, ms: int) -> None:
        """Move the store clock by `ms` and tell the pane."""
        self.clock.advance(ms)
        self.session.clock_moved()

    async def on_unmount(self) -> None:
        await self.session.close()
