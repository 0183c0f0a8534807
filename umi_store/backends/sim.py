"""The simulator backend: plain dicts in memory, deterministic, with rollback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeVar

from .. import similarity
from ..integrity import damaged_bytes, damaged_text, checksum, verified, verified_text
from ..models import (AgentSummary, BlockType, ChangeEvent, Entity, EntityType, HistoryRecord,
                      MemoryBlock, Tier, WorkingEntry)
from .base import ChangeHub, Tx
from .shortcuts import Shortcut

T = TypeVar("T")

_MISSING = object()


@dataclass(slots=True)
class _StoredEntity:
    """An entity row: the content as written (what its checksum is of) and the text search
    compares, the name and content as written casefolded (at the first search that meets
    the row: damaged bytes are not searched, as the SQL backends' folded columns are not)."""
    entity: Entity
    written: str
    folded: tuple[str, str] | None = None  # (name, content) casefolded
    sketch: bytes | None = None  # umi_store.similarity

    def folded_text(self) -> tuple[str, str]:
        if self.folded is None:
            self.folded = (self.entity.name.casefold(), self.written.casefold())
        return self.folded


@dataclass(slots=True)
class _StoredEntry:
    """A working row as the SQL backends keep it: the size is recorded at write."""
    entry: WorkingEntry
    written: bytes
    size_bytes: int


@dataclass(slots=True)
class _AgentRows:
    core: dict[BlockType, tuple[MemoryBlock, str]] = field(default_factory=dict)  # as written
    working: dict[str, _StoredEntry] = field(default_factory=dict)
    entities: dict[str, _StoredEntity] = field(default_factory=dict)
    history: dict[int, HistoryRecord] = field(default_factory=dict)  # by append order
    history_sizes: dict[int, int] = field(default_factory=dict)  # each record's size_bytes
    history_keys: dict[tuple[Tier, str], tuple[int, ...]] = field(default_factory=dict)
    history_bytes: dict[str, int] = field(default_factory=dict)  # "total": the agent's sum
    vectors_version: dict[str, int] = field(default_factory=dict)  # "version": embeddings


def entity_sort_key(entity: Entity) -> tuple[int, str]:
    """The archival order on every backend: updated_at descending, then id."""
    return (-entity.updated_at, entity.id)


def history_order(record: HistoryRecord) -> tuple[int, str, str, int]:
    """The order history is pruned in on every backend: oldest first."""
    return (record.at_ms, Tier(record.tier).value, record.key, record.version)


def snapshot_tx(agent: str, blocks: Iterable[MemoryBlock], entries: Iterable[WorkingEntry],
                entities: Iterable[Entity]) -> SimTx:
    """A transaction over rows holding just these models (the reads of store.as_of)."""
    rows = _AgentRows()
    rows.core = {b.block_type: (b, b.content) for b in blocks}
    rows.working = {e.key: _StoredEntry(e, e.value, e.size_bytes) for e in entries}
    rows.entities = {e.id: _StoredEntity(e, e.content) for e in entities}
    return SimTx(rows, agent)


class SimTx:
    """A transaction over the simulator's dicts; an undo log makes it atomic."""

    def __init__(self, rows: _AgentRows, agent: str, sequence: list[int] | None = None) -> None:
        self.agent = agent
        self._rows = rows
        self._sequence = [0] if sequence is None else sequence  # the backend's append counter
        self._undo: list[tuple[dict, Any, Any]] = []
        self.events: list[ChangeEvent] = []

    def _set(self, table: dict, key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, _MISSING)))
        if value is _MISSING:
            del table[key]
        else:
            table[key] = value

    def rollback(self) -> None:
        for table, key, previous in reversed(self._undo):
            if previous is _MISSING:
                table.pop(key, None)
            else:
                table[key] = previous
        self._undo.clear()
        self.events.clear()

    def emit(self, event: ChangeEvent) -> None:
        self.events.append(event)

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        return await body(self)

    # core
    async def core_get(self, block_type: BlockType) -> MemoryBlock | None:
        stored = self._rows.core.get(block_type)
        return None if stored is None else _verified_block(*stored)

    async def core_list(self) -> list[MemoryBlock]:
        return [_verified_block(*stored) for stored in self._rows.core.values()]

    async def core_put(self, block: MemoryBlock) -> None:
        self._set(self._rows.core, block.block_type, (block, block.content))

    async def core_delete(self, block_type: BlockType) -> bool:
        if block_type not in self._rows.core:
            return False
        self._set(self._rows.core, block_type, _MISSING)
        return True

    # working
    async def working_get(self, key: str) -> WorkingEntry | None:
        stored = self._rows.working.get(key)
        return None if stored is None else _verified_entry(stored)

    async def working_put(self, entry: WorkingEntry) -> None:
        self._set(self._rows.working, entry.key, _StoredEntry(entry, entry.value, entry.size_bytes))

    async def working_put_many(self, entries: list[WorkingEntry]) -> None:
        for entry in entries:
            await self.working_put(entry)

    async def working_sizes(self, keys: Iterable[str]) -> dict[str, int]:
        return {key: self._rows.working[key].size_bytes for key in keys
                if key in self._rows.working}

    async def working_delete(self, key: str) -> bool:
        if key not in self._rows.working:
            return False
        self._set(self._rows.working, key, _MISSING)
        return True

    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        keys = sorted(k for k, stored in self._rows.working.items()
                      if k.startswith(prefix) and stored.entry.expires_at_ms > now_ms)
        return [_verified_entry(self._rows.working[k]) for k in keys[:limit]]

    async def working_usage(self, now_ms: int | None, exclude_key: str | None) -> tuple[int, int]:
        rows = [stored for k, stored in self._rows.working.items() if k != exclude_key
                and (now_ms is None or stored.entry.expires_at_ms > now_ms)]
        return sum(stored.size_bytes for stored in rows), len(rows)

    async def working_delete_expired(self, now_ms: int, limit: int) -> list[str]:
        lapsed = sorted((stored.entry.expires_at_ms, k)
                        for k, stored in self._rows.working.items()
                        if stored.entry.expires_at_ms <= now_ms)
        keys = sorted(key for _, key in lapsed[:max(0, limit)])
        for key in keys:
            self._set(self._rows.working, key, _MISSING)
        return keys

    async def working_clear(self) -> list[str]:
        keys = sorted(self._rows.working)
        for key in keys:
            self._set(self._rows.working, key, _MISSING)
        return keys

    # archival
    async def entity_get(self, entity_id: str) -> Entity | None:
        stored = self._rows.entities.get(entity_id)
        return None if stored is None else _verified_entity(stored)

    async def entity_get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        return {entity_id: _verified_entity(self._rows.entities[entity_id])
                for entity_id in entity_ids if entity_id in self._rows.entities}

    async def entity_put_many(self, entities: list[Entity]) -> None:
        for entity in entities:
            await self.entity_put(entity)

    async def entity_put(self, entity: Entity) -> None:
        stored = _StoredEntity(entity, entity.content, sketch=similarity.sketch(entity.embedding))
        self._vectors_changed(self._rows.entities.get(entity.id), stored)
        self._set(self._rows.entities, entity.id, stored)

    async def entity_delete(self, entity_id: str) -> bool:
        if entity_id not in self._rows.entities:
            return False
        self._vectors_changed(self._rows.entities[entity_id], None)
        self._set(self._rows.entities, entity_id, _MISSING)
        return True

    def _vectors_changed(self, old: _StoredEntity | None, new: _StoredEntity | None) -> None:
        if any(s is not None and s.entity.embedding is not None for s in (old, new)):
            version = self._rows.vectors_version.get("version", 0)
            self._set(self._rows.vectors_version, "version", version + 1)

    async def entity_embeddings(self, entity_ids: Iterable[str]) -> dict[str, bytes | Sequence[float]]:
        found = {i: self._rows.entities[i].entity.embedding for i in entity_ids
                 if i in self._rows.entities}
        return {entity_id: embedding for entity_id, embedding in found.items()
                if embedding is not None}

    async def entity_vectors_version(self) -> int:
        return self._rows.vectors_version.get("version", 0)

    async def entity_sketches(self) -> list[tuple[str, str, bytes | None, Sequence[float] | None]]:
        return [(s.entity.id, s.entity.entity_type, s.sketch,
                 None if s.sketch is not None else s.entity.embedding)
                for s in self._rows.entities.values() if s.entity.embedding is not None]

    def _matching(self, entity_type: EntityType | None, query: str | None) -> list[_StoredEntity]:
        rows = [s for s in self._rows.entities.values()
                if entity_type is None or s.entity.entity_type == entity_type]
        if query is None:
            return rows
        return [s for s in rows if query in (folded := s.folded_text())[0] or query in folded[1]]

    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        rows = sorted(self._matching(entity_type, None), key=lambda s: entity_sort_key(s.entity))
        return [_verified_entity(s) for s in rows[offset:offset + limit]]

    async def entity_count(self, entity_type: EntityType | None) -> int:
        return len(self._matching(entity_type, None))

    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        rows = sorted(self._matching(entity_type, folded_query),
                      key=lambda s: entity_sort_key(s.entity))
        return [_verified_entity(s) for s in rows[:limit]]

    # history
    async def history_append(self, record: HistoryRecord, versions_max: int, bytes_max: int,
                             bytes_pruned: int) -> int:
        rows = self._rows
        name = (Tier(record.tier), record.key)
        seqs = rows.history_keys.get(name, ())
        version = rows.history[seqs[-1]].version + 1 if seqs else 1
        self._sequence[0] += 1
        seq = self._sequence[0]
        self._set(rows.history, seq, record._replace(
            version=version, metadata=MappingProxyType(dict(record.metadata))))
        size = record.size_bytes  # measured once: its metadata's JSON is the costly part
        self._set(rows.history_sizes, seq, size)
        seqs = seqs + (seq,)
        total = rows.history_bytes.get("total", 0) + size
        for old in seqs[:max(0, len(seqs) - versions_max)]:
            total -= self._drop_record(old)
        self._set(rows.history_keys, name, seqs[-versions_max:])
        if total > bytes_max:
            total = self._prune_history(total, bytes_pruned)
        self._set(rows.history_bytes, "total", total)
        return version

    async def history_append_many(self, records: list[HistoryRecord], versions_max: int,
                                  bytes_max: int, bytes_pruned: int) -> list[int]:
        return [await self.history_append(r, versions_max, bytes_max, bytes_pruned)
                for r in records]

    def _prune_history(self, total: int, bytes_pruned: int) -> int:
        """Drop the oldest records (never a key's newest) until at most `bytes_pruned` stay."""
        rows = self._rows
        newest = {seqs[-1] for seqs in rows.history_keys.values()}
        oldest_first = sorted((history_order(r), seq) for seq, r in rows.history.items()
                              if seq not in newest)
        dropped: set[int] = set()
        for _, seq in oldest_first:
            if total <= bytes_pruned:
                break
            total -= self._drop_record(seq)
            dropped.add(seq)
        for name, seqs in list(rows.history_keys.items()):
            if dropped.intersection(seqs):
                self._set(rows.history_keys, name, tuple(s for s in seqs if s not in dropped))
        return total

    def _drop_record(self, seq: int) -> int:
        """Remove one history record; its size."""
        size = self._rows.history_sizes[seq]
        self._set(self._rows.history, seq, _MISSING)
        self._set(self._rows.history_sizes, seq, _MISSING)
        return size

    async def history_list(self, tier: Tier, key: str, limit: int) -> list[HistoryRecord]:
        seqs = self._rows.history_keys.get((Tier(tier), key), ())
        newest = seqs[-limit:] if limit > 0 else ()  # not the whole tuple reversed
        return [self._rows.history[seq] for seq in reversed(newest)]

    async def history_get(self, tier: Tier, key: str, version: int) -> HistoryRecord | None:
        for seq in self._rows.history_keys.get((Tier(tier), key), ()):
            if self._rows.history[seq].version == version:
                return self._rows.history[seq]
        return None

    async def history_since(self, at_ms: int, limit: int) -> list[HistoryRecord]:
        found = [self._rows.history[seq] for seq in sorted(self._rows.history)
                 if self._rows.history[seq].at_ms > at_ms]
        return found[:max(0, limit)]

    async def history_newest(self, tier: Tier | None, at_ms: int) -> list[HistoryRecord]:
        newest = []
        for (record_tier, _key), seqs in sorted(self._rows.history_keys.items()):
            if tier is not None and record_tier != tier:
                continue
            before = [self._rows.history[s] for s in seqs if self._rows.history[s].at_ms <= at_ms]
            if before:
                newest.append(before[-1])
        return newest

    async def corrupt(self, tier: Tier, key: str) -> bool:
        if tier is Tier.CORE:
            stored = self._rows.core.get(BlockType(key))
            if stored is None:
                return False
            block, written = stored
            self._set(self._rows.core, block.block_type,
                      (replace(block, content=damaged_text(block.content)), written))
        elif tier is Tier.WORKING:
            stored_entry = self._rows.working.get(key)
            if stored_entry is None:
                return False
            damaged = replace(stored_entry.entry, value=damaged_bytes(stored_entry.entry.value))
            self._set(self._rows.working, key, replace(stored_entry, entry=damaged))
        else:
            stored_entity = self._rows.entities.get(key)
            if stored_entity is None:
                return False
            damaged_entity = replace(stored_entity.entity,
                                     content=damaged_text(stored_entity.entity.content))
            self._set(self._rows.entities, key, replace(stored_entity, entity=damaged_entity))
        return True


