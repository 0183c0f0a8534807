"""The reference model: SPEC §2 as plain dicts, the oracle a simulation checks the store by.

Written apart from umi_store.tiers on purpose: it shares only constants and the two pure
naming helpers (entity_id, derive_name). Given a state, an operation and the store's `now`,
it lists every outcome the spec allows (an `Alternative`: what the call returns, and the
state after it). Several outcomes are allowed where the spec leaves room: a row known to be
corrupted may refuse with CorruptionError, and when several input errors apply, any of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..constants import (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX,
                         CORE_MEMORY_IMPORTANCE_DEFAULT, EMBEDDING_DIMENSIONS_COUNT,
                         ENTITY_CONTENT_BYTES_MAX, ENTITY_LIST_COUNT_MAX, ENTITY_NAME_BYTES_MAX,
                         SEARCH_QUERY_BYTES_MAX, SEARCH_RESULTS_COUNT_MAX,
                         WORKING_MEMORY_ENTRIES_COUNT_MAX, WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                         WORKING_MEMORY_KEY_BYTES_MAX, WORKING_MEMORY_SIZE_BYTES_MAX,
                         WORKING_MEMORY_TTL_SECS_DEFAULT, WORKING_MEMORY_TTL_SECS_MAX)
from ..errors import (ConflictError, CorruptionError, InvalidInputError, LimitExceededError,
                      NotFoundError)
from ..models import BlockType, Entity, EntityType, MemoryBlock, Tier, WorkingEntry
from ..tiers.archival import derive_name, entity_id
from .workload import Op

TTL_MS_DEFAULT = WORKING_MEMORY_TTL_SECS_DEFAULT * 1000
TTL_MS_MAX = WORKING_MEMORY_TTL_SECS_MAX * 1000
_INTEGER = re.compile(rb"-?[0-9]+")  # what incr reads as a number, as Redis does

Row = tuple[Tier, str]
_ENTITY_TYPE_SET = frozenset(EntityType)


# The tier each operation may change; the others (reads, the clock) change nothing.
TIER_CHANGED_BY: dict[str, Tier] = {
    **dict.fromkeys(["working.set", "working.delete", "working.expire", "working.touch",
                     "working.incr", "working.append", "working.cleanup_expired",
                     "working.clear"], Tier.WORKING),
    **dict.fromkeys(["core.set_block", "core.delete_block", "core.set_importance"], Tier.CORE),
    **dict.fromkeys(["archival.remember", "archival.store", "archival.update",
                     "archival.forget"], Tier.ARCHIVAL),
}
_NO_DEADLINE_MS = float("inf")


@dataclass(slots=True)
class ModelState:
    """What the store should hold for one agent. Working entries are kept until removed,
    live or not; `corrupted` names rows whose stored bytes were damaged.

    A state is never changed once an operation's outcome is made: states share the dicts
    of tiers an operation left alone (copy on write, per tier)."""

    core: dict[BlockType, MemoryBlock] = field(default_factory=dict)
    working: dict[str, WorkingEntry] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    corrupted: set[Row] = field(default_factory=set)
    # the earliest deadline not yet zeroed (found at first need; the working dict decides it)
    soonest_deadline_ms: float | None = field(default=None, compare=False, repr=False)

    def copy(self) -> ModelState:
        return ModelState(dict(self.core), dict(self.working), dict(self.entities),
                          set(self.corrupted))

    def to_change(self, tier: Tier) -> ModelState:
        """A state an operation on `tier` may change in place: that tier's rows and the
        damage marks are its own, the other tiers' dicts are shared with this one."""
        if tier is Tier.WORKING:
            return ModelState(self.core, dict(self.working), self.entities, set(self.corrupted))
        if tier is Tier.CORE:
            return ModelState(dict(self.core), self.working, self.entities, set(self.corrupted),
                              self.soonest_deadline_ms)
        return ModelState(self.core, self.working, dict(self.entities), set(self.corrupted),
                          self.soonest_deadline_ms)

    def lapsed(self, now_ms: int) -> list[WorkingEntry]:
        """The entries whose deadline passed by `now_ms` and is not zeroed yet."""
        soonest = self.soonest_deadline_ms
        if soonest is None:
            soonest = self.soonest_deadline_ms = min(
                (e.expires_at_ms for e in self.working.values() if e.expires_at_ms > 0),
                default=_NO_DEADLINE_MS)
        if now_ms < soonest:
            return []
        return [e for e in self.working.values() if 0 < e.expires_at_ms <= now_ms]

    def without_dead_deadlines(self, now_ms: int) -> ModelState:
        """This state with expired entries' times zeroed: time only moves forward, so all
        that still matters of them is that they are stored, their bytes, and damage."""
        lapsed = self.lapsed(now_ms)
        if not lapsed:
            return self  # states are never changed in place, so this one can be shared
        working = dict(self.working)
        for entry in lapsed:
            working[entry.key] = WorkingEntry(entry.key, entry.value, 0, 0, 0)
        return ModelState(self.core, working, self.entities, self.corrupted)

    def is_corrupted(self, tier: Tier, key: str) -> bool:
        return (tier, key) in self.corrupted

    def live_working(self, now_ms: int) -> dict[str, WorkingEntry]:
        return {k: e for k, e in self.working.items() if e.expires_at_ms > now_ms}

    def entities_of(self, entity_type: EntityType | None) -> list[Entity]:
        """Entities of a type (or all), unordered."""
        if entity_type is None:
            return list(self.entities.values())
        return [e for e in self.entities.values() if e.entity_type == entity_type]

    def entities_in_order(self, entity_type: EntityType | None = None) -> list[Entity]:
        """Entities of a type (or all), updated_at descending, then id."""
        return sorted(self.entities_of(entity_type), key=_archival_order)


