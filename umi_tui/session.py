"""The Session: what a pane may use of the app, typed, so no pane reaches into `self.app`.

The app and the test harness each build one. It opens the store (panes wait for it with
`await session.ready()` in their workers, so they paint before it opens), follows the
change feed, runs a sim clock at `clock_speed` × wall time, and says when the clock moved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # umi_store loads after the first frame (see Session.open)
    from umi_store import ChangeEvent, FaultInjector, SimClock, Store
    from umi_store.dst.clock import Clock

Fill = Callable[["Store"], Awaitable[None]]


def _wall_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Session:
    """One store for one agent, shared by every pane of one app."""

    def __init__(self, url: str, *, agent: str, clock: Clock | None = None,
                 faults: FaultInjector | None = None, clock_speed: int = 0,
                 seed: int = 0, actor: str | None = None) -> None:
        """`clock`, `faults` and `actor` (whom writes are attributed to) go to open_store;
        `clock_speed` runs a sim clock at that many times wall time (0: paused); `seed` is
        the console's seed when the store is not a simulator."""
        self.url = url
        self.agent = agent
        self.clock_speed = clock_speed
        self.seed = seed
        self._clock = clock
        self._faults = faults
        self._actor = actor
        self._store: Store | None = None
        self._as_of: Store | None = None  # the read-only view the panes show, if any
        self._ready = asyncio.Event()
        self._resources = AsyncExitStack()
        self._wall_ms = _wall_ms()
        self._clock_listeners: list[Callable[[int], None]] = []

    # The store

    @property
    def store(self) -> Store:
        """The open store; only for code that runs after `ready()`."""
        assert self._store is not None, "the store is used only once the session is ready"
        return self._store

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def view(self) -> Store:
        """What the panes show: the store, or its read-only view as of a past instant."""
        return self._as_of or self.store

    async def ready(self) -> Store:
        """What the panes show (`view`), once the store is open and filled (waits until
        then). In as-of mode its writes raise ReadOnlyError."""
        await self._ready.wait()
        return self.view

    async def ready_live(self) -> Store:
        """The live store, once open, even in as-of mode (history is read there)."""
        await self._ready.wait()
        return self.store

    # As of: the panes show memory as it stood at one instant, read-only

    @property
    def as_of_ms(self) -> int | None:
        """The instant the panes show (store-clock ms), or None when they show live memory."""
        return None if self._as_of is None else self._as_of.clock.now_ms()

    def show_as_of(self, at_ms: int | None, source: Store | None = None) -> None:
        """From now on the panes read memory as of `at_ms` (None: live again), of the store
        (or of `source`: the Simulation's scratch agent, to step through a workload)."""
        self._as_of = None if at_ms is None else (source or self.store).as_of(at_ms)

    @property
    def shown_agent(self) -> str:
        """Whose memory the panes show (the scratch agent while stepping a workload)."""
        return self.view.agent

    async def open(self, fill: Fill | None = None) -> Store:
        """Open the store, `fill` it (the demo dataset, a test's rows), then say it is ready.
        Raises UmiError when it cannot be opened."""
        from umi_store import open_store
        self._store = await self._resources.enter_async_context(open_store(
            self.url, agent=self.agent, clock=self._clock, faults=self._faults,
            actor=self._actor))
        if fill is not None:
            await fill(self._store)
        self._wall_ms = _wall_ms()
        self._ready.set()
        return self._store

    async def close(self) -> None:
        await self._resources.aclose()

    def switch_agent(self, agent: str) -> Store:
        """From now on, `agent`'s memory: the same open store, seen as that agent (raises
        UmiError for a bad name)."""
        self._store = self.store.for_agent(agent)
        self._as_of = None
        self.agent = agent
        return self._store

    async def follow_changes(self, deliver: Callable[[ChangeEvent], None]) -> None:
        """Hand every committed change to `deliver`, until cancelled (raises UmiError)."""
        async for event in self.store.changes():
            deliver(event)

    # The clock

    @property
    def clock(self) -> Clock:
        return self.store.clock

    @property
    def sim_clock(self) -> SimClock | None:
        """The store's clock when it is simulated (it can be stepped), else None."""
        from umi_store import SimClock
        clock = self.store.clock
        return clock if isinstance(clock, SimClock) else None

    def on_clock_moved(self, listener: Callable[[int], None]) -> None:
        """Call `listener(now_ms)` whenever the clock moved (ticks and manual steps)."""
        self._clock_listeners.append(listener)

    def tick(self) -> None:
        """Once a second: a sim clock runs at `clock_speed` × wall time; listeners hear it."""
        from umi_store.constants import DST_TIME_ADVANCE_MS_MAX
        wall_ms = _wall_ms()
        elapsed_ms, self._wall_ms = wall_ms - self._wall_ms, wall_ms
        clock = self.sim_clock
        if self.clock_speed and clock is not None:
            clock.advance(min(max(0, elapsed_ms) * self.clock_speed, DST_TIME_ADVANCE_MS_MAX))
        self.clock_moved()

    def clock_moved(self) -> None:
        """Tell every listener the time; call it after moving a sim clock by hand."""
        now_ms = self.store.clock.now_ms()
        for listener in self._clock_listeners:
            listener(now_ms)
