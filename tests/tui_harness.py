"""A tiny App that hosts one pane over a store, as the real app would: it opens the
store before the pane mounts, forwards the change feed as StoreChanged, and moves a
SimClock on request, sending ClockMoved. Tests drive everything else through Pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from textual.app import App, ComposeResult
from textual.widget import Widget

from umi_store import SimClock, Store, open_store
from umi_tui.messages import ClockMoved, StoreChanged

Seed = Callable[[Store], Awaitable[None]]


class PaneHarness(App):
    """Hosts `make_pane()` over the store at `url`, filled by `seed` before the pane mounts."""

    CSS = "Screen { layout: vertical; }"
    AUTO_FOCUS = "DataTable"

    def __init__(self, make_pane: Callable[[], Widget], *, url: str = "sim://?seed=7",
                 seed: Seed | None = None, **open_options) -> None:
        super().__init__()
        self.animation_level = "none"
        self.clock = SimClock()
        self.store: Store | None = None
        self._make_pane = make_pane
        self._url = url
        self._seed = seed
        self._open_options = open_options
        self._stack = AsyncExitStack()
        self._feed: asyncio.Task | None = None
        self.pane: Widget | None = None

    async def on_load(self) -> None:
        self.store = await self._stack.enter_async_context(
            open_store(self._url, agent="harness", clock=self.clock, **self._open_options))
        if self._seed is not None:
            await self._seed(self.store)
        self._feed = asyncio.create_task(self._follow_changes())

    def compose(self) -> ComposeResult:
        self.pane = self._make_pane()
        yield self.pane

    async def _follow_changes(self) -> None:
        async for event in self.store.changes():
            self.pane.post_message(StoreChanged(event))

    def advance(self, ms: int) -> None:
        """Move the store clock by `ms` and tell the pane."""
        self.clock.advance(ms)
        self.pane.post_message(ClockMoved(self.clock.now_ms()))

    async def on_unmount(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
        await self._stack.aclose()