def _archival_order(entity: Entity) -> tuple[int, str]:
    return (-entity.updated_at, entity.id)


@dataclass(frozen=True, slots=True)
class Refused:
    """The call must raise one of these error types."""

    errors: frozenset[type[Exception]]


@dataclass(slots=True)
class Alternative:
    """One allowed outcome: the value returned (or a Refused) and the state after the call.
    `written` is the row the call stored, which a storage_corruption fault would damage."""

    result: object
    state: ModelState
    written: Row | None = None


@functools.lru_cache(maxsize=1024)
def _folded(text: str) -> str:
    return text.casefold()


def _xml_escaped(text: str, *, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def _utf8_len(text: str) -> int:
    return len(text.encode())


def _nul_errors(text: str) -> list[type[Exception]]:
    """Text holding NUL (U+0000) is refused on every backend."""
    return [InvalidInputError] if "\x00" in text else []


class ReferenceModel:
    """Evaluates operations against a ModelState for one agent."""

    def __init__(self, agent: str, core_size_bytes_max: int) -> None:
        self.agent = agent
        self.core_size_bytes_max = core_size_bytes_max
        self._handlers: dict[str, Callable[..., list[Alternative]]] = {}

    def alternatives(self, state: ModelState, op: Op, now_ms: int) -> list[Alternative]:
        """Every outcome SPEC §2 allows for `op` at `now_ms`; `state` is left unchanged (a
        read's outcomes hold `state` itself, a change's a state of its own)."""
        handler = self._handlers.get(op.name)
        if handler is None:
            handler = self._handlers[op.name] = getattr(self, "_" + op.name.replace(".", "_"))
        tier = TIER_CHANGED_BY.get(op.name)
        return handler(state if tier is None else state.to_change(tier), now_ms, **op.kwargs)

    # ---- helpers
    @staticmethod
    def _refuse(state: ModelState, *errors: type[Exception]) -> list[Alternative]:
        return [Alternative(Refused(frozenset(errors)), state)]

    @staticmethod
    def _corrupt(state: ModelState) -> Alternative:
        return Alternative(Refused(frozenset({CorruptionError})), state)

    @staticmethod
    def _key_errors(key: object) -> list[type[Exception]]:
        if not isinstance(key, str) or not key:
            return [InvalidInputError]
        return ([LimitExceededError] if _utf8_len(key) > WORKING_MEMORY_KEY_BYTES_MAX else []) \
            + _nul_errors(key)

    @staticmethod
    def _value_errors(value: bytes) -> list[type[Exception]]:
        return [LimitExceededError] if len(value) > WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX else []

    @staticmethod
    def _ttl_errors(ttl_ms: int) -> list[type[Exception]]:
        return [LimitExceededError] if ttl_ms > TTL_MS_MAX else []

    def _working_row(self, state: ModelState, key: str, now_ms: int
                     ) -> tuple[WorkingEntry | None, bool]:
        """(the live entry or None, whether reading the key may meet damaged bytes)."""
        entry = state.working.get(key)
        damaged = entry is not None and state.is_corrupted(Tier.WORKING, key)
        return (entry if entry is not None and entry.expires_at_ms > now_ms else None), damaged

    def _store_working(self, state: ModelState, entry: WorkingEntry, now_ms: int,
                       result: object) -> list[Alternative]:
        """Put `entry`, reclaiming expired keys first when it would not fit otherwise."""
        def usage() -> tuple[int, int]:
            others = [e for k, e in state.working.items() if k != entry.key]
            return sum(_utf8_len(e.key) + len(e.value) for e in others), len(others)

        size = _utf8_len(entry.key) + len(entry.value)
        used, count = usage()
        if used + size > WORKING_MEMORY_SIZE_BYTES_MAX or count + 1 > WORKING_MEMORY_ENTRIES_COUNT_MAX:
            before = state.copy()
            for key in [k for k, e in state.working.items() if e.expires_at_ms <= now_ms]:
                del state.working[key]
                state.corrupted.discard((Tier.WORKING, key))
            used, count = usage()
            if used + size > WORKING_MEMORY_SIZE_BYTES_MAX or \
                    count + 1 > WORKING_MEMORY_ENTRIES_COUNT_MAX:
                return self._refuse(before, LimitExceededError)
        state.working[entry.key] = entry
        state.corrupted.discard((Tier.WORKING, entry.key))
        return [Alternative(result, state, (Tier.WORKING, entry.key))]

    # ---- clock
    def _clock_advance(self, state: ModelState, now_ms: int, ms: int) -> list[Alternative]:
        return [Alternative(now_ms, state)]

    # ---- working memory
    def _working_set(self, state, now_ms, key, value, ttl_ms=None):
        errors = self._key_errors(key) + self._value_errors(value)
        if ttl_ms is not None:
            errors += self._ttl_errors(ttl_ms) + ([InvalidInputError] if ttl_ms <= 0 else [])
        if errors:
            return self._refuse(state, *errors)
        ttl = TTL_MS_DEFAULT if ttl_ms is None else ttl_ms
        entry = WorkingEntry(key, value, ttl, now_ms + ttl, now_ms)
        return self._store_working(state, entry, now_ms, entry)

    def _working_get(self, state, now_ms, key):
        if errors := self._key_errors(key):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        if damaged:
            return [self._corrupt(state)] + ([Alternative(None, state)] if entry is None else [])
        return [Alternative(None if entry is None else entry.value, state)]

    def _working_ttl_ms(self, state, now_ms, key):
        if errors := self._key_errors(key):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        result = None if entry is None else entry.expires_at_ms - now_ms
        if damaged:
            return [self._corrupt(state)] + ([Alternative(None, state)] if entry is None else [])
        return [Alternative(result, state)]

    def _working_delete(self, state, now_ms, key):
        if errors := self._key_errors(key):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        before = state.copy()
        state.working.pop(key, None)
        state.corrupted.discard((Tier.WORKING, key))
        deleted = Alternative(entry is not None, state)
        return [deleted, self._corrupt(before)] if damaged else [deleted]

    def _working_expire(self, state, now_ms, key, ttl_ms):
        if errors := self._key_errors(key) + self._ttl_errors(ttl_ms):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        if entry is None:
            return [Alternative(False, state)] + ([self._corrupt(state)] if damaged else [])
        if damaged and ttl_ms > 0:
            return [self._corrupt(state)]
        before = state.copy()
        if ttl_ms <= 0:
            del state.working[key]
            state.corrupted.discard((Tier.WORKING, key))
            written = None
        else:
            state.working[key] = WorkingEntry(key, entry.value, ttl_ms, now_ms + ttl_ms, now_ms)
            written = (Tier.WORKING, key)
        applied = Alternative(True, state, written)
        return [applied, self._corrupt(before)] if damaged else [applied]

    def _working_touch(self, state, now_ms, key):
        if errors := self._key_errors(key):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        if entry is None:
            return [Alternative(False, state)] + ([self._corrupt(state)] if damaged else [])
        if damaged:
            return [self._corrupt(state)]
        state.working[key] = replace(entry, expires_at_ms=now_ms + entry.ttl_ms, updated_at=now_ms)
        return [Alternative(True, state, (Tier.WORKING, key))]

    def _successor(self, entry: WorkingEntry | None, key: str, value: bytes,
                   now_ms: int) -> WorkingEntry:
        """incr and append keep a live key's TTL; a missing key gets the default."""
        if entry is None:
            return WorkingEntry(key, value, TTL_MS_DEFAULT, now_ms + TTL_MS_DEFAULT, now_ms)
        return WorkingEntry(key, value, entry.ttl_ms, entry.expires_at_ms, now_ms)

    def _working_incr(self, state, now_ms, key, delta=1):
        if errors := self._key_errors(key):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        if entry is not None and damaged:
            return [self._corrupt(state)]
        alternatives = [self._corrupt(state.copy())] if damaged else []
        current = 0
        if entry is not None:
            if not _INTEGER.fullmatch(entry.value):
                return alternatives + self._refuse(state, InvalidInputError)
            current = int(entry.value)
        result = current + delta
        successor = self._successor(entry, key, str(result).encode(), now_ms)
        return alternatives + self._store_working(state, successor, now_ms, result)

    def _working_append(self, state, now_ms, key, data):
        if errors := self._key_errors(key) + self._value_errors(data):
            return self._refuse(state, *errors)
        entry, damaged = self._working_row(state, key, now_ms)
        if entry is not None and damaged:
            return [self._corrupt(state)]
        alternatives = [self._corrupt(state.copy())] if damaged else []
        value = (b"" if entry is None else entry.value) + data
        if self._value_errors(value):
            return alternatives + self._refuse(state, LimitExceededError)
        successor = self._successor(entry, key, value, now_ms)
        return alternatives + self._store_working(state, successor, now_ms, len(value))

    def _working_entries(self, state, now_ms, prefix="", limit=WORKING_MEMORY_ENTRIES_COUNT_MAX):
        live = state.live_working(now_ms)
        chosen = [live[k] for k in sorted(live) if k.startswith(prefix)][:limit]
        if any(state.is_corrupted(Tier.WORKING, e.key) for e in chosen):
            return [self._corrupt(state)]
        return [Alternative(chosen, state)]

    def _working_cleanup_expired(self, state, now_ms):
        expired = [k for k, e in state.working.items() if e.expires_at_ms <= now_ms]
        for key in expired:
            del state.working[key]
            state.corrupted.discard((Tier.WORKING, key))
        return [Alternative(len(expired), state)]

    def _working_used_bytes(self, state, now_ms):
        live = state.live_working(now_ms).values()
        return [Alternative(sum(_utf8_len(e.key) + len(e.value) for e in live), state)]

    def _working_entry_count(self, state, now_ms):
        return [Alternative(len(state.live_working(now_ms)), state)]

    def _working_clear(self, state, now_ms):
        removed = len(state.working)
        state.working.clear()
        state.corrupted = {row for row in state.corrupted if row[0] is not Tier.WORKING}
        return [Alternative(removed, state)]

    # ---- core memory
    def _core_damaged(self, state: ModelState) -> bool:
        return any(state.is_corrupted(Tier.CORE, t.value) for t in state.core)

    def _importance_errors(self, importance) -> list[type[Exception]]:
        if importance is None:
            return []
        ok = isinstance(importance, (int, float)) and 0.0 <= importance <= 1.0
        return [] if ok else [InvalidInputError]

    def _core_set_block(self, state, now_ms, block_type, content, label=None, importance=None,
                        if_version=None):
        try:
            block_type = BlockType(block_type)
        except ValueError:
            return self._refuse(state, InvalidInputError)
        errors = ([LimitExceededError] if _utf8_len(content) > CORE_MEMORY_BLOCK_SIZE_BYTES_MAX
                  else []) + self._importance_errors(importance)
        if label is not None and _utf8_len(label) > CORE_MEMORY_BLOCK_LABEL_BYTES_MAX:
            errors.append(LimitExceededError)
        errors += _nul_errors(content + (label or ""))
        if errors:
            return self._refuse(state, *errors)
        existing = state.core.get(block_type)
        version = 0 if existing is None else existing.version
        conflict = if_version is not None and if_version != version
        if existing is not None and state.is_corrupted(Tier.CORE, block_type.value):
            return [self._corrupt(state)]
        if self._core_damaged(state):  # only another block: the version check may come first
            return [self._corrupt(state)] + (self._refuse(state, ConflictError) if conflict else [])
        others = sum(_utf8_len(b.content) for t, b in state.core.items() if t != block_type)
        refusals = ([ConflictError] if conflict else []) \
            + ([LimitExceededError] if others + _utf8_len(content) > self.core_size_bytes_max
               else [])
        if refusals:
            return self._refuse(state, *refusals)
        if existing is None:
            block = MemoryBlock(block_type, content, label or None,
                                CORE_MEMORY_IMPORTANCE_DEFAULT if importance is None
                                else float(importance), 1, now_ms, now_ms)
        else:
            block = MemoryBlock(block_type, content,
                                existing.label if label is None else (label or None),
                                existing.importance if importance is None else float(importance),
                                version + 1, existing.created_at, now_ms)
        state.core[block_type] = block
        return [Alternative(block, state, (Tier.CORE, block_type.value))]

    def _core_get_block(self, state, now_ms, block_type):
        block_type = BlockType(block_type)
        if state.is_corrupted(Tier.CORE, block_type.value) and block_type in state.core:
            return [self._corrupt(state)]
        return [Alternative(state.core.get(block_type), state)]

    def _core_delete_block(self, state, now_ms, block_type):
        block_type = BlockType(block_type)
        damaged = state.is_corrupted(Tier.CORE, block_type.value) and block_type in state.core
        before = state.copy()
        existed = state.core.pop(block_type, None) is not None
        state.corrupted.discard((Tier.CORE, block_type.value))
        deleted = Alternative(existed, state)
        return [deleted, self._corrupt(before)] if damaged else [deleted]

    def _core_set_importance(self, state, now_ms, block_type, importance):
        block_type = BlockType(block_type)
        if errors := self._importance_errors(importance):
            return self._refuse(state, *errors)
        existing = state.core.get(block_type)
        if existing is None:
            return self._refuse(state, NotFoundError)
        if state.is_corrupted(Tier.CORE, block_type.value):
            return [self._corrupt(state)]
        block = replace(existing, importance=float(importance), version=existing.version + 1,
                        updated_at=now_ms)
        state.core[block_type] = block
        return [Alternative(block, state, (Tier.CORE, block_type.value))]

    def _core_blocks(self, state, now_ms):
        if self._core_damaged(state):
            return [self._corrupt(state)]
        return [Alternative([state.core[t] for t in BlockType if t in state.core], state)]

    def _core_render(self, state, now_ms):
        """The XML of SPEC §2.1, built here from the spec's own example."""
        if self._core_damaged(state):
            return [self._corrupt(state)]
        lines = ["<core_memory>"]
        for block in (state.core[t] for t in BlockType if t in state.core):
            label = f' label="{_xml_escaped(block.label, quote=True)}"' if block.label else ""
            lines += [f'<block type="{block.block_type.value}"{label} '
                      f'importance="{block.importance:.2f}">', _xml_escaped(block.content),
                      "</block>"]
        lines.append("</core_memory>")
        return [Alternative("\n".join(lines), state)]

    # ---- archival memory
    def _entity_errors(self, entity_type, name: str, content: str,
                       embedding=None) -> list[type[Exception]]:
        errors: list[type[Exception]] = []
        if entity_type not in _ENTITY_TYPE_SET:
            errors.append(InvalidInputError)
        if not name.strip():
            errors.append(InvalidInputError)
        if _utf8_len(name) > ENTITY_NAME_BYTES_MAX:
            errors.append(LimitExceededError)
        if _utf8_len(content) > ENTITY_CONTENT_BYTES_MAX:
            errors.append(LimitExceededError)
        if embedding is not None and len(embedding) != EMBEDDING_DIMENSIONS_COUNT:
            errors.append(InvalidInputError)
        return errors + _nul_errors(name + content)

    def _upsert(self, state, now_ms, draft: Entity, *, must_exist: bool, keep_metadata: bool):
        existing = state.entities.get(draft.id)
        if existing is not None and state.is_corrupted(Tier.ARCHIVAL, draft.id):
            return [self._corrupt(state)]
        if existing is None and must_exist:
            return self._refuse(state, NotFoundError)
        entity = replace(draft, created_at=now_ms if existing is None else existing.created_at,
                         updated_at=now_ms,
                         metadata=existing.metadata if existing is not None and keep_metadata
                         else draft.metadata)
        state.entities[entity.id] = entity
        return [Alternative(entity, state, (Tier.ARCHIVAL, entity.id))]

    def _archival_remember(self, state, now_ms, content, entity_type, name=None):
        name = derive_name(content) if name is None else name
        if errors := self._entity_errors(entity_type, name, content):
            return self._refuse(state, *errors)
        entity_type = EntityType(entity_type)
        draft = Entity(entity_type, name, content, entity_id(self.agent, entity_type, name))
        return self._upsert(state, now_ms, draft, must_exist=False, keep_metadata=True)

    def _archival_store(self, state, now_ms, entity, must_exist=False):
        stored_text = entity.id + "".join(k + v for k, v in entity.metadata.items())
        if errors := self._entity_errors(entity.entity_type, entity.name, entity.content,
                                         entity.embedding) + _nul_errors(stored_text):
            return self._refuse(state, *errors)
        entity = replace(entity, entity_type=EntityType(entity.entity_type))
        if not entity.id:
            entity = replace(entity, id=entity_id(self.agent, entity.entity_type, entity.name))
        return self._upsert(state, now_ms, entity, must_exist=must_exist, keep_metadata=False)

    def _archival_update(self, state, now_ms, entity):
        return self._archival_store(state, now_ms, entity, must_exist=True)

    def _archival_get(self, state, now_ms, entity_id):
        if entity_id in state.entities and state.is_corrupted(Tier.ARCHIVAL, entity_id):
            return [self._corrupt(state)]
        return [Alternative(state.entities.get(entity_id), state)]

    def _archival_forget(self, state, now_ms, entity_id):
        damaged = entity_id in state.entities and state.is_corrupted(Tier.ARCHIVAL, entity_id)
        before = state.copy()
        existed = state.entities.pop(entity_id, None) is not None
        state.corrupted.discard((Tier.ARCHIVAL, entity_id))
        forgotten = Alternative(existed, state)
        return [forgotten, self._corrupt(before)] if damaged else [forgotten]

    def _returned(self, state: ModelState, entities: list[Entity]) -> list[Alternative]:
        """A listing returns its rows, or refuses if any of them is damaged."""
        if any(state.is_corrupted(Tier.ARCHIVAL, e.id) for e in entities):
            return [self._corrupt(state)]
        return [Alternative(entities, state)]

    def _archival_list(self, state, now_ms, entity_type=None, limit=100, offset=0):
        if not 0 <= limit <= ENTITY_LIST_COUNT_MAX or offset < 0:
            return self._refuse(state, InvalidInputError)
        entity_type = None if entity_type is None else EntityType(entity_type)
        return self._returned(state, state.entities_in_order(entity_type)[offset:offset + limit])

    def _archival_count(self, state, now_ms, entity_type=None):
        entity_type = None if entity_type is None else EntityType(entity_type)
        return [Alternative(len(state.entities_of(entity_type)), state)]

    def _archival_search(self, state, now_ms, query, entity_type=None,
                         limit=SEARCH_RESULTS_COUNT_MAX):
        if _utf8_len(query) > SEARCH_QUERY_BYTES_MAX or not 1 <= limit <= SEARCH_RESULTS_COUNT_MAX:
            return self._refuse(state, InvalidInputError)
        if not query:
            return [Alternative([], state)]
        entity_type = None if entity_type is None else EntityType(entity_type)
        folded = query.casefold()
        hits = [e for e in state.entities_of(entity_type)
                if folded in _folded(e.name) or folded in _folded(e.content)]
        hits.sort(key=_archival_order)  # a total order: sorting the hits sorts as before
        return self._returned(state, hits[:limit])
