"""The Postgres backend: an asyncpg pool, every row scoped by agent, LISTEN/NOTIFY changes.

Same semantics as the simulator (umi_store.backends.sim): checksums beside stored values,
archival order updated_at descending then id (COLLATE "C", so code-point order), literal
substring search on casefolded text served by pg_trgm GIN indexes. Writers for one agent
are serialised across processes by a transaction-scoped advisory lock on the agent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg

from ..errors import StorageError, StoreUnavailableError
from ..models import (AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity, EntityType,
                      HistoryRecord, MemoryBlock, Tier, WorkingEntry)
from . import rows
from .agents import agent_tier_sql, summaries_from_tiers
from .base import ChangeHub, Tx

T = TypeVar("T")

SCHEMA_VERSION = 4
POSTGRES_POOL_CONNECTIONS_MAX = 8
POSTGRES_CONNECT_TIMEOUT_SECS = 10
POSTGRES_COMMAND_TIMEOUT_SECS = 60
CHANGE_FEED_CHANNEL = "umi_changes"
CHANGE_FEED_PAYLOAD_BYTES_MAX = 7900  # Postgres refuses a NOTIFY payload of 8000 bytes
CHANGE_FEED_RECONNECT_DELAY_SECS = 0.5

_MIGRATION_LOCK_KEY = 0x756D69  # "umi": one advisory lock guards every migration
_log = logging.getLogger("umi_store")

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS core_blocks (
            agent TEXT NOT NULL,
            block_type TEXT NOT NULL,
            content TEXT NOT NULL,
            label TEXT,
            importance DOUBLE PRECISION NOT NULL,
            version BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            checksum BIGINT NOT NULL,
            PRIMARY KEY (agent, block_type)
        )""",
        """CREATE TABLE IF NOT EXISTS working (
            agent TEXT NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value BYTEA NOT NULL,
            ttl_ms BIGINT NOT NULL,
            expires_at_ms BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            checksum BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            PRIMARY KEY (agent, key)
        )""",
        "CREATE INDEX IF NOT EXISTS working_expiry ON working (agent, expires_at_ms)",
        """CREATE TABLE IF NOT EXISTS entities (
            agent TEXT NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            entity_type TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            metadata TEXT NOT NULL,
            embedding DOUBLE PRECISION[],
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            checksum BIGINT NOT NULL,
            name_folded TEXT NOT NULL,
            content_folded TEXT NOT NULL,
            PRIMARY KEY (agent, id)
        )""",
        "CREATE INDEX IF NOT EXISTS entities_recent ON entities (agent, updated_at DESC, id)",
        "CREATE INDEX IF NOT EXISTS entities_name_trgm ON entities "
        "USING gin (name_folded gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS entities_content_trgm ON entities "
        "USING gin (content_folded gin_trgm_ops)",
    ],
    # Per-agent working-memory totals kept by a trigger, so the size check every write
    # makes reads one row instead of summing every entry. (TRUNCATE would bypass it.)
    2: [
        """CREATE TABLE IF NOT EXISTS working_totals (
            agent TEXT PRIMARY KEY,
            size_bytes BIGINT NOT NULL,
            entries BIGINT NOT NULL
        )""",
        """CREATE OR REPLACE FUNCTION umi_working_totals() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE working_totals SET size_bytes = size_bytes - OLD.size_bytes,
                    entries = entries - 1 WHERE agent = OLD.agent;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO working_totals AS t (agent, size_bytes, entries)
                VALUES (NEW.agent, NEW.size_bytes, 1)
                ON CONFLICT (agent) DO UPDATE SET size_bytes = t.size_bytes + NEW.size_bytes,
                    entries = t.entries + 1;
            END IF;
            RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS working_totals ON working",
        "CREATE TRIGGER working_totals AFTER INSERT OR UPDATE OR DELETE ON working "
        "FOR EACH ROW EXECUTE FUNCTION umi_working_totals()",
        "INSERT INTO working_totals (agent, size_bytes, entries) "
        "SELECT agent, SUM(size_bytes), COUNT(*) FROM working GROUP BY agent "
        "ON CONFLICT (agent) DO NOTHING",
    ],
    # working.set in one round trip, when the entry fits without reclaiming expired keys:
    # the agent's lock, the room check (tiers/working.py states the same rule), the upsert
    # and the NOTIFY, run in the caller's implicit transaction. False: nothing changed.
    3: [
        """CREATE OR REPLACE FUNCTION umi_working_put_if_room(
            p_agent text, p_lock_key bigint, p_key text, p_value bytea, p_ttl_ms bigint,
            p_expires_at_ms bigint, p_updated_at bigint, p_checksum bigint,
            p_size_bytes bigint, p_size_bytes_max bigint, p_entries_max bigint,
            p_channel text, p_payload text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
            replaced bigint;
            used bigint;
            entries bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT size_bytes INTO replaced FROM working WHERE agent = p_agent AND key = p_key;
            SELECT t.size_bytes, t.entries INTO used, entries FROM working_totals AS t
            WHERE t.agent = p_agent;
            used := COALESCE(used, 0) - COALESCE(replaced, 0) + p_size_bytes;
            entries := COALESCE(entries, 0) - (replaced IS NOT NULL)::int + 1;
            IF used > p_size_bytes_max OR entries > p_entries_max THEN
                RETURN false;
            END IF;
            INSERT INTO working AS w (agent, key, value, ttl_ms, expires_at_ms, updated_at,
                                      checksum, size_bytes)
            VALUES (p_agent, p_key, p_value, p_ttl_ms, p_expires_at_ms, p_updated_at,
                    p_checksum, p_size_bytes)
            ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value,
                ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms,
                updated_at = excluded.updated_at, checksum = excluded.checksum,
                size_bytes = excluded.size_bytes;
            PERFORM pg_notify(p_channel, p_payload);
            RETURN true;
        END $$""",
    ],
    # History: every committed change is a version (umi_store.tiers.history), appended and
    # pruned by umi_history_append in the round trip of its change; per-agent byte totals
    # kept by a trigger. working.set's one-round-trip form records its version too.
    4: [
        """CREATE TABLE IF NOT EXISTS history (
            seq BIGSERIAL PRIMARY KEY,
            agent TEXT NOT NULL,
            tier TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            version BIGINT NOT NULL,
            kind TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            value BYTEA,
            metadata TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            UNIQUE (agent, tier, key, version)
        )""",
        "CREATE INDEX IF NOT EXISTS history_time ON history (agent, at_ms)",
        """CREATE TABLE IF NOT EXISTS history_totals (
            agent TEXT PRIMARY KEY,
            size_bytes BIGINT NOT NULL
        )""",
        """CREATE OR REPLACE FUNCTION umi_history_totals() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                UPDATE history_totals SET size_bytes = size_bytes - OLD.size_bytes
                WHERE agent = OLD.agent;
            ELSE
                INSERT INTO history_totals AS t (agent, size_bytes)
                VALUES (NEW.agent, NEW.size_bytes)
                ON CONFLICT (agent) DO UPDATE SET size_bytes = t.size_bytes + NEW.size_bytes;
            END IF;
            RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS history_totals ON history",
        "CREATE TRIGGER history_totals AFTER INSERT OR DELETE ON history "
        "FOR EACH ROW EXECUTE FUNCTION umi_history_totals()",
        f"""CREATE OR REPLACE FUNCTION umi_history_append(
            p_agent text, p_tier text, p_key text, p_kind text, p_at_ms bigint,
            p_actor text, p_value bytea, p_metadata text, p_size_bytes bigint,
            p_versions_max bigint, p_bytes_max bigint, p_bytes_pruned bigint) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            appended bigint;
            total bigint;
        BEGIN
            SELECT COALESCE(MAX(version), 0) + 1 INTO appended FROM history
            WHERE agent = p_agent AND tier = p_tier AND key = p_key;
            INSERT INTO history (agent, tier, key, version, kind, at_ms, actor, value,
                                 metadata, size_bytes)
            VALUES (p_agent, p_tier, p_key, appended, p_kind, p_at_ms, p_actor, p_value,
                    p_metadata, p_size_bytes);
            IF appended > p_versions_max THEN
                DELETE FROM history WHERE agent = p_agent AND tier = p_tier AND key = p_key
                AND version <= appended - p_versions_max;
            END IF;
            SELECT size_bytes INTO total FROM history_totals WHERE agent = p_agent;
            IF total > p_bytes_max THEN
                {rows.history_prune_sql(lambda n: ("p_agent", "total - p_bytes_pruned")[n - 1])};
            END IF;
            RETURN appended;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_working_put_recorded(
            p_agent text, p_lock_key bigint, p_key text, p_value bytea, p_ttl_ms bigint,
            p_expires_at_ms bigint, p_updated_at bigint, p_checksum bigint,
            p_size_bytes bigint, p_size_bytes_max bigint, p_entries_max bigint,
            p_actor text, p_metadata text, p_record_bytes bigint, p_versions_max bigint,
            p_history_bytes_max bigint, p_history_bytes_pruned bigint,
            p_channel text, p_payload text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            appended bigint;
        BEGIN
            IF NOT umi_working_put_if_room(p_agent, p_lock_key, p_key, p_value, p_ttl_ms,
                    p_expires_at_ms, p_updated_at, p_checksum, p_size_bytes, p_size_bytes_max,
                    p_entries_max, p_channel, p_payload) THEN
                RETURN 0;
            END IF;
            RETURN umi_history_append(p_agent, 'working', p_key, 'set', p_updated_at,
                p_actor, p_value, p_metadata, p_record_bytes, p_versions_max,
                p_history_bytes_max, p_history_bytes_pruned);
        END $$""",
    ],
}
TABLES = ("core_blocks", "working", "entities")


