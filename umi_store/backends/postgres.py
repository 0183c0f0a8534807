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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from ..errors import StorageError, StoreUnavailableError
from ..integrity import checksum, damaged_bytes, damaged_text, verified, verified_text
from ..models import (BLOCK_TYPES_IN_RENDER_ORDER, AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity,
                      EntityType, MemoryBlock, Tier, WorkingEntry)
from .agents import agent_tier_sql, summaries_from_tiers
from .base import ChangeHub

SCHEMA_VERSION = 2
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
}
TABLES = ("core_blocks", "working", "entities")

ENTITY_COLUMNS = ("id, entity_type, name, content, metadata, embedding, created_at, "
                  "updated_at, checksum")
ENTITY_PUT_SQL = (
    "INSERT INTO entities (agent, id, entity_type, name, content, metadata, embedding, "
    "created_at, updated_at, checksum, name_folded, content_folded) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
    "ON CONFLICT (agent, id) DO UPDATE SET entity_type = excluded.entity_type, "
    "name = excluded.name, content = excluded.content, metadata = excluded.metadata, "
    "embedding = excluded.embedding, created_at = excluded.created_at, "
    "updated_at = excluded.updated_at, checksum = excluded.checksum, "
    "name_folded = excluded.name_folded, content_folded = excluded.content_folded")
ENTITY_SEARCH_SQL = (
    f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1 "
    "AND ($2::text IS NULL OR entity_type = $2) "
    "AND (name_folded LIKE '%' || $3 || '%' ESCAPE '\\' "
    "OR content_folded LIKE '%' || $3 || '%' ESCAPE '\\') "
    "ORDER BY updated_at DESC, id LIMIT $4")
_RENDER_INDEX = {t: i for i, t in enumerate(BLOCK_TYPES_IN_RENDER_ORDER)}

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
    embedding = None if entity.embedding is None else [float(x) for x in entity.embedding]
    return (agent, entity.id, EntityType(entity.entity_type).value, entity.name, entity.content,
            json.dumps(dict(entity.metadata), sort_keys=True, ensure_ascii=False), embedding,
            entity.created_at, entity.updated_at, checksum(entity.content.encode()),
            entity.name.casefold(), entity.content.casefold())


def agent_lock_key(agent: str) -> int:
    """The advisory lock key (a signed bigint) that serialises the writers of `agent`."""
    return int.from_bytes(hashlib.blake2b(agent.encode(), digest_size=8).digest(), "big",
                          signed=True)


def _block_from_row(row: Any) -> MemoryBlock:
    (block_type, content, label, importance, version, created_at, updated_at, sum_) = row
    verified_text(content, sum_, f"core block {block_type}")
    return MemoryBlock(BlockType(block_type), content, label, importance, version,
                       created_at, updated_at)


def _entry_from_row(row: Any) -> WorkingEntry:
    key, value, ttl_ms, expires_at_ms, updated_at, sum_ = row
    verified(value, sum_, f"working key {key!r}")
    return WorkingEntry(key, bytes(value), ttl_ms, expires_at_ms, updated_at)


