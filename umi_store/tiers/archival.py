"""Archival memory: searchable long-term entities (SPEC §2.3)."""

from __future__ import annotations

import builtins
import inspect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from ..backends.base import Tx
from .. import similarity
from ..backends.shortcuts import EntityForget, EntityPut, EntityPutMany
from ..constants import (ENTITY_CONTENT_BYTES_MAX,
                         ENTITY_LIST_COUNT_MAX, ENTITY_NAME_BYTES_MAX,
                         ENTITY_NAME_DERIVED_CHARS_MAX, SEARCH_QUERY_BYTES_MAX,
                         SEARCH_RESULTS_COUNT_MAX, SIMILAR_RESULTS_COUNT_MAX)
from ..errors import InvalidInputError, LimitExceededError, NotFoundError
from ..models import ChangeKind, HistoryRecord, Entity, EntityType, Tier, checked_text, parse_enum
from ..validation import (entity_argument, metadata_argument, optional_text_argument,
                          optional_whole_number_argument, text_argument,
                          whole_number_argument)
from .context import TierContext
from .history import entity_from_record, record_change, record_entity, restorable, stamp

ENTITY_ID_NAMESPACE = uuid.UUID("6f1d2a3e-4b5c-5d6e-8f70-8192a3b4c5d6")


def entity_id(agent: str, entity_type: EntityType, name: str) -> str:
    """The deterministic id of (agent, type, name): UUIDv5 of `agent:type:name`."""
    return str(uuid.uuid5(ENTITY_ID_NAMESPACE, f"{agent}:{entity_type}:{name}"))


def derive_name(content: str) -> str:
    """First line, trimmed: whole up to 50 characters, else cut at a word with "..." (still
    at most 50 characters)."""
    line = content.strip().split("\n", 1)[0].strip()
    if len(line) <= ENTITY_NAME_DERIVED_CHARS_MAX:
        return line
    head = line[:ENTITY_NAME_DERIVED_CHARS_MAX - 2]  # one past the room, to see a word end
    cut = head.rsplit(" ", 1)[0] if " " in head else head[:-1]
    return cut.rstrip() + "..."


def _checked_id(entity_id: str) -> str:
    if not isinstance(entity_id, str):
        raise InvalidInputError("an entity id must be text")
    return checked_text(entity_id, "an entity id")