def _dollar(number: int) -> str:
    return f"${number}"


ENTITY_COLUMNS = rows.columns(rows.ENTITY_COLUMNS)
ENTITY_PUT_SQL = rows.upsert_sql("entities", "id", rows.ENTITY_PUT_COLUMNS, _dollar)
ENTITY_SEARCH_SQL = (
    f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1 "
    "AND ($2::text IS NULL OR entity_type = $2) "
    "AND (name_folded LIKE '%' || $3 || '%' ESCAPE '\\' "
    "OR content_folded LIKE '%' || $3 || '%' ESCAPE '\\') "
    "ORDER BY updated_at DESC, id LIMIT $4")
_ENTITY_SELECT = f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1"
_CORE_SELECT = f"SELECT {rows.columns(rows.CORE_COLUMNS)} FROM core_blocks WHERE agent = $1"
_WORKING_SELECT = f"SELECT {rows.columns(rows.WORKING_COLUMNS)} FROM working WHERE agent = $1"
_CORE_PUT = rows.upsert_sql("core_blocks", "block_type", rows.CORE_COLUMNS, _dollar)
_WORKING_PUT = rows.upsert_sql("working", "key", rows.WORKING_PUT_COLUMNS, _dollar)
_HISTORY_APPEND = ("SELECT umi_history_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                   "$12)")
_HISTORY_SELECT = f"SELECT {rows.columns(rows.HISTORY_COLUMNS)} FROM history WHERE agent = $1"
_HISTORY_NEWEST = rows.history_newest_sql(lambda n: ("$1", "$2::text", "$3")[n - 1])

