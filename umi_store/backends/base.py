"""The Backend protocol: storage primitives inside a transaction, no rules.

The tiers (umi_store.tiers) hold every rule of SPEC §2 and call these primitives; each
backend keeps its own SQL (or dicts) behind them. A transaction is atomic: if its body
raises, nothing it did is kept and none of its events are published.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar

from ..models import (AgentSummary, BlockType, ChangeEvent, Entity, EntityType, HistoryRecord,
                      MemoryBlock, Tier, WorkingEntry)
from .shortcuts import Shortcut


T = TypeVar("T")


class Tx(Protocol):
    """One transaction, bound to one agent. Each method may be one storage round trip."""

    agent: str

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `body` inside this transaction at once (on SQLite: in one thread hop)."""

    async def core_get(self, block_type: BlockType) -> MemoryBlock | None: ...
    async def core_list(self) -> list[MemoryBlock]: ...
    async def core_put(self, block: MemoryBlock) -> None: ...
    async def core_delete(self, block_type: BlockType) -> bool: ...

    async def working_get(self, key: str) -> WorkingEntry | None:
        """The stored entry, live or not: the tier decides what is expired."""
    async def working_put(self, entry: WorkingEntry) -> None: ...
    async def working_put_many(self, entries: list[WorkingEntry]) -> None: ...
    async def working_sizes(self, keys: Iterable[str]) -> dict[str, int]:
        """The recorded size of each of `keys` that is stored, live or not."""
    async def working_delete(self, key: str) -> bool: ...
    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        """Live entries whose key starts with `prefix` (literal text), in key order."""
    async def working_usage(self, now_ms: int | None, exclude_key: str | None) -> tuple[int, int]:
        """(bytes, count) of entries live at now_ms (every stored entry when None)."""
    async def working_delete_expired(self, now_ms: int, limit: int) -> list[str]:
        """Remove up to `limit` entries with expires_at_ms <= now_ms, earliest deadline first
        (then key order); return their keys in key order."""
    async def working_clear(self) -> list[str]: ...

    async def entity_get(self, entity_id: str) -> Entity | None: ...
    async def entity_get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]: ...
    async def entity_put(self, entity: Entity) -> None: ...
    async def entity_put_many(self, entities: list[Entity]) -> None: ...
    async def entity_delete(self, entity_id: str) -> bool: ...
    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        """Entities ordered by updated_at descending, then id."""
    async def entity_count(self, entity_type: EntityType | None) -> int: ...
    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        """Entities whose casefolded name or content contains `folded_query` literally,
        ordered by updated_at descending, then id."""
    async def entity_vectors_version(self) -> int:
        """A number that changes whenever an entity with an embedding is stored, changed
        or removed (umi_store.similarity caches the sketches against it)."""
    async def entity_sketches(self) -> list[tuple[str, str, bytes | None, Sequence[float] | None]]:
        """(id, entity type, sketch, embedding) of every entity with an embedding; the
        embedding only where no sketch is stored."""
    async def entity_embeddings(self, entity_ids: Iterable[str]) -> dict[str, bytes | Sequence[float]]:
        """The embedding of each of `entity_ids` that has one: its exact float64 bytes
        (umi_store.similarity.exact_bytes) where stored, else the numbers."""

    async def history_append(self, record: HistoryRecord, versions_max: int, bytes_max: int,
                             bytes_pruned: int) -> int:
        """Append `record` as the next version of its key (its own version is ignored) and
        return that version. Then prune: the key keeps its newest `versions_max` versions;
        when the agent's history passes `bytes_max`, its oldest records (at_ms, tier, key,
        version order; never a key's newest) go until at most `bytes_pruned` remain."""
    async def history_append_many(self, records: list[HistoryRecord], versions_max: int,
                                  bytes_max: int, bytes_pruned: int) -> list[int]:
        """history_append of each record in turn (pruning included), in one call: the
        versions given."""
    async def history_list(self, tier: Tier, key: str, limit: int) -> list[HistoryRecord]:
        """The key's versions, newest first."""
    async def history_get(self, tier: Tier, key: str, version: int) -> HistoryRecord | None: ...
    async def history_since(self, at_ms: int, limit: int) -> list[HistoryRecord]:
        """The agent's records with at_ms > `at_ms`, oldest first (in the order appended)."""
    async def history_newest(self, tier: Tier | None, at_ms: int) -> list[HistoryRecord]:
        """Each key's newest record with at_ms <= `at_ms` (of one tier, or of every tier
        when None), in tier then key order."""

    async def corrupt(self, tier: Tier, key: str) -> bool:
        """Alter the stored bytes of one row without fixing its checksum (fault injection)."""

    def emit(self, event: ChangeEvent) -> None:
        """Queue a change event; it is published only if the transaction commits."""