def _entity_from_row(row: Any) -> Entity:
    (entity_id, entity_type, name, content, metadata, embedding, created_at, updated_at,
     sum_) = row
    verified_text(content, sum_, f"entity {entity_id}")
    return Entity(entity_type=EntityType(entity_type), name=name, content=content, id=entity_id,
                  metadata=json.loads(metadata),
                  embedding=None if embedding is None else tuple(embedding),
                  created_at=created_at, updated_at=updated_at)


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

    # core
    _CORE_COLUMNS = ("block_type, content, label, importance, version, created_at, updated_at, "
                     "checksum")

    async def core_get(self, block_type: BlockType) -> MemoryBlock | None:
        row = await self._fetchrow(
            f"SELECT {self._CORE_COLUMNS} FROM core_blocks WHERE agent = $1 AND block_type = $2",
            self.agent, BlockType(block_type).value)
        return None if row is None else _block_from_row(row)

    async def core_list(self) -> list[MemoryBlock]:
        rows = await self._fetch(
            f"SELECT {self._CORE_COLUMNS} FROM core_blocks WHERE agent = $1", self.agent)
        rows.sort(key=lambda r: _RENDER_INDEX[BlockType(r[0])])
        return [_block_from_row(r) for r in rows]

    async def core_put(self, block: MemoryBlock) -> None:
        await self._execute(
            "INSERT INTO core_blocks (agent, block_type, content, label, importance, version, "
            "created_at, updated_at, checksum) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (agent, block_type) DO UPDATE SET content = excluded.content, "
            "label = excluded.label, importance = excluded.importance, "
            "version = excluded.version, created_at = excluded.created_at, "
            "updated_at = excluded.updated_at, checksum = excluded.checksum",
            self.agent, BlockType(block.block_type).value, block.content, block.label,
            float(block.importance), block.version, block.created_at, block.updated_at,
            checksum(block.content.encode()))

    async def core_delete(self, block_type: BlockType) -> bool:
        status = await self._execute(
            "DELETE FROM core_blocks WHERE agent = $1 AND block_type = $2",
            self.agent, BlockType(block_type).value)
        return _row_count(status) > 0

    # working
    _WORKING_COLUMNS = "key, value, ttl_ms, expires_at_ms, updated_at, checksum"

    async def working_get(self, key: str) -> WorkingEntry | None:
        row = await self._fetchrow(
            f"SELECT {self._WORKING_COLUMNS} FROM working WHERE agent = $1 AND key = $2",
            self.agent, key)
        return None if row is None else _entry_from_row(row)

    async def working_put(self, entry: WorkingEntry) -> None:
        value = bytes(entry.value)
        await self._execute(
            "INSERT INTO working (agent, key, value, ttl_ms, expires_at_ms, updated_at, "
            "checksum, size_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value, "
            "ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms, "
            "updated_at = excluded.updated_at, checksum = excluded.checksum, "
            "size_bytes = excluded.size_bytes",
            self.agent, entry.key, value, entry.ttl_ms, entry.expires_at_ms, entry.updated_at,
            checksum(value), entry.size_bytes)

    async def working_delete(self, key: str) -> bool:
        status = await self._execute("DELETE FROM working WHERE agent = $1 AND key = $2",
                                     self.agent, key)
        return _row_count(status) > 0

    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        rows = await self._fetch(
            f"SELECT {self._WORKING_COLUMNS} FROM working WHERE agent = $1 "
            "AND starts_with(key, $2) AND expires_at_ms > $3 ORDER BY key LIMIT $4",
            self.agent, prefix, now_ms, max(0, limit))
        return [_entry_from_row(r) for r in rows]

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
        rows = await self._fetch(
            "DELETE FROM working WHERE agent = $1 AND key IN (SELECT key FROM working "
            "WHERE agent = $1 AND expires_at_ms <= $2 ORDER BY expires_at_ms, key LIMIT $3) "
            "RETURNING key", self.agent, now_ms, max(0, limit))
        return sorted(r[0] for r in rows)

    async def working_clear(self) -> list[str]:
        rows = await self._fetch("DELETE FROM working WHERE agent = $1 RETURNING key",
                                 self.agent)
        return sorted(r[0] for r in rows)

    # archival
    async def entity_get(self, entity_id: str) -> Entity | None:
        row = await self._fetchrow(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1 AND id = $2",
            self.agent, entity_id)
        return None if row is None else _entity_from_row(row)

    async def entity_put(self, entity: Entity) -> None:
        await self._execute(ENTITY_PUT_SQL, *entity_row(self.agent, entity))

    async def entity_delete(self, entity_id: str) -> bool:
        status = await self._execute("DELETE FROM entities WHERE agent = $1 AND id = $2",
                                     self.agent, entity_id)
        return _row_count(status) > 0

    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        rows = await self._fetch(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1 "
            "AND ($2::text IS NULL OR entity_type = $2) ORDER BY updated_at DESC, id "
            "LIMIT $3 OFFSET $4",
            self.agent, _type_value(entity_type), max(0, limit), max(0, offset))
        return [_entity_from_row(r) for r in rows]

    async def entity_count(self, entity_type: EntityType | None) -> int:
        row = await self._fetchrow(
            "SELECT COUNT(*) FROM entities WHERE agent = $1 "
            "AND ($2::text IS NULL OR entity_type = $2)", self.agent, _type_value(entity_type))
        return int(row[0])

    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        rows = await self._fetch(ENTITY_SEARCH_SQL, self.agent, _type_value(entity_type),
                                 like_literal(folded_query), max(0, limit))
        return [_entity_from_row(r) for r in rows]

    # fault injection
    _CORRUPTIBLE = {Tier.CORE: ("core_blocks", "content", "block_type"),
                    Tier.WORKING: ("working", "value", "key"),
                    Tier.ARCHIVAL: ("entities", "content", "id")}

    async def corrupt(self, tier: Tier, key: str) -> bool:
        table, column, key_column = self._CORRUPTIBLE[Tier(tier)]
        if tier is Tier.CORE:
            key = BlockType(key).value
        where = f"WHERE agent = $1 AND {key_column} = $2"
        row = await self._fetchrow(f"SELECT {column} FROM {table} {where}", self.agent, key)
        if row is None:
            return False
        stored = row[0]
        damaged = damaged_bytes(stored) if isinstance(stored, bytes) else damaged_text(stored)
        await self._execute(f"UPDATE {table} SET {column} = $3 {where}", self.agent, key, damaged)
        return True


def _type_value(entity_type: EntityType | None) -> str | None:
    return None if entity_type is None else EntityType(entity_type).value


def change_payloads(origin: str, agent: str, events: list[ChangeEvent]) -> list[str]:
    """NOTIFY payloads (JSON, ASCII, each under CHANGE_FEED_PAYLOAD_BYTES_MAX) for `events`."""
    head = json.dumps({"origin": origin, "agent": agent})[:-1] + ', "events": ['
    payloads: list[str] = []
    items: list[str] = []
    size = 0  # of head + items + separators + "]}", were the payload closed now
    for event in events:
        item = json.dumps([event.tier.value, event.kind.value, event.key, event.at_ms])
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
        events = [ChangeEvent(Tier(tier), ChangeKind(kind), key, at_ms)
                  for tier, kind, key, at_ms in message["events"]]
        self.changes.publish(message["agent"], events)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
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
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[PostgresTx]:
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError(f"{self.masked_url} is not open")
        with _mapped_errors():
            conn = await pool.acquire()
        try:
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
        finally:
            await pool.release(conn)
        if events:
            self.changes.publish(agent, events)

    async def _commit(self, tx: PostgresTx, conn: asyncpg.Connection,
                      events: list[ChangeEvent]) -> None:
        try:
            payloads = change_payloads(self.origin, tx.agent, events)
            if payloads:
                await tx._execute(
                    "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                    CHANGE_FEED_CHANNEL, payloads)
        except BaseException:
            await _rollback(conn)
            raise
        try:
            await conn.execute("COMMIT")
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