# SQLSTATEs after which a retry may succeed: serialization, deadlock, too many connections,
# the server shutting down or out of resources, a cancelled (timed-out) statement.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "53300", "53000", "57P01", "57P02", "57P03", "57014"}


def storage_error(exc: BaseException) -> StorageError:
    """The StorageError for an asyncpg, network or timeout failure during an operation."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = exc.sqlstate or ""
        transient = sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")
        return StorageError(f"postgres: {exc} (SQLSTATE {sqlstate})", transient=transient)
    # InternalClientError: asyncpg's protocol state broke, e.g. the server ended the session.
    return StorageError(f"postgres: connection lost or timed out: {type(exc).__name__} {exc}",
                        transient=True)


_CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
                      asyncio.TimeoutError)
_OPERATION_ERRORS = (asyncpg.PostgresError, *_CONNECTION_ERRORS)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except _OPERATION_ERRORS as exc:
        raise storage_error(exc) from exc


def like_literal(text: str) -> str:
    """Escape LIKE metacharacters (with ESCAPE '\\') so `text` matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def entity_row(agent: str, entity: Entity) -> tuple:
    """The parameters of ENTITY_PUT_SQL for `entity`: checksum and folded text included."""
    return rows.entity_params(agent, entity, embedding_as_json=False)


