"""store.as_of(at_ms): memory as it stood at one instant, rebuilt from history, read-only.

Every key's newest history record at or before the instant gives its state then; the
reads run the simulator's own rules over those rows, so they answer as the live store
would have (working keys with the TTL they had left then; search over entities as they
were). A write raises ReadOnlyError and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from .backends.base import Backend, ChangeHub, Tx
from .backends.sim import snapshot_tx
from .errors import InvalidInputError, ReadOnlyError
from .models import AgentSummary, ChangeKind, HistoryRecord, Tier, WorkingEntry
from .tiers.history import block_from_record, entity_from_record, entry_from_record

T = TypeVar("T")


class FrozenClock:
    """A clock stopped at one instant: as-of reads see that instant as now."""

    def __init__(self, at_ms: int) -> None:
        self.at_ms = at_ms

    def now_ms(self) -> int:
        return self.at_ms

    async def sleep(self, ms: int) -> None:
        raise ReadOnlyError("an as-of view does not wait: its time stands still")

    def advance(self, ms: int) -> int:
        raise ReadOnlyError("an as-of view's time stands still")

    async def elapse(self, ms: int) -> None:
        raise ReadOnlyError("an as-of view's time stands still")


def snapshot(agent: str, records: list[HistoryRecord], at_ms: int) -> Tx:
    """Rows holding each key's state after its newest record at or before `at_ms`."""
    live = [r for r in records if r.kind is ChangeKind.SET]
    entries: list[WorkingEntry] = [entry_from_record(r) for r in live if r.tier is Tier.WORKING]
    return snapshot_tx(agent, [block_from_record(r) for r in live if r.tier is Tier.CORE],
                       [e for e in entries if e.is_live(at_ms)],
                       [entity_from_record(r) for r in live if r.tier is Tier.ARCHIVAL])


class AsOfBackend:
    """Reads of `inner` as of `at_ms`, from its history; every write is refused."""

    def __init__(self, inner: Backend, at_ms: int, label: str) -> None:
        self._inner = inner
        self.at_ms = at_ms
        self._label = label
        self.url = inner.url
        self.changes = ChangeHub()  # nothing ever changes in the past

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _refused(self) -> ReadOnlyError:
        return ReadOnlyError(f"this view shows memory as of {self._label}: it is read-only "
                             "(write through the live store)")

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        if write:
            raise self._refused()
        records = await self._inner.run(agent, lambda tx: tx.history_newest(None, self.at_ms),
                                        write=False)
        return await body(snapshot(agent, records, self.at_ms))

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[Tx]:
        raise self._refused()
        yield  # pragma: no cover - an async generator, never reached

    async def working_put_if_room(self, *args: object) -> bool | None:
        raise self._refused()

    async def shortcut(self, agent: str, request: object) -> None:
        raise self._refused()

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        raise InvalidInputError(f"this view shows one agent as of {self._label}; list the "
                                "agents on the live store")
