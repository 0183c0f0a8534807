"""Requests a backend may answer in one round trip: the common case of a write, whole.

A tier hands one of these to `Backend.shortcut` before running its body. A backend that
can (Postgres, through server-side functions) applies the change with its history record
and change event and returns the result; None means "run the body": the backend has no
shortcut, or this case needs the full rule (a refusal, a reclaim, a duplicate in a batch),
and then nothing was changed. A shortcut never raises a rule's error itself: the body,
which holds the rule, decides every refusal and its message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from ..models import BlockType, Entity, MemoryBlock, WorkingEntry

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Shortcut(Generic[T]):
    """A write described for a backend: what it returns is a T (or None: run the body)."""

    actor: str  # who the history record names
    now_ms: int
    history_limits: tuple[int, int, int]  # as Tx.history_append takes them


@dataclass(frozen=True, slots=True)
class CorePut(Shortcut[MemoryBlock]):
    """core.set_block: label/importance None keep the stored ones (label "" clears it)."""

    block_type: BlockType
    content: str
    label: str | None
    importance: float | None
    if_version: int | None
    core_size_bytes_max: int


@dataclass(frozen=True, slots=True)
class CoreDelete(Shortcut[bool]):
    block_type: BlockType


@dataclass(frozen=True, slots=True)
class WorkingDelete(Shortcut[bool]):
    """working.delete: a lapsed key is removed too (an `expired` change by
    `expiry_actor`); True if the key was live."""

    key: str
    expiry_actor: str


@dataclass(frozen=True, slots=True)
class WorkingPutMany(Shortcut[list[WorkingEntry]]):
    """working.set_many when every entry fits without reclaiming expired keys."""

    entries: list[WorkingEntry]
    size_bytes_max: int
    entries_max: int


@dataclass(frozen=True, slots=True)
class EntityPut(Shortcut[Entity]):
    """remember / store / update: created_at kept, metadata kept with `keep_metadata`."""

    entity: Entity
    must_exist: bool
    keep_metadata: bool


@dataclass(frozen=True, slots=True)
class EntityPutMany(Shortcut[list[Entity]]):
    """remember_many, when no two items name the same entity."""

    entities: list[tuple[Entity, bool]]  # (draft, keep_metadata)


@dataclass(frozen=True, slots=True)
class EntityForget(Shortcut[bool]):
    entity_id: str


@dataclass(frozen=True, slots=True)
class CoreSetImportance(Shortcut[MemoryBlock]):
    block_type: BlockType
    importance: float


@dataclass(frozen=True, slots=True)
class WorkingRenew(Shortcut[bool]):
    """touch (ttl_ms None: the entry's own TTL again) or expire (a new TTL; zero or less
    deletes the key); True if the key was live."""

    key: str
    ttl_ms: int | None


@dataclass(frozen=True, slots=True)
class WorkingRemove(Shortcut[int]):
    """cleanup_expired (expired_only: up to `limit` lapsed keys, earliest deadline first,
    each an `expired` change by `actor`) or clear (every key, each a `delete`): how many
    keys were removed."""

    expired_only: bool
    limit: int | None
