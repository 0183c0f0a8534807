"""Clocks: all time in umi_store flows from one of these (SPEC §3)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

from ..constants import DST_EPOCH_MS, DST_TIME_ADVANCE_MS_MAX
from ..errors import InvalidInputError


@runtime_checkable
class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep(self, ms: int) -> None:
        """Wait until the clock has passed now + ms."""

    def advance(self, ms: int) -> int:
        """Move the clock forward by `ms` at once (skew, latency); return the new now."""

    async def elapse(self, ms: int) -> None:
        """Let `ms` go by: a simulated clock advances itself, a real one sleeps."""


def _checked_advance(ms: int) -> int:
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise InvalidInputError(f"the clock moves forward only; cannot advance by {ms!r} ms")
    if ms > DST_TIME_ADVANCE_MS_MAX:
        raise InvalidInputError(
            f"cannot advance by {ms} ms at once; the limit is {DST_TIME_ADVANCE_MS_MAX}")
    return ms


class SystemClock:
    """Wall-clock time, for production use, plus whatever `advance` added; never backwards."""

    def __init__(self) -> None:
        self._offset_ms = 0
        self._last_ms = 0

    def now_ms(self) -> int:
        self._last_ms = max(self._last_ms, time.time_ns() // 1_000_000 + self._offset_ms)
        return self._last_ms

    async def sleep(self, ms: int) -> None:
        await asyncio.sleep(max(0, ms) / 1000)

    def advance(self, ms: int) -> int:
        self._offset_ms += _checked_advance(ms)
        return self.now_ms()

    async def elapse(self, ms: int) -> None:
        await self.sleep(ms)


class SimClock:
    """Simulated milliseconds from a fixed epoch; moves only when told, never backwards."""

    def __init__(self, start_ms: int = DST_EPOCH_MS) -> None:
        if start_ms < 0:
            raise InvalidInputError(f"clock start {start_ms} is negative")
        self._now_ms = start_ms
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, ms: int) -> int:
        """Move the clock forward by `ms` and wake every sleeper whose deadline passed."""
        before = self._now_ms
        self._now_ms += _checked_advance(ms)
        while self._sleepers and self._sleepers[0][0] <= self._now_ms:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)
        assert self._now_ms >= before, "the clock never goes backwards"
        return self._now_ms

    async def sleep(self, ms: int) -> None:
        """Wait until the clock has been advanced past now + ms."""
        deadline = self._now_ms + max(0, ms)
        if deadline <= self._now_ms:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._sequence), waiter))
        await waiter

    async def elapse(self, ms: int) -> None:
        """Advance by `ms` (a simulation never waits on the wall clock), then, if that woke a
        sleeper, yield so it runs first (with none woken, a yield would change nothing)."""
        woke = bool(self._sleepers) and self._sleepers[0][0] <= self._now_ms + ms
        self.advance(ms)
        if woke:
            await asyncio.sleep(0)