def _verified_block(block: MemoryBlock, written: str) -> MemoryBlock:
    _verified(block.content, written, f"core block {block.block_type}")
    return block


def _verified_entry(stored: _StoredEntry) -> WorkingEntry:
    _verified(stored.entry.value, stored.written, f"working key {stored.entry.key!r}")
    return stored.entry


def _verified_entity(stored: _StoredEntity) -> Entity:
    _verified(stored.entity.content, stored.written, f"entity {stored.entity.id}")
    return stored.entity


def _verified(data: str | bytes, written: str | bytes, what: str) -> None:
    """Check `data` against the checksum of what was written. The checksum is taken only
    when the stored object is no longer the one written (values are immutable: the same
    object holds the same bytes), so an undamaged row costs no pass over its bytes."""
    if data is not written:
        expected = checksum(written if isinstance(written, bytes) else written.encode())
        if isinstance(data, bytes):
            verified(data, expected, what)
        else:
            verified_text(data, expected, what)


class SimBackend:
    """In-memory storage for the simulator. Same semantics as SQLite and Postgres."""

    def __init__(self, url: str = "sim://") -> None:
        self.url = url
        self.changes = ChangeHub()
        self._agents: dict[str, _AgentRows] = {}
        self._lock = asyncio.Lock()
        self._history_sequence = [0]

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[SimTx]:
        async with self._lock:
            tx = SimTx(self._agents.setdefault(agent, _AgentRows()), agent, self._history_sequence)
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            events = list(tx.events)
        if events:
            self.changes.publish(agent, events)

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        """transaction() without its context manager: the path every operation takes."""
        async with self._lock:
            tx = SimTx(self._agents.setdefault(agent, _AgentRows()), agent, self._history_sequence)
            try:
                result = await body(tx)
            except BaseException:
                tx.rollback()
                raise
        if tx.events:
            self.changes.publish(agent, tx.events)
        return result

    async def working_put_if_room(self, agent: str, entry: WorkingEntry, size_bytes_max: int,
                                  entries_max: int, record: HistoryRecord,
                                  history_limits: tuple[int, int, int]) -> int | None:
        return None  # a body costs no round trips here

    async def shortcut(self, agent: str, request: Shortcut[T]) -> T | None:
        return None  # a body costs no round trips here

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        """Every agent with a stored row: counts per tier (live keys) and last change."""
        async with self._lock:
            summaries = [_summary(agent, rows, now_ms) for agent, rows in self._agents.items()
                         if rows.core or rows.working or rows.entities]
        return sorted(summaries, key=lambda summary: summary.agent)


def _summary(agent: str, rows: _AgentRows, now_ms: int) -> AgentSummary:
    changes = [block.updated_at for block, _ in rows.core.values()]
    changes += [stored.entry.updated_at for stored in rows.working.values()]
    changes += [stored.entity.updated_at for stored in rows.entities.values()]
    live_keys = sum(stored.entry.is_live(now_ms) for stored in rows.working.values())
    return AgentSummary(agent, len(rows.core), live_keys, len(rows.entities), max(changes))