class Backend(Protocol):
    """A storage engine: opens, closes, and hands out transactions."""

    url: str
    changes: ChangeHub

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    def transaction(self, agent: str, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """A transaction for `agent`. Writers are serialised; readers see committed data."""

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        """Every agent with a stored row, in name order: rows per tier (working keys live at
        now_ms) and the newest updated_at among them."""

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        """Run `body` in a transaction of its own, committed when it returns: one storage
        operation, in as few round trips as the engine allows (SQLite: one thread hop)."""

    async def working_put_if_room(self, agent: str, entry: WorkingEntry, size_bytes_max: int,
                                  entries_max: int, record: HistoryRecord,
                                  history_limits: tuple[int, int, int]) -> int | None:
        """A shortcut for working.set where a body would cost several round trips: store
        `entry`, append `record` to its history (limits as history_append takes them) and
        publish its `set` event if, with it, the agent's stored keys stay within both
        limits; the version recorded, or 0 when they would not fit (nothing changed); None
        when this backend has no shortcut (the tier then runs its full rule as a body)."""

    async def shortcut(self, agent: str, request: Shortcut[T]) -> T | None:
        """The request's write whole, in one round trip, with its history record and
        event; None when this backend has none or the case needs the full rule (nothing
        changed then: the tier runs its body). See umi_store.backends.shortcuts."""


def completed(awaitable: Awaitable[T]) -> T:
    """The result of an awaitable that never suspends (its awaits are all synchronous work,
    as a transaction body over SqliteTx or SimTx is): run it to the end, here and now."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    steps.close()
    raise AssertionError("a transaction body waited on something; it must run straight through")


async def stop_background_task(task: asyncio.Task[None]) -> None:
    """Cancel a change-feed helper task (poller, sweeper) and wait until it has stopped.

    Its failure, if any, is raised; the caller's own cancellation is never swallowed.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


class ChangeHub:
    """Fans committed change events out to in-process subscribers, per agent.

    `watch`, when given, is awaited on every subscribe before the subscriber is handed
    its queue: a backend uses it to start noticing other processes' commits.
    """

    def __init__(self, watch: Callable[[], Awaitable[None]] | None = None) -> None:
        self._queues: dict[str, set[asyncio.Queue[ChangeEvent]]] = defaultdict(set)
        self._watch = watch

    def publish(self, agent: str, events: list[ChangeEvent]) -> None:
        for queue in self._queues.get(agent, ()):
            for event in events:
                queue.put_nowait(event)

    def subscriber_count(self, agent: str) -> int:
        return len(self._queues.get(agent, ()))

    @asynccontextmanager
    async def subscribe(self, agent: str) -> AsyncIterator[asyncio.Queue[ChangeEvent]]:
        queue: asyncio.Queue[ChangeEvent] = asyncio.Queue()
        if self._watch is not None:
            await self._watch()
        self._queues[agent].add(queue)
        try:
            yield queue
        finally:
            self._queues[agent].discard(queue)
            if not self._queues[agent]:
                del self._queues[agent]
