"""The SQLite backend: one aiosqlite connection, WAL, every row scoped by agent.

Same semantics as the simulator (umi_store.backends.sim): checksums beside stored values,
archival order updated_at descending then id, literal substring search on casefolded text.

Change feed: every write transaction also appends its events to `change_log`, tagged
with this backend's origin. Events reach this process's subscribers directly after the
commit; while anyone subscribes, a poller checks `PRAGMA data_version` (which moves only
when another connection commits) and publishes the log rows of other origins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from ..constants import CHANGE_FEED_BATCH_ROWS_MAX, CHANGE_FEED_LOG_ROWS_MAX, CHANGE_FEED_POLL_MS
from ..errors import StorageError, StoreUnavailableError
from ..integrity import damaged_bytes, damaged_text, checksum, verified, verified_text
from ..models import (BLOCK_TYPES_IN_RENDER_ORDER, AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity,
                      EntityType, MemoryBlock, Tier, WorkingEntry)
from .agents import agent_tier_sql, summaries_from_tiers
from .base import ChangeHub, stop_background_task

SCHEMA_VERSION = 2
# Search scans this many newest entities before it asks the trigram index.
SEARCH_RECENT_SCAN_ROWS_MAX = 2_000
_log = logging.getLogger("umi_store.sqlite")

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS core_blocks (
            agent TEXT NOT NULL,
            block_type TEXT NOT NULL,
            content TEXT NOT NULL,
            label TEXT,
            importance REAL NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            checksum INTEGER NOT NULL,
            PRIMARY KEY (agent, block_type)
        )""",
        """CREATE TABLE IF NOT EXISTS working (
            agent TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            ttl_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            checksum INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            PRIMARY KEY (agent, key)
        )""",
        "CREATE INDEX IF NOT EXISTS working_expiry ON working (agent, expires_at_ms)",
        # `rid` is an explicit INTEGER PRIMARY KEY so the FTS external-content rowids stay
        # stable (implicit rowids may be renumbered by VACUUM); (agent, id) is the real key.
        """CREATE TABLE IF NOT EXISTS entities (
            rid INTEGER PRIMARY KEY,
            agent TEXT NOT NULL,
            id TEXT NOT NULL,
            entity_type TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            metadata TEXT NOT NULL,
            embedding TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            checksum INTEGER NOT NULL,
            name_folded TEXT NOT NULL,
            content_folded TEXT NOT NULL,
            UNIQUE (agent, id)
        )""",
        "CREATE INDEX IF NOT EXISTS entities_recent ON entities (agent, updated_at DESC, id)",
        """CREATE VIRTUAL TABLE IF NOT EXISTS entities_fts USING fts5(
            name_folded, content_folded, content='entities', content_rowid='rid',
            tokenize="trigram case_sensitive 1"
        )""",
        """CREATE TRIGGER IF NOT EXISTS entities_fts_ai AFTER INSERT ON entities BEGIN
            INSERT INTO entities_fts (rowid, name_folded, content_folded)
            VALUES (new.rid, new.name_folded, new.content_folded);
        END""",
        """CREATE TRIGGER IF NOT EXISTS entities_fts_ad AFTER DELETE ON entities BEGIN
            INSERT INTO entities_fts (entities_fts, rowid, name_folded, content_folded)
            VALUES ('delete', old.rid, old.name_folded, old.content_folded);
        END""",
        """CREATE TRIGGER IF NOT EXISTS entities_fts_au AFTER UPDATE ON entities BEGIN
            INSERT INTO entities_fts (entities_fts, rowid, name_folded, content_folded)
            VALUES ('delete', old.rid, old.name_folded, old.content_folded);
            INSERT INTO entities_fts (rowid, name_folded, content_folded)
            VALUES (new.rid, new.name_folded, new.content_folded);
        END""",
    ],
    2: [
        """CREATE TABLE IF NOT EXISTS change_log (
            seq INTEGER PRIMARY KEY,
            origin TEXT NOT NULL,
            agent TEXT NOT NULL,
            tier TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        )""",
        # Bounded: each insert drops the rows more than CHANGE_FEED_LOG_ROWS_MAX behind it.
        f"""CREATE TRIGGER IF NOT EXISTS change_log_trim AFTER INSERT ON change_log BEGIN
            DELETE FROM change_log WHERE seq <= new.seq - {CHANGE_FEED_LOG_ROWS_MAX};
        END""",
    ],
}
_CHANGE_LOG_INSERT = ("INSERT INTO change_log (origin, agent, tier, kind, key, at_ms) "
                      "VALUES (?, ?, ?, ?, ?, ?)")

