"""History: every committed change of a core block, working key or entity is a version.

A tier records a change with `record_change`, inside the transaction that makes it: the
backend appends the version (and prunes, deterministically, to the named limits) and the
change event carries the actor and version. The same records answer `store.as_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..backends.base import Tx
from ..constants import (
    HISTORY_AGENT_SIZE_BYTES_MAX,
    HISTORY_AGENT_SIZE_BYTES_PRUNED,
    HISTORY_KEY_VERSIONS_COUNT_MAX,
)
from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..models import (
    BlockType,
    ChangeEvent,
    ChangeKind,
    Entity,
    EntityType,
    HistoryRecord,
    MemoryBlock,
    Tier,
    WorkingEntry,
)
from .context import TierContext

EXPIRY_ACTOR = "clock"  # who a TTL expiry is attributed to
# (versions per key, agent bytes that start a prune, agent bytes a prune leaves)
HISTORY_LIMITS = (HISTORY_KEY_VERSIONS_COUNT_MAX, HISTORY_AGENT_SIZE_BYTES_MAX,
                  HISTORY_AGENT_SIZE_BYTES_PRUNED)


def stamp(ctx: TierContext) -> dict[str, Any]:
    """What every backend shortcut (umi_store.backends.shortcuts) takes: the actor, the
    time of the change and the history limits in force."""
    return {"actor": ctx.actor, "now_ms": ctx.clock.now_ms(), "history_limits": HISTORY_LIMITS}


async def record_change(tx: Tx, ctx: TierContext, tier: Tier, kind: ChangeKind, key: str,
                        at_ms: int, value: bytes | None = None,
                        metadata: Mapping[str, Any] | None = None) -> ChangeEvent:
    """Append the change to the key's history and queue its event; the event."""
    actor = EXPIRY_ACTOR if kind is ChangeKind.EXPIRED else ctx.actor
    draft = HistoryRecord(tier, key, 0, kind, at_ms, actor, value, metadata or {})
    version = await tx.history_append(draft, *HISTORY_LIMITS)
    assert version >= 1, "versions count from 1"
    event = ChangeEvent(tier, kind, key, at_ms, actor, version)
    tx.emit(event)
    return event


async def record_block(tx: Tx, ctx: TierContext, block: MemoryBlock) -> ChangeEvent:
    return await record_change(tx, ctx, Tier.CORE, ChangeKind.SET, block.block_type.value,
                               block.updated_at, block.content.encode(),
                               {"label": block.label, "importance": block.importance,
                                "created_at": block.created_at,
                                "block_version": block.version})


def entry_record(ctx: TierContext, entry: WorkingEntry,
                 metadata: Mapping[str, Any] | None = None) -> HistoryRecord:
    """The history record of setting `entry` (its version is the backend's to give);
    `metadata`, when given, is the entry's TTL mapping already made."""
    return HistoryRecord(Tier.WORKING, entry.key, 0, ChangeKind.SET, entry.updated_at,
                         ctx.actor, bytes(entry.value), metadata or
                         {"ttl_ms": entry.ttl_ms, "expires_at_ms": entry.expires_at_ms})


async def record_entries(tx: Tx, ctx: TierContext, entries: list[WorkingEntry]) -> None:
    """record_entry of each entry, in one call to the backend."""
    shared: dict[tuple[int, int], Mapping[str, Any]] = {}  # one mapping per distinct TTL
    drafts = [entry_record(ctx, entry, shared.setdefault(
        (entry.ttl_ms, entry.expires_at_ms),
        {"ttl_ms": entry.ttl_ms, "expires_at_ms": entry.expires_at_ms})) for entry in entries]
    versions = await tx.history_append_many(drafts, *HISTORY_LIMITS)
    assert len(versions) == len(drafts) and min(versions, default=1) >= 1, "one version each"
    for draft, version in zip(drafts, versions):
        tx.emit(ChangeEvent(Tier.WORKING, ChangeKind.SET, draft.key, draft.at_ms, draft.actor,
                            version))


async def record_entry(tx: Tx, ctx: TierContext, entry: WorkingEntry) -> ChangeEvent:
    draft = entry_record(ctx, entry)
    return await record_change(tx, ctx, Tier.WORKING, ChangeKind.SET, entry.key,
                               entry.updated_at, draft.value, draft.metadata)


async def record_entity(tx: Tx, ctx: TierContext, entity: Entity) -> ChangeEvent:
    return await record_change(tx, ctx, Tier.ARCHIVAL, ChangeKind.SET, entity.id,
                               entity.updated_at, entity.content.encode(),
                               {"entity_type": EntityType(entity.entity_type).value,
                                "name": entity.name, "metadata": dict(entity.metadata),
                                "created_at": entity.created_at})


def block_from_record(record: HistoryRecord) -> MemoryBlock:
    """The block as the record left it (a SET record)."""
    assert record.kind is ChangeKind.SET and record.value is not None, "a set holds the state"
    meta = record.metadata
    return MemoryBlock(BlockType(record.key), record.value.decode(), meta.get("label"),
                       float(meta.get("importance", 0.5)), int(meta.get("block_version", 1)),
                       int(meta.get("created_at", record.at_ms)), record.at_ms)


def entry_from_record(record: HistoryRecord) -> WorkingEntry:
    assert record.kind is ChangeKind.SET and record.value is not None, "a set holds the state"
    meta = record.metadata
    return WorkingEntry(record.key, record.value, int(meta["ttl_ms"]),
                        int(meta["expires_at_ms"]), record.at_ms)


def entity_from_record(record: HistoryRecord) -> Entity:
    """The entity as the record left it; its embedding is not kept in history."""
    assert record.kind is ChangeKind.SET and record.value is not None, "a set holds the state"
    meta = record.metadata
    return Entity(EntityType(meta["entity_type"]), meta["name"], record.value.decode(),
                  record.key, meta.get("metadata") or {}, None,
                  int(meta.get("created_at", record.at_ms)), record.at_ms)


async def restorable(tx: Tx, tier: Tier, key: str, version: int,
                     if_version: int | None) -> HistoryRecord:
    """The SET record of `version`, checked against the version lock: with `if_version`,
    ConflictError unless the key's newest version is still that one."""
    newest = await tx.history_list(tier, key, 1)
    current = newest[0].version if newest else 0
    if if_version is not None and if_version != current:
        raise ConflictError(f"{tier} {key!r} is at version {current}, not {if_version}: it "
                            "changed since you read it")
    record = await tx.history_get(tier, key, version)
    if record is None:
        raise NotFoundError(f"{tier} {key!r} has no version {version} in its history")
    if record.kind is not ChangeKind.SET:
        raise InvalidInputError(f"version {version} of {tier} {key!r} is its {record.kind}; "
                                "restore a version that holds content")
    return record