def agent_lock_key(agent: str) -> int:
    """The advisory lock key (a signed bigint) that serialises the writers of `agent`."""
    return int.from_bytes(hashlib.blake2b(agent.encode(), digest_size=8).digest(), "big",
                          signed=True)


def _row_count(status: str) -> int:
    """Rows touched, from a command status such as 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresTx:
    """One transaction on one pooled connection, bound to one agent.

    A write runs in BEGIN … COMMIT after taking the agent's advisory lock; a read runs its
    statements in autocommit (every read operation of the tiers is a single statement).
    """

    def __init__(self, conn: asyncpg.Connection, agent: str) -> None:
        self.agent = agent
        self._conn = conn
        self.events: list[ChangeEvent] = []

    def emit(self, event: ChangeEvent) -> None:
        self.events.append(event)

    async def _execute(self, sql: str, *params: Any) -> str:
        with _mapped_errors():
            return await self._conn.execute(sql, *params)

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        with _mapped_errors():
            return await self._conn.fetch(sql, *params)

    async def _fetchrow(self, sql: str, *params: Any) -> Any:
        with _mapped_errors():
            return await self._conn.fetchrow(sql, *params)

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        return await body(self)

    # core
    async def core_get(self, block_type: BlockType) -> MemoryBlock | None:
        row = await self._fetchrow(f"{_CORE_SELECT} AND block_type = $2",
                                   self.agent, BlockType(block_type).value)
        return None if row is None else rows.block_from_row(row)

    async def core_list(self) -> list[MemoryBlock]:
        return [rows.block_from_row(r) for r in await self._fetch(_CORE_SELECT, self.agent)]

    async def core_put(self, block: MemoryBlock) -> None:
        await self._execute(_CORE_PUT, *rows.block_params(self.agent, block))

    async def core_delete(self, block_type: BlockType) -> bool:
        status = await self._execute(
            "DELETE FROM core_blocks WHERE agent = $1 AND block_type = $2",
            self.agent, BlockType(block_type).value)
        return _row_count(status) > 0

    # working
    async def working_get(self, key: str) -> WorkingEntry | None:
        row = await self._fetchrow(f"{_WORKING_SELECT} AND key = $2", self.agent, key)
        return None if row is None else rows.entry_from_row(row)

    async def working_put(self, entry: WorkingEntry) -> None:
        await self._execute(_WORKING_PUT, *rows.entry_params(self.agent, entry))

    async def working_put_many(self, entries: list[WorkingEntry]) -> None:
        with _mapped_errors():
            await self._conn.executemany(_WORKING_PUT,
                                         [rows.entry_params(self.agent, e) for e in entries])

    async def working_sizes(self, keys: Iterable[str]) -> dict[str, int]:
        found = await self._fetch("SELECT key, size_bytes FROM working WHERE agent = $1 "
                                  "AND key = ANY($2::text[])", self.agent, list(keys))
        return {key: int(size) for key, size in found}

    async def working_delete(self, key: str) -> bool:
        status = await self._execute("DELETE FROM working WHERE agent = $1 AND key = $2",
                                     self.agent, key)
        return _row_count(status) > 0

    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        found = await self._fetch(
            f"{_WORKING_SELECT} AND starts_with(key, $2) AND expires_at_ms > $3 "
            "ORDER BY key LIMIT $4", self.agent, prefix, now_ms, max(0, limit))
        return [rows.entry_from_row(r) for r in found]

    async def working_usage(self, now_ms: int | None, exclude_key: str | None) -> tuple[int, int]:
        if now_ms is None:  # every stored entry: the kept totals, less the excluded key
            row = await self._fetchrow(
                "SELECT t.size_bytes - COALESCE(w.size_bytes, 0), "
                "t.entries - (w.key IS NOT NULL)::int FROM working_totals AS t "
                "LEFT JOIN working AS w ON w.agent = t.agent AND w.key = $2 "
                "WHERE t.agent = $1", self.agent, exclude_key)
        else:
            row = await self._fetchrow(
                "SELECT COALESCE(SUM(size_bytes), 0)::bigint, COUNT(*) FROM working "
                "WHERE agent = $1 AND ($2::text IS NULL OR key <> $2) "
                "AND expires_at_ms > $3", self.agent, exclude_key, now_ms)
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def working_delete_expired(self, now_ms: int, limit: int) -> list[str]:
        """Remove up to `limit` lapsed entries, earliest deadline first, then key order;
        return their keys in key order."""
        found = await self._fetch(
            "DELETE FROM working WHERE agent = $1 AND key IN (SELECT key FROM working "
            "WHERE agent = $1 AND expires_at_ms <= $2 ORDER BY expires_at_ms, key LIMIT $3) "
            "RETURNING key", self.agent, now_ms, max(0, limit))
        return sorted(r[0] for r in found)

    async def working_clear(self) -> list[str]:
        found = await self._fetch("DELETE FROM working WHERE agent = $1 RETURNING key",
                                  self.agent)
        return sorted(r[0] for r in found)

    # archival
    async def entity_get(self, entity_id: str) -> Entity | None:
        row = await self._fetchrow(f"{_ENTITY_SELECT} AND id = $2", self.agent, entity_id)
        return None if row is None else rows.entity_from_row(row)

    async def entity_get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        found = await self._fetch(f"{_ENTITY_SELECT} AND id = ANY($2::text[])", self.agent,
                                  list(entity_ids))
        entities = [rows.entity_from_row(r) for r in found]
        return {entity.id: entity for entity in entities}

    async def entity_put(self, entity: Entity) -> None:
        await self._execute(ENTITY_PUT_SQL, *entity_row(self.agent, entity))

    async def entity_put_many(self, entities: list[Entity]) -> None:
        with _mapped_errors():
            await self._conn.executemany(ENTITY_PUT_SQL,
                                         [entity_row(self.agent, e) for e in entities])

    async def entity_delete(self, entity_id: str) -> bool:
        status = await self._execute("DELETE FROM entities WHERE agent = $1 AND id = $2",
                                     self.agent, entity_id)
        return _row_count(status) > 0

    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        found = await self._fetch(
            f"{_ENTITY_SELECT} AND ($2::text IS NULL OR entity_type = $2) "
            "ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4",
            self.agent, _type_value(entity_type), max(0, limit), max(0, offset))
        return [rows.entity_from_row(r) for r in found]

    async def entity_count(self, entity_type: EntityType | None) -> int:
        row = await self._fetchrow(
            "SELECT COUNT(*) FROM entities WHERE agent = $1 "
            "AND ($2::text IS NULL OR entity_type = $2)", self.agent, _type_value(entity_type))
        return int(row[0])

    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        found = await self._fetch(ENTITY_SEARCH_SQL, self.agent, _type_value(entity_type),
                                  like_literal(folded_query), max(0, limit))
        return [rows.entity_from_row(r) for r in found]

    # history
    async def history_append(self, record: HistoryRecord, versions_max: int, bytes_max: int,
                             bytes_pruned: int) -> int:
        row = await self._fetchrow(_HISTORY_APPEND, *rows.history_params(self.agent, record),
                                   versions_max, bytes_max, bytes_pruned)
        return int(row[0])

    async def history_append_many(self, records: list[HistoryRecord], versions_max: int,
                                  bytes_max: int, bytes_pruned: int) -> list[int]:
        return [await self.history_append(r, versions_max, bytes_max, bytes_pruned)
                for r in records]

    async def history_list(self, tier: Tier, key: str, limit: int) -> list[HistoryRecord]:
        found = await self._fetch(f"{_HISTORY_SELECT} AND tier = $2 AND key = $3 "
                                  "ORDER BY version DESC LIMIT $4",
                                  self.agent, Tier(tier).value, key, max(0, limit))
        return [rows.history_from_row(r) for r in found]

    async def history_get(self, tier: Tier, key: str, version: int) -> HistoryRecord | None:
        row = await self._fetchrow(f"{_HISTORY_SELECT} AND tier = $2 AND key = $3 "
                                   "AND version = $4", self.agent, Tier(tier).value, key, version)
        return None if row is None else rows.history_from_row(row)

    async def history_since(self, at_ms: int, limit: int) -> list[HistoryRecord]:
        found = await self._fetch(f"{_HISTORY_SELECT} AND at_ms > $2 ORDER BY seq LIMIT $3",
                                  self.agent, at_ms, max(0, limit))
        return [rows.history_from_row(r) for r in found]

    async def history_newest(self, tier: Tier | None, at_ms: int) -> list[HistoryRecord]:
        found = await self._fetch(_HISTORY_NEWEST, self.agent,
                                  None if tier is None else Tier(tier).value, at_ms)
        return [rows.history_from_row(r) for r in found]

    # fault injection
    async def corrupt(self, tier: Tier, key: str) -> bool:
        select, update, key = rows.corruption_sql(tier, key, _dollar)
        row = await self._fetchrow(select, self.agent, key)
        if row is not None:
            await self._execute(update, rows.damaged(row[0]), self.agent, key)
        return row is not None


def _type_value(entity_type: EntityType | None) -> str | None:
    return None if entity_type is None else EntityType(entity_type).value


def change_payloads(origin: str, agent: str, events: list[ChangeEvent]) -> list[str]:
    """NOTIFY payloads (JSON, ASCII, each under CHANGE_FEED_PAYLOAD_BYTES_MAX) for `events`."""
    head = json.dumps({"origin": origin, "agent": agent})[:-1] + ', "events": ['
    payloads: list[str] = []
    items: list[str] = []
    size = 0  # of head + items + separators + "]}", were the payload closed now
    for event in events:
        item = json.dumps([event.tier.value, event.kind.value, event.key, event.at_ms,
                           event.actor, event.version])
        if items and size + 2 + len(item) > CHANGE_FEED_PAYLOAD_BYTES_MAX:
            payloads.append(head + ", ".join(items) + "]}")
            items = []
        size = (size + 2 if items else len(head) + 2) + len(item)
        items.append(item)
    if items:
        payloads.append(head + ", ".join(items) + "]}")
    assert all(len(p) <= CHANGE_FEED_PAYLOAD_BYTES_MAX for p in payloads), "payload fits NOTIFY"
    return payloads


def _unavailable(url: str, masked: str, exc: BaseException) -> StoreUnavailableError:
    """StoreUnavailableError naming the masked URL; the password never reaches the text."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        reason = "authentication failed (wrong user or password)"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "the database does not exist"
    elif isinstance(exc, (OSError, asyncio.TimeoutError)):
        reason = "the server is unreachable"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password or "", unquote(password or "")} - {""}:
        reason = reason.replace(secret, "***")
    return StoreUnavailableError(f"cannot open {masked}: {reason}")