_ENTITY_COLUMNS = ("id, entity_type, name, content, metadata, embedding, created_at, "
                   "updated_at, checksum")
_RENDER_INDEX = {t: i for i, t in enumerate(BLOCK_TYPES_IN_RENDER_ORDER)}


def _storage_error(exc: BaseException) -> StorageError:
    text = str(exc)
    lowered = text.lower()
    transient = "locked" in lowered or "busy" in lowered
    return StorageError(f"sqlite: {text}", transient=transient)


def _glob_literal(text: str) -> str:
    """Escape GLOB metacharacters so `text` matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _block_from_row(row: Any) -> MemoryBlock:
    (block_type, content, label, importance, version, created_at, updated_at, sum_) = row
    block = MemoryBlock(BlockType(block_type), content, label, importance, version,
                        created_at, updated_at)
    verified_text(block.content, sum_, f"core block {block.block_type}")
    return block


def _entry_from_row(row: Any) -> WorkingEntry:
    key, value, ttl_ms, expires_at_ms, updated_at, sum_ = row
    entry = WorkingEntry(key, bytes(value), ttl_ms, expires_at_ms, updated_at)
    verified(entry.value, sum_, f"working key {entry.key!r}")
    return entry


def _entity_from_row(row: Any) -> Entity:
    (entity_id, entity_type, name, content, metadata, embedding, created_at, updated_at,
     sum_) = row
    verified_text(content, sum_, f"entity {entity_id}")
    return Entity(entity_type=EntityType(entity_type), name=name, content=content, id=entity_id,
                  metadata=json.loads(metadata),
                  embedding=None if embedding is None else tuple(json.loads(embedding)),
                  created_at=created_at, updated_at=updated_at)


async def _fetchall(conn: aiosqlite.Connection, sql: str, params: tuple = ()) -> list[Any]:
    try:
        cursor = await conn.execute(sql, params)
        rows = await cursor.fetchall()
        await cursor.close()
        return list(rows)
    except (sqlite3.Error, OverflowError) as exc:
        raise _storage_error(exc) from exc


class SqliteTx:
    """One transaction on the shared connection, bound to one agent."""

    def __init__(self, conn: aiosqlite.Connection, agent: str) -> None:
        self.agent = agent
        self._conn = conn
        self.events: list[ChangeEvent] = []

    def emit(self, event: ChangeEvent) -> None:
        self.events.append(event)

    # plumbing
    async def _execute(self, sql: str, params: tuple = ()) -> int:
        try:
            cursor = await self._conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count
        except (sqlite3.Error, OverflowError) as exc:
            raise _storage_error(exc) from exc

    async def _fetchall(self, sql: str, params: tuple = ()) -> list[Any]:
        return await _fetchall(self._conn, sql, params)

    async def _fetchone(self, sql: str, params: tuple = ()) -> Any:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    # core
    _CORE_COLUMNS = ("block_type, content, label, importance, version, created_at, updated_at, "
                     "checksum")

    async def core_get(self, block_type: BlockType) -> MemoryBlock | None:
        row = await self._fetchone(
            f"SELECT {self._CORE_COLUMNS} FROM core_blocks WHERE agent = ? AND block_type = ?",
            (self.agent, BlockType(block_type).value))
        return None if row is None else _block_from_row(row)

    async def core_list(self) -> list[MemoryBlock]:
        rows = await self._fetchall(
            f"SELECT {self._CORE_COLUMNS} FROM core_blocks WHERE agent = ?", (self.agent,))
        rows.sort(key=lambda r: _RENDER_INDEX[BlockType(r[0])])
        return [_block_from_row(r) for r in rows]

    async def core_put(self, block: MemoryBlock) -> None:
        await self._execute(
            "INSERT INTO core_blocks (agent, block_type, content, label, importance, version, "
            "created_at, updated_at, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (agent, block_type) DO UPDATE SET content = excluded.content, "
            "label = excluded.label, importance = excluded.importance, "
            "version = excluded.version, created_at = excluded.created_at, "
            "updated_at = excluded.updated_at, checksum = excluded.checksum",
            (self.agent, BlockType(block.block_type).value, block.content, block.label,
             float(block.importance), block.version, block.created_at, block.updated_at,
             checksum(block.content.encode())))

    async def core_delete(self, block_type: BlockType) -> bool:
        count = await self._execute(
            "DELETE FROM core_blocks WHERE agent = ? AND block_type = ?",
            (self.agent, BlockType(block_type).value))
        return count > 0

    # working
    _WORKING_COLUMNS = "key, value, ttl_ms, expires_at_ms, updated_at, checksum"

    async def working_get(self, key: str) -> WorkingEntry | None:
        row = await self._fetchone(
            f"SELECT {self._WORKING_COLUMNS} FROM working WHERE agent = ? AND key = ?",
            (self.agent, key))
        return None if row is None else _entry_from_row(row)

    async def working_put(self, entry: WorkingEntry) -> None:
        value = bytes(entry.value)
        await self._execute(
            "INSERT INTO working (agent, key, value, ttl_ms, expires_at_ms, updated_at, "
            "checksum, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value, "
            "ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms, "
            "updated_at = excluded.updated_at, checksum = excluded.checksum, "
            "size_bytes = excluded.size_bytes",
            (self.agent, entry.key, value, entry.ttl_ms, entry.expires_at_ms, entry.updated_at,
             checksum(value), entry.size_bytes))

    async def working_delete(self, key: str) -> bool:
        count = await self._execute("DELETE FROM working WHERE agent = ? AND key = ?",
                                    (self.agent, key))
        return count > 0

    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        rows = await self._fetchall(
            f"SELECT {self._WORKING_COLUMNS} FROM working WHERE agent = ? "
            "AND substr(key, 1, length(?)) = ? AND expires_at_ms > ? ORDER BY key LIMIT ?",
            (self.agent, prefix, prefix, now_ms, max(0, limit)))
        entries = [_entry_from_row(r) for r in rows]
        return [e for e in entries if e.key.startswith(prefix)]

    async def working_usage(self, now_ms: int | None, exclude_key: str | None) -> tuple[int, int]:
        row = await self._fetchone(
            "SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM working WHERE agent = ? "
            "AND (? IS NULL OR key != ?) AND (? IS NULL OR expires_at_ms > ?)",
            (self.agent, exclude_key, exclude_key, now_ms, now_ms))
        return int(row[0]), int(row[1])

    async def working_delete_expired(self, now_ms: int, limit: int) -> list[str]:
        lapsed = ("SELECT key FROM working WHERE agent = ? AND expires_at_ms <= ? "
                  "ORDER BY expires_at_ms, key LIMIT ?")
        params = (self.agent, now_ms, max(0, limit))
        rows = await self._fetchall(lapsed, params)
        if rows:
            await self._execute(f"DELETE FROM working WHERE agent = ? AND key IN ({lapsed})",
                                (self.agent, *params))
        return sorted(r[0] for r in rows)

    async def working_clear(self) -> list[str]:
        rows = await self._fetchall("SELECT key FROM working WHERE agent = ? ORDER BY key",
                                    (self.agent,))
        if rows:
            await self._execute("DELETE FROM working WHERE agent = ?", (self.agent,))
        return sorted(r[0] for r in rows)

    # archival
    async def entity_get(self, entity_id: str) -> Entity | None:
        row = await self._fetchone(
            f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE agent = ? AND id = ?",
            (self.agent, entity_id))
        return None if row is None else _entity_from_row(row)

    async def entity_put(self, entity: Entity) -> None:
        metadata = json.dumps(dict(entity.metadata), sort_keys=True, ensure_ascii=False)
        embedding = (None if entity.embedding is None
                     else json.dumps([float(x) for x in entity.embedding]))
        await self._execute(
            "INSERT INTO entities (agent, id, entity_type, name, content, metadata, embedding, "
            "created_at, updated_at, checksum, name_folded, content_folded) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (agent, id) DO UPDATE SET entity_type = excluded.entity_type, "
            "name = excluded.name, content = excluded.content, metadata = excluded.metadata, "
            "embedding = excluded.embedding, created_at = excluded.created_at, "
            "updated_at = excluded.updated_at, checksum = excluded.checksum, "
            "name_folded = excluded.name_folded, content_folded = excluded.content_folded",
            (self.agent, entity.id, EntityType(entity.entity_type).value, entity.name,
             entity.content, metadata, embedding, entity.created_at, entity.updated_at,
             checksum(entity.content.encode()), entity.name.casefold(),
             entity.content.casefold()))

    async def entity_delete(self, entity_id: str) -> bool:
        count = await self._execute("DELETE FROM entities WHERE agent = ? AND id = ?",
                                    (self.agent, entity_id))
        return count > 0

    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        type_value = None if entity_type is None else EntityType(entity_type).value
        rows = await self._fetchall(
            f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE agent = ? "
            "AND (? IS NULL OR entity_type = ?) ORDER BY updated_at DESC, id ASC "
            "LIMIT ? OFFSET ?",
            (self.agent, type_value, type_value, max(0, limit), max(0, offset)))
        return [_entity_from_row(r) for r in rows]

    async def entity_count(self, entity_type: EntityType | None) -> int:
        type_value = None if entity_type is None else EntityType(entity_type).value
        row = await self._fetchone(
            "SELECT COUNT(*) FROM entities WHERE agent = ? AND (? IS NULL OR entity_type = ?)",
            (self.agent, type_value, type_value))
        return int(row[0])

    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        type_value = None if entity_type is None else EntityType(entity_type).value
        limit = max(0, limit)
        columns = ", ".join(f"e.{c.strip()}" for c in _ENTITY_COLUMNS.split(","))
        # instr() re-checks every candidate, so the result is exactly the literal matches.
        exact = "(instr(e.name_folded, ?) > 0 OR instr(e.content_folded, ?) > 0)"
        newest_first = "ORDER BY e.updated_at DESC, e.id ASC LIMIT ?"
        scoped = "e.agent = ? AND (? IS NULL OR e.entity_type = ?)"
        # The newest rows first: if they hold `limit` matches, those are the answer (every
        # other match is older), and a common word never makes the index collect every hit.
        recent = await self._fetchall(
            f"SELECT {columns} FROM (SELECT * FROM entities AS e WHERE {scoped} "
            f"{newest_first}) AS e WHERE {exact} {newest_first}",
            (self.agent, type_value, type_value, SEARCH_RECENT_SCAN_ROWS_MAX,
             folded_query, folded_query, limit))
        if len(recent) == limit:
            rows = recent
        elif len(folded_query) < 3:  # too short for trigrams: scan every row
            rows = await self._fetchall(
                f"SELECT {columns} FROM entities AS e WHERE {scoped} AND {exact} {newest_first}",
                (self.agent, type_value, type_value, folded_query, folded_query, limit))
        else:  # a rarer match: the trigram index finds the candidates
            pattern = f"*{_glob_literal(folded_query)}*"
            rows = await self._fetchall(
                f"SELECT {columns} FROM entities AS e WHERE e.rid IN ("
                "SELECT rowid FROM entities_fts WHERE name_folded GLOB ? "
                "UNION SELECT rowid FROM entities_fts WHERE content_folded GLOB ?) "
                f"AND {scoped} AND {exact} {newest_first}",
                (pattern, pattern, self.agent, type_value, type_value, folded_query,
                 folded_query, limit))
        return [_entity_from_row(r) for r in rows]

    # fault injection
    async def corrupt(self, tier: Tier, key: str) -> bool:
        if tier is Tier.CORE:
            block_type = BlockType(key).value
            row = await self._fetchone(
                "SELECT content FROM core_blocks WHERE agent = ? AND block_type = ?",
                (self.agent, block_type))
            if row is None:
                return False
            await self._execute(
                "UPDATE core_blocks SET content = ? WHERE agent = ? AND block_type = ?",
                (damaged_text(row[0]), self.agent, block_type))
        elif tier is Tier.WORKING:
            row = await self._fetchone("SELECT value FROM working WHERE agent = ? AND key = ?",
                                       (self.agent, key))
            if row is None:
                return False
            await self._execute("UPDATE working SET value = ? WHERE agent = ? AND key = ?",
                                (damaged_bytes(bytes(row[0])), self.agent, key))
        else:
            row = await self._fetchone("SELECT content FROM entities WHERE agent = ? AND id = ?",
                                       (self.agent, key))
            if row is None:
                return False
            await self._execute("UPDATE entities SET content = ? WHERE agent = ? AND id = ?",
                                (damaged_text(row[0]), self.agent, key))
        return True


def _unopenable_reason(path: str) -> str | None:
    """Why SQLite could not open or create the file, judged without opening it; or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"the directory {directory} does not exist"
    if os.path.isdir(path):
        return "that is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.R_OK | os.W_OK) else "no permission to read and write it"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"no permission to create a file in {directory}"
    return None


