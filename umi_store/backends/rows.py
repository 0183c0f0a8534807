"""Rows ↔ models for the SQL backends: one column order, one mapping, checksums first.

SQLite and Postgres keep the same tables and columns; they differ in placeholders
(`?` against `$1`) and in how an embedding is stored (JSON text against a float array),
which the caller states. A stored value is checked against its checksum before any model
is built from it, so damaged bytes never reach a caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .. import similarity
from ..integrity import checksum, damaged_bytes, damaged_text, verified, verified_text
from ..models import (BlockType, ChangeKind, Entity, EntityType, HistoryRecord, MemoryBlock,
                      StoredMetadata, Tier, WorkingEntry, history_size_bytes,
                      metadata_json)

CORE_COLUMNS = ("block_type", "content", "label", "importance", "version", "created_at",
                "updated_at", "checksum")
WORKING_COLUMNS = ("key", "value", "ttl_ms", "expires_at_ms", "updated_at", "checksum")
ENTITY_COLUMNS = ("id", "entity_type", "name", "content", "metadata", "embedding",
                  "created_at", "updated_at", "checksum")
HISTORY_COLUMNS = ("tier", "key", "version", "kind", "at_ms", "actor", "value", "metadata")
# What a put writes beyond the columns a read returns.
WORKING_PUT_COLUMNS = WORKING_COLUMNS + ("size_bytes",)
ENTITY_PUT_COLUMNS = ENTITY_COLUMNS + ("name_folded", "content_folded", "embedding_sketch",
                                       "embedding_exact")
# Schema 5: what archival.similar reads (umi_store.similarity), and the per-agent version
# of the embeddings its cache is checked against, kept by triggers.
ENTITY_SKETCH_SQL = ("SELECT id, entity_type, embedding_sketch, CASE WHEN embedding_sketch "
                     "IS NULL THEN embedding END FROM entities WHERE agent = {agent} "
                     "AND embedding IS NOT NULL")
ENTITY_EXACT_SQL = ("SELECT id, embedding_exact, CASE WHEN embedding_exact IS NULL THEN "
                    "embedding END FROM entities WHERE agent = {agent} AND id IN ({ids})")
ENTITY_VECTORS_VERSION_SQL = "SELECT version FROM entity_vectors_versions WHERE agent = {agent}"

Placeholder = Callable[[int], str]  # 1-based parameter number → its SQL placeholder


def columns(names: Sequence[str], table: str | None = None) -> str:
    """`names` as a SELECT list, each qualified by `table` when given."""
    return ", ".join(f"{table}.{name}" if table else name for name in names)


def upsert_sql(table: str, key: str, names: Sequence[str], placeholder: Placeholder,
               rows_count: int = 1) -> str:
    """INSERT of `rows_count` rows of (agent, *names), each replacing the row with the same
    (agent, `key`), one after the other (a later row of the same key replaces an earlier)."""
    every = ("agent", *names)
    values = ", ".join(
        "(" + ", ".join(placeholder(row * len(every) + i + 1) for i in range(len(every))) + ")"
        for row in range(rows_count))
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (f"INSERT INTO {table} ({', '.join(every)}) VALUES {values} "
            f"ON CONFLICT (agent, {key}) DO UPDATE SET {updates}")


def block_params(agent: str, block: MemoryBlock) -> tuple:
    return (agent, BlockType(block.block_type).value, block.content, block.label,
            float(block.importance), block.version, block.created_at, block.updated_at,
            checksum(block.content.encode()))


def entry_params(agent: str, entry: WorkingEntry) -> tuple:
    value = bytes(entry.value)
    return (agent, entry.key, value, entry.ttl_ms, entry.expires_at_ms, entry.updated_at,
            checksum(value), entry.size_bytes)


def entity_params(agent: str, entity: Entity, *, embedding_as_json: bool) -> tuple:
    """Every column of ENTITY_PUT_COLUMNS for `entity`: checksum and folded text included."""
    embedding: Any = None
    if entity.embedding is not None:
        embedding = [float(x) for x in entity.embedding]
        if embedding_as_json:
            embedding = json.dumps(embedding)
    return (agent, entity.id, EntityType(entity.entity_type).value, entity.name, entity.content,
            json.dumps(dict(entity.metadata), sort_keys=True, ensure_ascii=False), embedding,
            entity.created_at, entity.updated_at, checksum(entity.content.encode()),
            entity.name.casefold(), entity.content.casefold(), similarity.sketch(entity.embedding),
            similarity.exact_bytes(entity.embedding))


def block_from_row(row: Sequence[Any]) -> MemoryBlock:
    (block_type, content, label, importance, version, created_at, updated_at, sum_) = row
    verified_text(content, sum_, f"core block {block_type}")
    return MemoryBlock(BlockType(block_type), content, label, importance, version,
                       created_at, updated_at)


def entry_from_row(row: Sequence[Any]) -> WorkingEntry:
    key, value, ttl_ms, expires_at_ms, updated_at, sum_ = row
    value = bytes(value)
    verified(value, sum_, f"working key {key!r}")
    return WorkingEntry(key, value, ttl_ms, expires_at_ms, updated_at)


def entity_from_row(row: Sequence[Any]) -> Entity:
    (entity_id, entity_type, name, content, metadata, embedding, created_at, updated_at,
     sum_) = row
    verified_text(content, sum_, f"entity {entity_id}")
    if isinstance(embedding, str):
        embedding = json.loads(embedding)
    return Entity(entity_type=EntityType(entity_type), name=name, content=content, id=entity_id,
                  metadata=json.loads(metadata),
                  embedding=None if embedding is None else tuple(embedding),
                  created_at=created_at, updated_at=updated_at)


def history_params(agent: str, record: HistoryRecord, metadata: str | None = None) -> tuple:
    """(agent, tier, key, kind, at_ms, actor, value, metadata, size_bytes) of `record`;
    `metadata`, when given, is metadata_json(record.metadata) already made."""
    value = None if record.value is None else bytes(record.value)
    if metadata is None:
        metadata = metadata_json(record.metadata)  # once: it is the slow part of a record
    return (agent, Tier(record.tier).value, record.key, ChangeKind(record.kind).value,
            record.at_ms, record.actor, value, metadata,
            history_size_bytes(record.key, value, metadata))


_TIERS = {tier.value: tier for tier in Tier}
_KINDS = {kind.value: kind for kind in ChangeKind}


def history_from_row(row: Sequence[Any]) -> HistoryRecord:
    tier, key, version, kind, at_ms, actor, value, metadata = row
    return HistoryRecord(_TIERS[tier], key, version, _KINDS[kind], at_ms, actor,
                         None if value is None else bytes(value), StoredMetadata(metadata))


def history_prune_sql(placeholder: Placeholder) -> str:
    """DELETE of an agent's oldest records (never a key's newest), in (at_ms, tier, key,
    version) order, until the bytes removed reach the excess: (agent, excess)."""
    return (f"DELETE FROM history WHERE agent = {placeholder(1)} AND seq IN (SELECT seq FROM ("
            "SELECT h.seq, h.size_bytes, SUM(h.size_bytes) OVER "
            "(ORDER BY h.at_ms, h.tier, h.key, h.version) AS running FROM history AS h "
            f"WHERE h.agent = {placeholder(1)} AND h.version < (SELECT MAX(n.version) "
            "FROM history AS n WHERE n.agent = h.agent AND n.tier = h.tier AND n.key = h.key)"
            f") AS oldest WHERE oldest.running - oldest.size_bytes < {placeholder(2)})")


def history_newest_sql(placeholder: Placeholder) -> str:
    """Each key's newest record at or before a time: (agent, tier or NULL, at_ms)."""
    agent, tier, at_ms = placeholder(1), placeholder(2), placeholder(3)
    return (f"SELECT {columns(HISTORY_COLUMNS, 'h')} FROM history AS h "
            f"WHERE h.agent = {agent} AND ({tier} IS NULL OR h.tier = {tier}) "
            f"AND h.at_ms <= {at_ms} AND h.version = (SELECT MAX(n.version) FROM history AS n "
            f"WHERE n.agent = h.agent AND n.tier = h.tier AND n.key = h.key "
            f"AND n.at_ms <= {at_ms}) ORDER BY h.tier, h.key")


_CORRUPTIBLE = {Tier.CORE: ("core_blocks", "content", "block_type"),
                Tier.WORKING: ("working", "value", "key"),
                Tier.ARCHIVAL: ("entities", "content", "id")}


def corruption_sql(tier: Tier, key: str, placeholder: Placeholder) -> tuple[str, str, str]:
    """(SELECT of the stored value by agent and key, UPDATE setting it from the first
    parameter, the row's key) for damaging one row: fault injection."""
    table, column, key_column = _CORRUPTIBLE[Tier(tier)]
    select = (f"SELECT {column} FROM {table} WHERE agent = {placeholder(1)} "
              f"AND {key_column} = {placeholder(2)}")
    update = (f"UPDATE {table} SET {column} = {placeholder(1)} WHERE agent = {placeholder(2)} "
              f"AND {key_column} = {placeholder(3)}")
    return select, update, BlockType(key).value if tier is Tier.CORE else key


def damaged(stored: bytes | str) -> bytes | str:
    """The stored value with its first bit flipped, checksum left as it was."""
    return damaged_bytes(bytes(stored)) if isinstance(stored, (bytes, memoryview)) \
        else damaged_text(stored)