class PostgresBackend:
    """A Postgres database behind an asyncpg pool, plus one LISTEN connection for changes."""

    def __init__(self, url: str, masked_url: str) -> None:
        self.url = url
        self.masked_url = masked_url
        self.changes = ChangeHub()
        self.origin = f"{os.getpid()}:{id(self)}"
        self._pool: asyncpg.Pool | None = None
        self._own: asyncpg.Connection | None = None  # a pooled connection kept for itself
        self._own_busy = False
        self._listener: asyncpg.Connection | None = None
        self._relisten: asyncio.Task | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: asyncpg.Pool | None = None
        listener: asyncpg.Connection | None = None
        try:
            pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=POSTGRES_POOL_CONNECTIONS_MAX,
                timeout=POSTGRES_CONNECT_TIMEOUT_SECS,
                command_timeout=POSTGRES_COMMAND_TIMEOUT_SECS, reset=_reset)
            async with pool.acquire() as conn:
                await self._migrate(conn)
            listener = await self._listen()
        except Exception as exc:  # noqa: BLE001 - every failure to open is "unavailable"
            failure = _unavailable(self.url, self.masked_url, exc)
            if listener is not None:
                listener.terminate()
            if pool is not None:
                pool.terminate()
        else:
            self._pool, self._listener = pool, listener
            return
        # Raised outside the handler, so no chained exception can carry the password.
        raise failure

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                               "version INTEGER PRIMARY KEY)")
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for version in sorted(v for v in _MIGRATIONS if v > current):
                for statement in _MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)

    async def _listen(self) -> asyncpg.Connection:
        """A connection of its own (not from the pool) that LISTENs for other origins."""
        listener = await asyncpg.connect(self.url, timeout=POSTGRES_CONNECT_TIMEOUT_SECS)
        try:
            await listener.add_listener(CHANGE_FEED_CHANNEL, self._on_notify)
        except BaseException:
            listener.terminate()
            raise
        listener.add_termination_listener(self._on_listener_lost)
        return listener

    def _on_listener_lost(self, conn: asyncpg.Connection) -> None:
        if conn is self._listener:
            self._listener = None
            self._relisten = asyncio.ensure_future(self._listen_again())

    async def _listen_again(self) -> None:
        """Reconnect the change feed after the server dropped it (changes in between are
        not replayed: NOTIFY keeps nothing for a listener that is away)."""
        while self._pool is not None:
            try:
                self._listener = await self._listen()
                return
            except _OPERATION_ERRORS:
                _log.warning("change feed of %s lost; reconnecting", self.masked_url)
                await asyncio.sleep(CHANGE_FEED_RECONNECT_DELAY_SECS)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        message = json.loads(payload)
        if message["origin"] == self.origin:
            return  # published locally after commit
        events = [ChangeEvent(Tier(tier), ChangeKind(kind), key, at_ms, actor, version)
                  for tier, kind, key, at_ms, actor, version in message["events"]]
        self.changes.publish(message["agent"], events)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        own, self._own = self._own, None
        if own is not None and pool is not None and _usable(own):
            with suppress(*_OPERATION_ERRORS):
                await pool.release(own)
        relisten, self._relisten = self._relisten, None
        if relisten is not None and not relisten.done():
            relisten.cancel()
            with suppress(asyncio.CancelledError):
                await relisten
        listener, self._listener = self._listener, None
        with _mapped_errors():
            if listener is not None:
                await listener.close()
            if pool is not None:
                await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for one operation: the backend's own when it is free (no pool
        bookkeeping on the common, one-at-a-time path), else one from the pool."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError(f"{self.masked_url} is not open")
        own = self._own
        if own is not None and not _usable(own):  # dropped or terminated: take a fresh one
            self._own = None
            with suppress(asyncpg.InterfaceError):  # a terminated one went back already
                await pool.release(own)
        elif own is not None and not self._own_busy:
            self._own_busy = True
            try:
                yield own
            finally:
                self._own_busy = False
            return
        with _mapped_errors():
            conn = await pool.acquire()
        try:
            yield conn
        finally:
            if self._own is None and self._pool is pool and _usable(conn):
                self._own = conn  # kept as the backend's own, not released
            else:
                await pool.release(conn)

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[PostgresTx]:
        async with self._connection() as conn:
            tx = PostgresTx(conn, agent)
            try:
                if write:
                    await tx._execute(
                        f"BEGIN; SELECT pg_advisory_xact_lock({agent_lock_key(agent)})")
                yield tx
            except BaseException:
                tx.events.clear()
                if write:
                    await _rollback(conn)
                raise
            events = list(tx.events)
            if write:
                await self._commit(tx, conn, events)
        if events:
            self.changes.publish(agent, events)

    async def working_put_if_room(self, agent: str, entry: WorkingEntry, size_bytes_max: int,
                                  entries_max: int, record: HistoryRecord,
                                  history_limits: tuple[int, int, int]) -> int | None:
        # The payload goes out before the version is known: other processes see version 0.
        event = ChangeEvent(Tier.WORKING, ChangeKind.SET, entry.key, entry.updated_at,
                            record.actor)
        payload, = change_payloads(self.origin, agent, [event])
        history = rows.history_params(agent, record)
        async with self._connection() as conn:
            with _mapped_errors():
                version = await conn.fetchval(
                    "SELECT umi_working_put_recorded($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                    "$11, $12, $13, $14, $15, $16, $17, $18, $19)", agent, agent_lock_key(agent),
                    *rows.entry_params(agent, entry)[1:], size_bytes_max, entries_max,
                    record.actor, history[7], history[8], *history_limits,
                    CHANGE_FEED_CHANNEL, payload)
        if version:
            self.changes.publish(agent, [replace(event, version=version)])
        return version

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        async with self.transaction(agent, write=write) as tx:
            return await body(tx)

    async def _commit(self, tx: PostgresTx, conn: asyncpg.Connection,
                      events: list[ChangeEvent]) -> None:
        """NOTIFY the events and COMMIT, in one round trip (NOTIFY is sent at commit)."""
        notify = "".join(f"SELECT pg_notify('{CHANGE_FEED_CHANNEL}', {_sql_literal(payload)}); "
                         for payload in change_payloads(self.origin, tx.agent, events))
        try:
            await conn.execute(notify + "COMMIT")
        except _OPERATION_ERRORS as exc:
            await _rollback(conn)
            error = storage_error(exc)
            # A connection lost during COMMIT leaves the outcome unknown.
            error.outcome_unknown = not isinstance(exc, asyncpg.PostgresError)
            raise error from exc

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        """Every agent with a stored row: counts per tier (live keys) and last change."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError(f"{self.masked_url} is not open")
        core, working, entities = agent_tier_sql("$1")
        with _mapped_errors():
            async with pool.acquire() as conn:
                found = (await conn.fetch(core), await conn.fetch(working, now_ms),
                         await conn.fetch(entities))
        return summaries_from_tiers(*found)


def _sql_literal(ascii_text: str) -> str:
    """`ascii_text` as an escape-string literal (E'…', whatever standard_conforming_strings
    says), for a statement sent without parameters."""
    assert ascii_text.isascii(), "change payloads are ASCII JSON"
    return "E'" + ascii_text.replace("\\", "\\\\").replace("'", "''") + "'"


def _usable(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is still attached and open."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # terminated: its pool took it back
        return False


async def _reset(conn: asyncpg.Connection) -> None:
    """Make a released connection reusable. Umi keeps no session state (its advisory locks
    are transaction-scoped and LISTEN has its own connection), so asyncpg's full reset, one
    more round trip per operation, is not needed."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _rollback(conn: asyncpg.Connection) -> None:
    """Roll back, or drop the connection when even that fails (it is unusable then)."""
    try:
        await conn.execute("ROLLBACK")
    except _OPERATION_ERRORS:
        with suppress(asyncpg.InterfaceError):  # a closed connection is already released
            conn.terminate()


__all__ = ["SCHEMA_VERSION", "PostgresBackend", "PostgresTx"]