def _cannot_open_message(url: str, path: str, reason: str) -> str:
    """The error for a file that cannot be opened, naming its absolute path; a relative one
    (three slashes) gets the four-slash spelling of the absolute path beside it."""
    message = f"cannot open {url} (the file {os.path.abspath(path)}): {reason}"
    if not os.path.isabs(path):
        message += (f"; sqlite:/// with three slashes is relative to the current directory, "
                    f"sqlite:////{path} is the absolute /{path}")
    return message


# os.umask is process-wide: one lock keeps two stores' save-and-restore from interleaving.
_UMASK_LOCK = threading.Lock()
DATABASE_FILE_UMASK = 0o077  # a database file Umi creates is the owner's only (0600)


class _PrivateFileConnection(sqlite3.Connection):
    """A connection whose database file, created as it opens, is readable by its owner only.

    SQLite gives the -wal and -shm files the database file's mode, so they are private too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _UMASK_LOCK:
            previous = os.umask(DATABASE_FILE_UMASK)
            os.umask(previous | DATABASE_FILE_UMASK)  # keep any stricter bits of the caller's
            try:
                super().__init__(*args, **kwargs)
            finally:
                os.umask(previous)


class SqliteBackend:
    """A SQLite file (or :memory:) behind one connection; transactions are serialised."""

    def __init__(self, path: str, url: str) -> None:
        self.path = path
        self.url = url
        self.changes = ChangeHub(watch=self._watch_other_processes)
        self.origin = f"{os.getpid()}:{id(self)}"
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._data_version: int | None = None
        self._seen_seq = 0

    async def open(self) -> None:
        if self._conn is not None:
            return
        # Never os.open/os.close the database file: closing any descriptor of it drops every
        # POSIX lock this process holds on it, those of other open stores included.
        in_memory = self.path == ":memory:"
        # Checked first: aiosqlite leaves its thread behind when the connect itself fails.
        reason = None if in_memory else _unopenable_reason(self.path)
        if reason is not None:
            raise StoreUnavailableError(_cannot_open_message(self.url, self.path, reason))
        creating = not in_memory and not os.path.exists(self.path)
        factory = _PrivateFileConnection if creating else sqlite3.Connection
        conn: aiosqlite.Connection | None = None
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None, factory=factory)
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await self._migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                try:
                    await conn.close()
                except Exception:
                    pass
            raise StoreUnavailableError(_cannot_open_message(self.url, self.path, str(exc))) \
                from None
        self._conn = conn

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                               "version INTEGER PRIMARY KEY)")
            cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            row = await cursor.fetchone()
            await cursor.close()
            current = int(row[0]) if row else 0
            for version in sorted(_MIGRATIONS):
                if version <= current:
                    continue
                for statement in _MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute("INSERT OR IGNORE INTO schema_version (version) VALUES (?)",
                                   (version,))
            await conn.execute("COMMIT")
        except BaseException:
            try:
                await conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    async def _watch_other_processes(self) -> None:
        """Start the change-log poller (once): from now on, other origins' commits show."""
        async with self._lock:
            if self._poller is not None:
                return
            if self._conn is None:
                raise StoreUnavailableError(f"{self.url} is not open")
            rows = await _fetchall(self._conn, "SELECT COALESCE(MAX(seq), 0) FROM change_log")
            self._seen_seq = int(rows[0][0])
            self._poller = asyncio.create_task(self._poll_other_processes())

    async def _poll_other_processes(self) -> None:
        while True:
            await asyncio.sleep(CHANGE_FEED_POLL_MS / 1000)  # I/O polling: real time
            try:
                await self._publish_other_processes_changes()
            except StorageError as exc:
                _log.warning("change feed: cannot read the change log of %s: %s", self.url, exc)

    async def _publish_other_processes_changes(self) -> None:
        async with self._lock:
            if self._conn is None:
                return
            version = int((await _fetchall(self._conn, "PRAGMA data_version"))[0][0])
            if version == self._data_version:
                return
            rows = await _fetchall(
                self._conn, "SELECT seq, origin, agent, tier, kind, key, at_ms FROM change_log "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (self._seen_seq, CHANGE_FEED_BATCH_ROWS_MAX))
            # A full batch may leave rows behind: look again at the next poll.
            self._data_version = None if len(rows) == CHANGE_FEED_BATCH_ROWS_MAX else version
        for seq, origin, agent, tier, kind, key, at_ms in rows:
            assert seq > self._seen_seq, "the change log is read in order"
            self._seen_seq = seq
            if origin != self.origin:
                self.changes.publish(agent, [ChangeEvent(Tier(tier), ChangeKind(kind), key,
                                                         at_ms)])

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            await stop_background_task(poller)
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                try:
                    await conn.close()
                except sqlite3.Error as exc:
                    raise _storage_error(exc) from exc

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[SqliteTx]:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailableError(f"{self.url} is not open")
            if write:
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise _storage_error(exc) from exc
            tx = SqliteTx(conn, agent)
            try:
                yield tx
            except BaseException:
                tx.events.clear()
                if write:
                    try:
                        await conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
            assert write or not tx.events, "only a write transaction changes anything"
            if write:
                try:
                    if tx.events:
                        await conn.executemany(_CHANGE_LOG_INSERT, [
                            (self.origin, agent, e.tier.value, e.kind.value, e.key, e.at_ms)
                            for e in tx.events])
                    await conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    try:
                        await conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    raise _storage_error(exc) from exc
            events = list(tx.events)
        if events:
            self.changes.publish(agent, events)

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        """Every agent with a stored row: counts per tier (live keys) and last change."""
        async with self._lock:
            if self._conn is None:
                raise StoreUnavailableError(f"{self.url} is not open")
            core, working, entities = agent_tier_sql("?")
            found = (await _fetchall(self._conn, core),
                     await _fetchall(self._conn, working, (now_ms,)),
                     await _fetchall(self._conn, entities))
        return summaries_from_tiers(*found)


__all__ = ["SCHEMA_VERSION", "SqliteBackend", "SqliteTx"]