def _checked(entity: Entity) -> Entity:
    entity_type = parse_enum(EntityType, entity.entity_type, "entity type")
    if not isinstance(entity.name, str) or not entity.name.strip():
        raise InvalidInputError("an entity needs a non-empty name")
    if len(entity.name.encode()) > ENTITY_NAME_BYTES_MAX:
        raise LimitExceededError(f"name is {len(entity.name.encode())} bytes; the limit is "
                                 f"{ENTITY_NAME_BYTES_MAX}")
    if not isinstance(entity.content, str):
        raise InvalidInputError("entity content must be text")
    if len(entity.content.encode()) > ENTITY_CONTENT_BYTES_MAX:
        raise LimitExceededError(f"content is {len(entity.content.encode())} bytes; the limit "
                                 f"is {ENTITY_CONTENT_BYTES_MAX}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in entity.metadata.items()):
        raise InvalidInputError("an entity's metadata must map text to text")
    _checked_id(entity.id)
    checked_text(entity.name, "an entity name")
    checked_text(entity.content, "entity content")
    for key, value in entity.metadata.items():
        checked_text(key + value, f"metadata {key!r}")
    if entity.embedding is not None:
        similarity.checked_embedding(entity.embedding, "an embedding")
    return replace(entity, entity_type=entity_type)


def _stamped(entity: Entity, existing: Entity | None, now: int, keep_metadata: bool) -> Entity:
    """`entity` as stored at `now` over `existing`: created_at kept, and with
    `keep_metadata` the metadata too."""
    stored = replace(entity, created_at=existing.created_at if existing else now, updated_at=now,
                     metadata=existing.metadata if existing and keep_metadata
                     else entity.metadata)
    assert stored.created_at <= stored.updated_at, "created before updated"
    return stored


class ArchivalMemory:
    def __init__(self, context: TierContext) -> None:
        self._context = context

    def _draft(self, content: str, entity_type: EntityType | str, name: str | None,
               metadata: Mapping[str, str] | None,
               embedding: Sequence[float] | None = None) -> Entity:
        entity_type = parse_enum(EntityType, entity_type, "entity type")
        content = text_argument(content, "content")
        name = optional_text_argument(name, "name")
        metadata = metadata_argument(metadata, "metadata")
        name = derive_name(content) if name is None else name
        if not name.strip():
            raise InvalidInputError("nothing to remember: the content and the name are empty")
        return Entity(entity_type, name, content, entity_id(self._context.agent, entity_type, name),
                      metadata or {}, cast(Any, embedding))  # Entity checks the numbers

    async def remember(self, content: str, entity_type: EntityType | str,
                       name: str | None = None,
                       metadata: Mapping[str, str] | None = None,
                       embedding: Sequence[float] | None = None) -> Entity:
        """Store `content`; the same (type, name) updates the entity it named before.
        `embedding` (EMBEDDING_DIMENSIONS_COUNT numbers) is what `similar` compares."""
        draft = self._draft(content, entity_type, name, metadata, embedding)
        return await self._upsert(draft, must_exist=False, keep_metadata=metadata is None)

    async def remember_many(self, items: Iterable[tuple]) -> list[Entity]:
        """`remember` each item, `(content, entity_type[, name[, metadata]])`, in one
        transaction: all of them, or none when any is refused."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise InvalidInputError("items must be an iterable of "
                                    "(content, entity_type[, name[, metadata]]) tuples")
        drafts: list[tuple[Entity, bool]] = []
        for item in items:
            if not isinstance(item, tuple) or not 2 <= len(item) <= 4:
                raise InvalidInputError("each of the items is a tuple "
                                        "(content, entity_type[, name[, metadata]])")
            content, entity_type, name, metadata = item + (None,) * (4 - len(item))
            drafts.append((_checked(self._draft(content, entity_type, name, metadata)),
                           metadata is None))
        if not drafts:
            return []
        ctx = self._context
        drafts = [(await self._embedded(draft), keep) for draft, keep in drafts]

        async def body(tx: Tx) -> list[Entity]:
            existing = await tx.entity_get_many({draft.id for draft, _ in drafts})
            now = ctx.clock.now_ms()
            stored = []
            for draft, keep_metadata in drafts:
                entity = _stamped(draft, existing.get(draft.id), now, keep_metadata)
                existing[entity.id] = entity  # a later item of the same name updates it
                stored.append(entity)
            await tx.entity_put_many(stored)
            for entity in stored:
                await record_entity(tx, ctx, entity)
            return stored
        return await ctx.write(body, lambda backend: backend.shortcut(
            ctx.agent, EntityPutMany(**stamp(ctx), entities=drafts)))

    async def store(self, entity: Entity) -> Entity:
        """Upsert by id; an entity without an id gets its deterministic one."""
        entity = entity_argument(entity, "entity")
        return await self._upsert(entity, must_exist=False, keep_metadata=False)

    async def update(self, entity: Entity) -> Entity:
        """Replace an existing entity; NotFoundError if its id is unknown."""
        entity = entity_argument(entity, "entity")
        return await self._upsert(entity, must_exist=True, keep_metadata=False)

    async def _embedded(self, entity: Entity) -> Entity:
        """`entity` with the open_store `embed` hook's embedding when it has none."""
        embed = self._context.embed
        if embed is None or entity.embedding is not None:
            return entity
        embedding = embed(entity.content)
        if inspect.isawaitable(embedding):
            embedding = await embedding
        return _checked(replace(entity, embedding=cast(Any, embedding)))

    async def _upsert(self, entity: Entity, *, must_exist: bool, keep_metadata: bool) -> Entity:
        entity = await self._embedded(_checked(entity))
        ctx = self._context
        if not entity.id:
            entity = replace(entity, id=entity_id(ctx.agent, entity.entity_type, entity.name))

        async def body(tx: Tx) -> Entity:
            existing = await tx.entity_get(entity.id)
            if existing is None and must_exist:
                raise NotFoundError(f"no entity with id {entity.id}")
            stored = _stamped(entity, existing, ctx.clock.now_ms(), keep_metadata)
            await tx.entity_put(stored)
            await record_entity(tx, ctx, stored)
            return stored
        return await ctx.write(body, lambda backend: backend.shortcut(ctx.agent, EntityPut(
            **stamp(ctx), entity=entity, must_exist=must_exist, keep_metadata=keep_metadata)))

    async def get(self, entity_id: str) -> Entity | None:
        entity_id = _checked_id(entity_id)
        return await self._context.read(lambda tx: tx.entity_get(entity_id))

    async def forget(self, entity_id: str) -> bool:
        """Remove an entity; whether it existed."""
        entity_id = _checked_id(entity_id)
        ctx = self._context

        async def body(tx: Tx) -> bool:
            existed = await tx.entity_delete(entity_id)
            if existed:
                # The name it had, so a list of forgotten entities can say what they were.
                last = await tx.history_list(Tier.ARCHIVAL, entity_id, 1)
                named = {k: last[0].metadata[k] for k in ("name", "entity_type")
                         if last and k in last[0].metadata}
                await record_change(tx, ctx, Tier.ARCHIVAL, ChangeKind.DELETE, entity_id,
                                    ctx.clock.now_ms(), None, named)
            return existed
        return await ctx.write(body, lambda backend: backend.shortcut(
            ctx.agent, EntityForget(**stamp(ctx), entity_id=entity_id)))

    async def restore(self, entity_id: str, version: int, *,
                      if_version: int | None = None) -> Entity:
        """Store the entity as history `version` of it left it, as a new version; a
        forgotten entity comes back (without its embedding, which history does not keep).
        With `if_version` (the newest history version you saw), ConflictError if the entity
        changed since."""
        entity_id = _checked_id(entity_id)
        version = whole_number_argument(version, "version")
        if_version = optional_whole_number_argument(if_version, "if_version")
        ctx = self._context

        async def body(tx: Tx) -> Entity:
            record = await restorable(tx, Tier.ARCHIVAL, entity_id, version, if_version)
            old = entity_from_record(record)
            existing = await tx.entity_get(entity_id)
            stored = _stamped(replace(old, embedding=existing.embedding if existing else None),
                              existing, ctx.clock.now_ms(), keep_metadata=False)
            if existing is None:
                stored = replace(stored, created_at=min(old.created_at, stored.updated_at))
            await tx.entity_put(stored)
            await record_entity(tx, ctx, stored)
            return stored
        return await ctx.write(body)

    async def forgotten(self, limit: int = 100) -> builtins.list[HistoryRecord]:
        """Entities forgotten and not stored again, most recently forgotten first: each
        one's `delete` record (metadata: the name and entity_type it had). Restore one with
        `restore(record.key, record.version - 1)`."""
        if not 1 <= whole_number_argument(limit, "limit") <= ENTITY_LIST_COUNT_MAX:
            raise InvalidInputError(f"limit must be 1–{ENTITY_LIST_COUNT_MAX}, got {limit!r}")
        now = self._context.clock.now_ms()
        newest = await self._context.read(lambda tx: tx.history_newest(Tier.ARCHIVAL, now))
        deletes = [r for r in newest if r.kind is ChangeKind.DELETE]
        return sorted(deletes, key=lambda r: (-r.at_ms, r.key))[:limit]

    async def list(self, entity_type: EntityType | str | None = None, limit: int = 100,
                   offset: int = 0) -> list[Entity]:
        """Entities newest first (updated_at descending, then id)."""
        entity_type = None if entity_type is None else parse_enum(EntityType, entity_type,
                                                                  "entity type")
        if not 0 <= whole_number_argument(limit, "limit") <= ENTITY_LIST_COUNT_MAX:
            raise InvalidInputError(f"limit must be 0–{ENTITY_LIST_COUNT_MAX}, got {limit!r}")
        if whole_number_argument(offset, "offset") < 0:
            raise InvalidInputError(f"offset must be a whole number ≥ 0, got {offset!r}")
        return await self._context.read(lambda tx: tx.entity_list(entity_type, limit, offset))

    async def count(self, entity_type: EntityType | str | None = None) -> int:
        entity_type = None if entity_type is None else parse_enum(EntityType, entity_type,
                                                                  "entity type")
        return await self._context.read(lambda tx: tx.entity_count(entity_type))

    async def search(self, query: str, entity_type: EntityType | str | None = None,
                     limit: int = SEARCH_RESULTS_COUNT_MAX,
                     vector: Sequence[float] | None = None) -> builtins.list[Entity]:
        """Case-insensitive literal substring search of name and content, newest first.

        With `vector`, the text hits and the `limit` entities most similar to it are
        fused by reciprocal rank: each scores Σ 1/(SEARCH_FUSION_RANK_OFFSET + rank) over
        the two lists it is in (rank 1-based); best first, ties by id. An empty query
        then ranks by the vector alone."""
        query = text_argument(query, "query")
        if len(query.encode()) > SEARCH_QUERY_BYTES_MAX:
            raise InvalidInputError(f"query is {len(query.encode())} bytes; the limit is "
                                    f"{SEARCH_QUERY_BYTES_MAX}")
        if not 1 <= whole_number_argument(limit, "limit") <= SEARCH_RESULTS_COUNT_MAX:
            raise InvalidInputError(f"limit must be 1–{SEARCH_RESULTS_COUNT_MAX}, got {limit!r}")
        entity_type = None if entity_type is None else parse_enum(EntityType, entity_type,
                                                                  "entity type")
        unit = None if vector is None else similarity.unit_query(vector, "vector")
        hits = await self._text_hits(query, entity_type, limit)
        if unit is None:
            return hits
        near = await self._context.read(lambda tx: self._similar(tx, unit, limit,
                                                                  entity_type, None))
        return similarity.fused([hits, [entity for entity, _ in near]], limit)

    async def _text_hits(self, query: str, entity_type: EntityType | None,
                         limit: int) -> builtins.list[Entity]:
        if not query or "\x00" in query:
            return []  # nothing stored holds NUL
        folded = query.casefold()
        hits = await self._context.read(lambda tx: tx.entity_search(folded, entity_type, limit))
        assert len(hits) <= limit, "never more hits than asked for"
        return hits

    async def similar(self, vector_or_entity_id: Sequence[float] | str, k: int = 10,
                      entity_type: EntityType | str | None = None,
                      ) -> builtins.list[tuple[Entity, float]]:
        """The k entities whose embeddings are most similar to a vector, or to the embedding
        of the entity with that id (which is left out of its own answer): (entity, cosine)
        pairs, best first, ties by id. Exact, on every backend (umi_store.similarity).
        Needs numpy (the `similarity` extra)."""
        if not 1 <= whole_number_argument(k, "k") <= SIMILAR_RESULTS_COUNT_MAX:
            raise InvalidInputError(f"k must be 1–{SIMILAR_RESULTS_COUNT_MAX}, got {k!r}")
        entity_type = None if entity_type is None else parse_enum(EntityType, entity_type,
                                                                  "entity type")
        similarity.numpy_or_error()
        if isinstance(vector_or_entity_id, str):
            entity_id = _checked_id(vector_or_entity_id)

            async def by_entity(tx: Tx) -> builtins.list[tuple[Entity, float]]:
                entity = await tx.entity_get(entity_id)
                if entity is None:
                    raise NotFoundError(f"no entity with id {entity_id}")
                if entity.embedding is None:
                    raise InvalidInputError(f"entity {entity.name!r} has no embedding to "
                                            "compare")
                return await self._similar(tx, similarity.unit_query(
                    entity.embedding, "the entity's embedding"), k, entity_type, entity_id)
            return await self._context.read(by_entity)
        unit = similarity.unit_query(vector_or_entity_id, "vector_or_entity_id")
        return await self._context.read(lambda tx: self._similar(tx, unit, k, entity_type, None))

    async def _similar(self, tx: Tx, unit: similarity.Vector, k: int,
                       entity_type: EntityType | None,
                       exclude_id: str | None) -> builtins.list[tuple[Entity, float]]:
        index = await self._sketch_index(tx)
        candidates = index.candidates(unit, k, None if entity_type is None else
                                      entity_type.value, exclude_id)
        scored = similarity.best(unit, await tx.entity_embeddings(candidates), k)
        found = await tx.entity_get_many(entity_id for entity_id, _ in scored)
        return [(found[entity_id], score) for entity_id, score in scored]

    async def _sketch_index(self, tx: Tx) -> similarity.SketchIndex:
        """The agent's sketches: the cached index while the embeddings are unchanged. Not
        cached inside a batch, whose writes may yet roll back."""
        ctx = self._context
        version = await tx.entity_vectors_version()  # before the rows: never older than them
        cached = similarity.cached_index(ctx.backend, ctx.agent)
        if cached is not None and cached.version == version:
            return cached
        index = similarity.SketchIndex.build(version, await tx.entity_sketches())
        if ctx.batch is None:
            similarity.cache_index(ctx.backend, ctx.agent, index)
        return index
