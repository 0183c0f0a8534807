"""The SQLite backend: one aiosqlite connection, WAL, every row scoped by agent.

Same semantics as the simulator (umi_store.backends.sim): checksums beside stored values,
archival order updated_at descending then id, literal substring search on casefolded text.

Change feed: events reach this process's subscribers directly after the commit. For
other processes, a backend with subscribers registers its origin in `change_watchers` and
polls: when `PRAGMA data_version` moves (only another connection's commit moves it), it
publishes the `change_log` rows of other origins. A write transaction appends its events to
`change_log` only while another origin is registered: no watcher, no log row.

What a connection knows between transactions (the watchers, each agent's history bytes) is
kept in memory and dropped as soon as `PRAGMA data_version` shows another connection wrote.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import aiosqlite

from ..constants import CHANGE_FEED_BATCH_ROWS_MAX, CHANGE_FEED_LOG_ROWS_MAX, CHANGE_FEED_POLL_MS
from ..errors import StorageError, StoreUnavailableError
from ..models import (AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity, EntityType,
                      HistoryRecord, MemoryBlock, Tier, WorkingEntry, metadata_json)
from . import rows
from .agents import agent_tier_sql, summaries_from_tiers
from .base import ChangeHub, Tx, completed, stop_background_task
from .shortcuts import Shortcut
from .sim import entity_sort_key

T = TypeVar("T")

SCHEMA_VERSION = 8
# A search first counts the trigram index's candidates, up to this many: so few are read
# and sorted at once; more mean a common word, looked for in the newest entities first.
SEARCH_INDEX_CANDIDATES_COUNT_MAX = 1_000
# How many of the newest entities a search reads the folded text of, for a common word or
# a query too short for trigrams, before it reads every candidate (or every entity).
SEARCH_RECENT_SCAN_ROWS_MAX = 1_000
_log = logging.getLogger("umi_store.sqlite")

# What a history record holds beside its key (agent, tier, key, version) and seq.
_HISTORY_RECORD_COLUMNS = ("kind TEXT NOT NULL, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, "
                           "value BLOB, metadata TEXT NOT NULL, size_bytes INTEGER NOT NULL")
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
    # Per-agent working-memory totals kept by triggers, so the room check every write makes
    # reads two rows instead of summing every entry.
    3: [
        """CREATE TABLE IF NOT EXISTS working_totals (
            agent TEXT PRIMARY KEY,
            size_bytes INTEGER NOT NULL,
            entries INTEGER NOT NULL
        )""",
        """CREATE TRIGGER IF NOT EXISTS working_totals_ai AFTER INSERT ON working BEGIN
            INSERT OR IGNORE INTO working_totals (agent, size_bytes, entries)
            VALUES (new.agent, 0, 0);
            UPDATE working_totals SET size_bytes = size_bytes + new.size_bytes,
                entries = entries + 1 WHERE agent = new.agent;
        END""",
        """CREATE TRIGGER IF NOT EXISTS working_totals_au AFTER UPDATE OF size_bytes ON working
        BEGIN
            UPDATE working_totals SET size_bytes = size_bytes - old.size_bytes + new.size_bytes
            WHERE agent = new.agent;
        END""",
        """CREATE TRIGGER IF NOT EXISTS working_totals_ad AFTER DELETE ON working BEGIN
            UPDATE working_totals SET size_bytes = size_bytes - old.size_bytes,
                entries = entries - 1 WHERE agent = old.agent;
        END""",
        "INSERT OR IGNORE INTO working_totals (agent, size_bytes, entries) "
        "SELECT agent, SUM(size_bytes), COUNT(*) FROM working GROUP BY agent",
    ],
    # History: every committed change is a version (umi_store.tiers.history); per-agent
    # byte totals kept by triggers, for the retention limit.
    4: [
        f"""CREATE TABLE IF NOT EXISTS history (
            seq INTEGER PRIMARY KEY,
            agent TEXT NOT NULL,
            tier TEXT NOT NULL,
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            {_HISTORY_RECORD_COLUMNS},
            UNIQUE (agent, tier, key, version)
        )""",
        "CREATE INDEX IF NOT EXISTS history_time ON history (agent, at_ms)",
        """CREATE TABLE IF NOT EXISTS history_totals (
            agent TEXT PRIMARY KEY,
            size_bytes INTEGER NOT NULL
        )""",
        """CREATE TRIGGER IF NOT EXISTS history_totals_ai AFTER INSERT ON history BEGIN
            INSERT INTO history_totals (agent, size_bytes) VALUES (new.agent, new.size_bytes)
            ON CONFLICT (agent) DO UPDATE SET size_bytes = size_bytes + new.size_bytes;
        END""",
        """CREATE TRIGGER IF NOT EXISTS history_totals_ad AFTER DELETE ON history BEGIN
            UPDATE history_totals SET size_bytes = size_bytes - old.size_bytes
            WHERE agent = old.agent;
        END""",
        "ALTER TABLE change_log ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE change_log ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
    ],
    # Similarity (umi_store.similarity): each embedding's sketch, and a per-agent version
    # of the embeddings, moved by triggers, that the cached sketches are checked against.
    5: [
        "ALTER TABLE entities ADD COLUMN embedding_sketch BLOB",
        "ALTER TABLE entities ADD COLUMN embedding_exact BLOB",
        """CREATE TABLE IF NOT EXISTS entity_vectors_versions (
            agent TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        )""",
        *(f"""CREATE TRIGGER IF NOT EXISTS entity_vectors_{name} AFTER {event} ON entities
        WHEN {changed} BEGIN
            INSERT INTO entity_vectors_versions (agent, version) VALUES ({row}.agent, 1)
            ON CONFLICT (agent) DO UPDATE SET version = version + 1;
        END""" for name, event, changed, row in (
            ("ai", "INSERT", "new.embedding IS NOT NULL", "new"),
            ("au", "UPDATE", "old.embedding IS NOT new.embedding OR (new.embedding IS NOT NULL "
             "AND old.entity_type IS NOT new.entity_type)", "new"),
            ("ad", "DELETE", "old.embedding IS NOT NULL", "old"))),
    ],
    # Writes that touch fewer pages. History becomes one b-tree keyed for history() plus one
    # index in append order per agent (history_since, pruning, the byte total); `seq`
    # counts per agent. The byte totals row and its triggers go: each connection sums an
    # agent's bytes once and keeps them current. The change log is written only while
    # another process watches (`change_watchers`).
    6: [
        f"""CREATE TABLE history_v6 (
            agent TEXT NOT NULL,
            tier TEXT NOT NULL,
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            {_HISTORY_RECORD_COLUMNS},
            PRIMARY KEY (agent, tier, key, version)
        ) WITHOUT ROWID""",
        "INSERT INTO history_v6 (agent, tier, key, version, seq, kind, at_ms, actor, value, "
        "metadata, size_bytes) SELECT agent, tier, key, version, seq, kind, at_ms, actor, "
        "value, metadata, size_bytes FROM history",
        "DROP TABLE history",
        "DROP TABLE history_totals",
        "ALTER TABLE history_v6 RENAME TO history",
        "CREATE UNIQUE INDEX history_appended ON history (agent, seq, at_ms, size_bytes)",
        "CREATE TABLE change_watchers (origin TEXT PRIMARY KEY)",
    ],
    # The trigram index without positions (detail=none) or per-row column sizes
    # (columnsize=0): a search re-checks every candidate with instr(), so the index only has
    # to name the rows holding every trigram of the query, and nothing ranks. A fifth of the
    # size; writing it costs about two thirds. The triggers of migration 1 keep feeding it.
    7: [
        "DROP TABLE entities_fts",
        """CREATE VIRTUAL TABLE entities_fts USING fts5(
            name_folded, content_folded, content='entities', content_rowid='rid',
            tokenize="trigram case_sensitive 1", detail=none, columnsize=0
        )""",
        "INSERT INTO entities_fts (entities_fts) VALUES ('rebuild')",
    ],
    # The sketches, read without the rows: the sketch column comes after the embedding's
    # JSON and float64 bytes (~45 KB), so reading it from the table walks every row's
    # overflow pages; this covering index holds it on its own (~5× faster at 10 000).
    # The second, normally empty, names the rows an older Umi left without a sketch.
    8: [
        "CREATE INDEX IF NOT EXISTS entities_sketch ON entities (agent, id, entity_type, "
        "embedding_sketch) WHERE embedding IS NOT NULL AND embedding_sketch IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS entities_unsketched ON entities (agent) "
        "WHERE embedding IS NOT NULL AND embedding_sketch IS NULL",
    ],
}
_CHANGE_LOG_INSERT = ("INSERT INTO change_log (origin, agent, tier, kind, key, at_ms, actor, "
                      "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_HISTORY_APPEND = (
    "INSERT INTO history (agent, tier, key, version, seq, kind, at_ms, actor, value, "
    "metadata, size_bytes) VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(version), 0) + 1 FROM "
    "history WHERE agent = ?1 AND tier = ?2 AND key = ?3), (SELECT COALESCE(MAX(seq), 0) + 1 "
    "FROM history WHERE agent = ?1), ?4, ?5, ?6, ?7, ?8, ?9) RETURNING version")
_HISTORY_INSERT = ("INSERT INTO history (agent, tier, key, kind, at_ms, actor, value, metadata, "
                   "size_bytes, version, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_HISTORY_TRIM_VERSIONS = ("DELETE FROM history WHERE agent = ? AND tier = ? AND key = ? "
                          "AND version <= ? RETURNING size_bytes")
_HISTORY_SELECT = f"SELECT {rows.columns(rows.HISTORY_COLUMNS)} FROM history WHERE agent = ?"
_HISTORY_PRUNE = rows.history_prune_sql(lambda n: f"?{n}") + " RETURNING size_bytes"
_HISTORY_NEWEST = rows.history_newest_sql(lambda n: f"?{n}")
_CORE_SELECT = f"SELECT {rows.columns(rows.CORE_COLUMNS)} FROM core_blocks WHERE agent = ?"
_WORKING_SELECT = f"SELECT {rows.columns(rows.WORKING_COLUMNS)} FROM working WHERE agent = ?"
_ENTITY_SELECT = f"SELECT {rows.columns(rows.ENTITY_COLUMNS, 'e')} FROM entities AS e"
_CORE_PUT = rows.upsert_sql("core_blocks", "block_type", rows.CORE_COLUMNS, lambda _: "?")
_WORKING_PUT = rows.upsert_sql("working", "key", rows.WORKING_PUT_COLUMNS, lambda _: "?")
_ENTITY_PUT = rows.upsert_sql("entities", "id", rows.ENTITY_PUT_COLUMNS, lambda _: "?")
_ENTITY_SKETCHES = ("SELECT id, entity_type, embedding_sketch FROM entities WHERE agent = ? "
                    "AND embedding IS NOT NULL AND embedding_sketch IS NOT NULL")
_ENTITY_UNSKETCHED = ("SELECT id, entity_type, embedding FROM entities WHERE agent = ? "
                      "AND embedding IS NOT NULL AND embedding_sketch IS NULL")
_ENTITY_VECTORS_VERSION = rows.ENTITY_VECTORS_VERSION_SQL.format(agent="?")
_SQLITE_PARAMS_MAX = 32_766  # host parameters per statement (SQLite ≥ 3.32)
# Entities per INSERT of many: as many as the parameters allow. Each statement is one
# savepoint, and at every savepoint FTS5 writes the index terms it holds in memory to disk
# (fts5SavepointMethod), so a statement per row costs the index a flush and merge per row.
_ENTITY_PUT_ROWS_MAX = _SQLITE_PARAMS_MAX // (1 + len(rows.ENTITY_PUT_COLUMNS))


@functools.lru_cache(maxsize=4)
def _entity_put_rows_sql(rows_count: int) -> str:
    return rows.upsert_sql("entities", "id", rows.ENTITY_PUT_COLUMNS, lambda _: "?",
                           rows_count)


def _trigram_query(folded_query: str) -> str:
    """An FTS5 query for the rows holding every distinct trigram of `folded_query` (at least
    3 characters): each a quoted string, so no character of it is query syntax."""
    trigrams = dict.fromkeys(folded_query[i:i + 3] for i in range(len(folded_query) - 2))
    return " ".join('"' + trigram.replace('"', '""') + '"' for trigram in trigrams)


def _storage_error(exc: BaseException) -> StorageError:
    text = str(exc)
    lowered = text.lower()
    transient = "locked" in lowered or "busy" in lowered
    return StorageError(f"sqlite: {text}", transient=transient)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _ConnectionMemory:
    """What one connection knows of the file between its transactions, true while no other
    connection has committed: a write transaction compares `PRAGMA data_version` first
    (`checked`) and forgets everything when it moved."""

    def __init__(self) -> None:
        self.data_version: int | None = None
        self.watched: bool | None = None  # does another origin read the change log?
        self.history_bytes: dict[str, int] = {}  # agent → bytes of its history

    def checked(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self.data_version:
            self.data_version = version
            self.watched = None
            self.history_bytes.clear()

    def is_watched(self, db: sqlite3.Connection, origin: str) -> bool:
        if self.watched is None:
            self.watched = db.execute("SELECT EXISTS (SELECT 1 FROM change_watchers "
                                      "WHERE origin != ?)", (origin,)).fetchone()[0] == 1
        return self.watched


class SqliteTx:
    """One transaction on the connection, bound to one agent.

    Its methods run plain sqlite3 calls and never suspend, so they must run on the
    connection's thread: a whole body goes there in one hop (SqliteBackend.run), or each
    call hops alone (_HoppingTx, what `transaction()` hands out).
    """

    def __init__(self, db: sqlite3.Connection, agent: str, memory: _ConnectionMemory, *,
                 write: bool) -> None:
        self.agent = agent
        self._db = db
        self._memory = memory
        self._write = write
        self.events: list[ChangeEvent] = []
        self.history_bytes: int | None = None  # the agent's, once this transaction knows it
        # A write transaction reads the rows of every block at its first core read
        # (set_block reads one block, then all of them) and keeps them until it changes one.
        self._block_rows: list[Any] | None = None

    def emit(self, event: ChangeEvent) -> None:
        self.events.append(event)

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        return await body(self)

    # plumbing
    def _execute(self, sql: str, params: tuple = ()) -> int:
        try:
            return self._db.execute(sql, params).rowcount
        except (sqlite3.Error, OverflowError) as exc:
            raise _storage_error(exc) from exc

    def _executemany(self, sql: str, params: list[tuple]) -> None:
        try:
            self._db.executemany(sql, params)
        except (sqlite3.Error, OverflowError) as exc:
            raise _storage_error(exc) from exc

    def _fetchall(self, sql: str, params: tuple = ()) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except (sqlite3.Error, OverflowError) as exc:
            raise _storage_error(exc) from exc

    def _fetchone(self, sql: str, params: tuple = ()) -> Any:
        try:
            return self._db.execute(sql, params).fetchone()
        except (sqlite3.Error, OverflowError) as exc:
            raise _storage_error(exc) from exc

    # core
    async def core_get(self, block_type: BlockType) -> MemoryBlock | None:
        block_type = BlockType(block_type)
        if self._write:
            row = next((r for r in self._every_block_row() if r[0] == block_type.value), None)
        else:
            row = self._fetchone(f"{_CORE_SELECT} AND block_type = ?",
                                 (self.agent, block_type.value))
        return None if row is None else rows.block_from_row(row)

    async def core_list(self) -> list[MemoryBlock]:
        return [rows.block_from_row(r) for r in self._every_block_row()]

    def _every_block_row(self) -> list[Any]:
        found = self._block_rows
        if found is None:
            found = self._fetchall(_CORE_SELECT, (self.agent,))
            self._block_rows = found if self._write else None
        return found

    async def core_put(self, block: MemoryBlock) -> None:
        self._block_rows = None
        self._execute(_CORE_PUT, rows.block_params(self.agent, block))

    async def core_delete(self, block_type: BlockType) -> bool:
        self._block_rows = None
        return self._execute("DELETE FROM core_blocks WHERE agent = ? AND block_type = ?",
                             (self.agent, BlockType(block_type).value)) > 0

    # working
    async def working_get(self, key: str) -> WorkingEntry | None:
        row = self._fetchone(f"{_WORKING_SELECT} AND key = ?", (self.agent, key))
        return None if row is None else rows.entry_from_row(row)

    async def working_put(self, entry: WorkingEntry) -> None:
        self._execute(_WORKING_PUT, rows.entry_params(self.agent, entry))

    async def working_put_many(self, entries: list[WorkingEntry]) -> None:
        self._executemany(_WORKING_PUT, [rows.entry_params(self.agent, e) for e in entries])

    async def working_sizes(self, keys: Iterable[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for chunk in _chunks(list(keys), _SQLITE_PARAMS_MAX - 1):
            sizes.update(self._fetchall(
                f"SELECT key, size_bytes FROM working WHERE agent = ? "
                f"AND key IN ({', '.join('?' * len(chunk))})", (self.agent, *chunk)))
        return sizes

    async def working_delete(self, key: str) -> bool:
        return self._execute("DELETE FROM working WHERE agent = ? AND key = ?",
                             (self.agent, key)) > 0

    async def working_list(self, prefix: str, now_ms: int, limit: int) -> list[WorkingEntry]:
        found = self._fetchall(
            f"{_WORKING_SELECT} AND substr(key, 1, length(?)) = ? AND expires_at_ms > ? "
            "ORDER BY key LIMIT ?", (self.agent, prefix, prefix, now_ms, max(0, limit)))
        entries = [rows.entry_from_row(r) for r in found]
        return [e for e in entries if e.key.startswith(prefix)]

    async def working_usage(self, now_ms: int | None, exclude_key: str | None) -> tuple[int, int]:
        if now_ms is None:  # every stored entry: the kept totals, less the excluded key
            row = self._fetchone(
                "SELECT t.size_bytes - COALESCE(w.size_bytes, 0), "
                "t.entries - (w.key IS NOT NULL) FROM working_totals AS t "
                "LEFT JOIN working AS w ON w.agent = t.agent AND w.key = ? "
                "WHERE t.agent = ?", (exclude_key, self.agent))
            return (0, 0) if row is None else (int(row[0]), int(row[1]))
        row = self._fetchone(
            "SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM working WHERE agent = ? "
            "AND (? IS NULL OR key != ?) AND (? IS NULL OR expires_at_ms > ?)",
            (self.agent, exclude_key, exclude_key, now_ms, now_ms))
        return int(row[0]), int(row[1])

    async def working_delete_expired(self, now_ms: int, limit: int) -> list[str]:
        lapsed = ("SELECT key FROM working WHERE agent = ? AND expires_at_ms <= ? "
                  "ORDER BY expires_at_ms, key LIMIT ?")
        params = (self.agent, now_ms, max(0, limit))
        keys = self._fetchall(lapsed, params)
        if keys:
            self._execute(f"DELETE FROM working WHERE agent = ? AND key IN ({lapsed})",
                          (self.agent, *params))
        return sorted(r[0] for r in keys)

    async def working_clear(self) -> list[str]:
        keys = self._fetchall("SELECT key FROM working WHERE agent = ? ORDER BY key",
                              (self.agent,))
        if keys:
            self._execute("DELETE FROM working WHERE agent = ?", (self.agent,))
        return [r[0] for r in keys]

    # archival
    async def entity_get(self, entity_id: str) -> Entity | None:
        row = self._fetchone(f"{_ENTITY_SELECT} WHERE e.agent = ? AND e.id = ?",
                             (self.agent, entity_id))
        return None if row is None else rows.entity_from_row(row)

    async def entity_get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        found: dict[str, Entity] = {}
        for chunk in _chunks(list(entity_ids), _SQLITE_PARAMS_MAX - 1):
            for row in self._fetchall(
                    f"{_ENTITY_SELECT} WHERE e.agent = ? "
                    f"AND e.id IN ({', '.join('?' * len(chunk))})", (self.agent, *chunk)):
                entity = rows.entity_from_row(row)
                found[entity.id] = entity
        return found

    async def entity_put(self, entity: Entity) -> None:
        self._execute(_ENTITY_PUT, rows.entity_params(self.agent, entity, embedding_as_json=True))

    async def entity_put_many(self, entities: list[Entity]) -> None:
        params = [rows.entity_params(self.agent, e, embedding_as_json=True) for e in entities]
        for chunk in _chunks(params, _ENTITY_PUT_ROWS_MAX):
            self._execute(_entity_put_rows_sql(len(chunk)),
                          tuple(value for row in chunk for value in row))

    async def entity_delete(self, entity_id: str) -> bool:
        return self._execute("DELETE FROM entities WHERE agent = ? AND id = ?",
                             (self.agent, entity_id)) > 0

    async def entity_list(self, entity_type: EntityType | None, limit: int,
                          offset: int) -> list[Entity]:
        type_value = None if entity_type is None else EntityType(entity_type).value
        found = self._fetchall(
            f"{_ENTITY_SELECT} WHERE e.agent = ? AND (? IS NULL OR e.entity_type = ?) "
            "ORDER BY e.updated_at DESC, e.id ASC LIMIT ? OFFSET ?",
            (self.agent, type_value, type_value, max(0, limit), max(0, offset)))
        return [rows.entity_from_row(r) for r in found]

    async def entity_count(self, entity_type: EntityType | None) -> int:
        type_value = None if entity_type is None else EntityType(entity_type).value
        row = self._fetchone(
            "SELECT COUNT(*) FROM entities WHERE agent = ? AND (? IS NULL OR entity_type = ?)",
            (self.agent, type_value, type_value))
        return int(row[0])

    async def entity_search(self, folded_query: str, entity_type: EntityType | None,
                            limit: int) -> list[Entity]:
        type_value = None if entity_type is None else EntityType(entity_type).value
        limit = max(0, limit)
        scope = (self.agent, type_value, type_value)
        scoped = "e.agent = ? AND (? IS NULL OR e.entity_type = ?)"
        # instr() re-checks every candidate, so the result is exactly the literal matches.
        exact = "(instr(e.name_folded, ?) > 0 OR instr(e.content_folded, ?) > 0)"
        newest_first = "ORDER BY e.updated_at DESC, e.id ASC"
        literal = (folded_query, folded_query)
        # The newest rows, reading their folded text: if they hold `limit` matches, those are
        # the answer (every other match is older). Sorted again in Python: an ORDER BY here
        # would read all the newest rows before it stops at `limit` matches.
        recent = (f"SELECT {rows.columns(rows.ENTITY_COLUMNS, 'e')} FROM (SELECT * FROM "
                  f"entities AS e WHERE {scoped} {newest_first} LIMIT ?) AS e WHERE {exact} "
                  "LIMIT ?", (*scope, SEARCH_RECENT_SCAN_ROWS_MAX, *literal, limit))
        if len(folded_query) < 3:  # too short for trigrams: the newest rows, then every row
            found = self._fetchall(*recent)
            if len(found) < limit:
                found = self._fetchall(f"{_ENTITY_SELECT} WHERE {scoped} AND {exact} "
                                       f"{newest_first} LIMIT ?", (*scope, *literal, limit))
            return sorted((rows.entity_from_row(r) for r in found), key=entity_sort_key)
        trigrams = _trigram_query(folded_query)
        # CROSS JOIN keeps the index's candidates the outer loop: the planner would
        # otherwise walk every row of the agent in date order to skip the sort.
        indexed = (f"SELECT {rows.columns(rows.ENTITY_COLUMNS, 'e')} FROM (SELECT rowid AS rid "
                   "FROM entities_fts WHERE entities_fts MATCH ?) AS m CROSS JOIN entities AS e "
                   f"ON e.rid = m.rid WHERE {scoped} AND {exact} {newest_first} LIMIT ?",
                   (trigrams, *scope, *literal, limit))
        candidates = self._fetchone(
            "SELECT COUNT(*) FROM (SELECT rowid FROM entities_fts WHERE entities_fts MATCH ? "
            "LIMIT ?)", (trigrams, SEARCH_INDEX_CANDIDATES_COUNT_MAX + 1))[0]
        found = []
        if candidates > SEARCH_INDEX_CANDIDATES_COUNT_MAX:  # a common word: newest rows first
            found = self._fetchall(*recent)
        if candidates and len(found) < limit:
            found = self._fetchall(*indexed)
        return sorted((rows.entity_from_row(r) for r in found), key=entity_sort_key)

    async def entity_embeddings(self, entity_ids: Iterable[str]) -> dict[str, bytes | Sequence[float]]:
        found: dict[str, bytes | Sequence[float]] = {}
        for chunk in _chunks(list(entity_ids), _SQLITE_PARAMS_MAX - 1):
            for entity_id, exact, embedding in self._fetchall(rows.ENTITY_EXACT_SQL.format(
                    agent="?", ids=", ".join("?" * len(chunk))), (self.agent, *chunk)):
                found[entity_id] = exact if exact is not None else json.loads(embedding)
        return found

    async def entity_vectors_version(self) -> int:
        row = self._fetchone(_ENTITY_VECTORS_VERSION, (self.agent,))
        return 0 if row is None else int(row[0])

    async def entity_sketches(self) -> list[tuple[str, str, bytes | None, Sequence[float] | None]]:
        sketched = self._fetchall(_ENTITY_SKETCHES, (self.agent,))  # the covering index
        unsketched = self._fetchall(_ENTITY_UNSKETCHED, (self.agent,))
        return [(entity_id, entity_type, sketch, None) for entity_id, entity_type, sketch
                in sketched] + [(entity_id, entity_type, None, json.loads(embedding))
                                for entity_id, entity_type, embedding in unsketched]

    # history
    async def history_append(self, record: HistoryRecord, versions_max: int, bytes_max: int,
                             bytes_pruned: int) -> int:
        params = rows.history_params(self.agent, record)
        total = self._history_bytes()
        version = int(self._fetchone(_HISTORY_APPEND, params)[0])
        total += params[-1]  # the record's size_bytes
        if version > versions_max:
            total -= self._removed_bytes(_HISTORY_TRIM_VERSIONS,
                                         (*params[:3], version - versions_max))
        if total > bytes_max:
            total -= self._removed_bytes(_HISTORY_PRUNE, (self.agent, total - bytes_pruned))
        self.history_bytes = total
        return version

    async def history_append_many(self, records: list[HistoryRecord], versions_max: int,
                                  bytes_max: int, bytes_pruned: int) -> list[int]:
        """Versions and seqs counted here; the inserts go as one executemany, broken only
        where a trim or prune must see the records before it (as one call each would)."""
        total = self._history_bytes()
        newest = self._newest_versions(records)
        seq = int(self._fetchone("SELECT COALESCE(MAX(seq), 0) FROM history WHERE agent = ?",
                                 (self.agent,))[0])
        texts: dict[int, str] = {}  # metadata JSON by its mapping's id: a batch shares one
        pending: list[tuple] = []
        versions: list[int] = []
        for record in records:
            name = (Tier(record.tier).value, record.key)
            version = newest[name] = newest.get(name, 0) + 1
            seq += 1
            if id(record.metadata) not in texts:
                texts[id(record.metadata)] = metadata_json(record.metadata)
            params = rows.history_params(self.agent, record, texts[id(record.metadata)])
            pending.append((*params, version, seq))
            versions.append(version)
            total += params[-1]
            if version > versions_max:
                self._insert_history(pending)
                total -= self._removed_bytes(_HISTORY_TRIM_VERSIONS,
                                             (*params[:3], version - versions_max))
            if total > bytes_max:
                self._insert_history(pending)
                total -= self._removed_bytes(_HISTORY_PRUNE, (self.agent, total - bytes_pruned))
        self._insert_history(pending)
        self.history_bytes = total
        return versions

    def _newest_versions(self, records: list[HistoryRecord]) -> dict[tuple[str, str], int]:
        """(tier, key) → the newest stored version, for the keys of `records` with one."""
        keys: dict[str, set[str]] = {}
        for record in records:
            keys.setdefault(Tier(record.tier).value, set()).add(record.key)
        newest: dict[tuple[str, str], int] = {}
        for tier, names in keys.items():
            for chunk in _chunks(sorted(names), _SQLITE_PARAMS_MAX - 2):
                for key, version in self._fetchall(
                        f"SELECT key, MAX(version) FROM history WHERE agent = ? AND tier = ? "
                        f"AND key IN ({', '.join('?' * len(chunk))}) GROUP BY key",
                        (self.agent, tier, *chunk)):
                    newest[tier, key] = version
        return newest

    def _insert_history(self, pending: list[tuple]) -> None:
        """Insert the pending history rows and empty the list."""
        if pending:
            self._executemany(_HISTORY_INSERT, pending)
            pending.clear()

    def _history_bytes(self) -> int:
        """The agent's history bytes: known to this transaction or connection, or summed."""
        if self.history_bytes is None:
            known = self._memory.history_bytes.get(self.agent)
            self.history_bytes = known if known is not None else int(self._fetchone(
                "SELECT COALESCE(SUM(size_bytes), 0) FROM history WHERE agent = ?",
                (self.agent,))[0])
        return self.history_bytes

    def _removed_bytes(self, delete: str, params: tuple) -> int:
        return sum(size for size, in self._fetchall(delete, params))

    async def history_list(self, tier: Tier, key: str, limit: int) -> list[HistoryRecord]:
        found = self._fetchall(f"{_HISTORY_SELECT} AND tier = ? AND key = ? "
                               "ORDER BY version DESC LIMIT ?",
                               (self.agent, Tier(tier).value, key, max(0, limit)))
        return [rows.history_from_row(r) for r in found]

    async def history_get(self, tier: Tier, key: str, version: int) -> HistoryRecord | None:
        row = self._fetchone(f"{_HISTORY_SELECT} AND tier = ? AND key = ? AND version = ?",
                             (self.agent, Tier(tier).value, key, version))
        return None if row is None else rows.history_from_row(row)

    async def history_since(self, at_ms: int, limit: int) -> list[HistoryRecord]:
        found = self._fetchall(f"{_HISTORY_SELECT} AND at_ms > ? ORDER BY seq LIMIT ?",
                               (self.agent, at_ms, max(0, limit)))
        return [rows.history_from_row(r) for r in found]

    async def history_newest(self, tier: Tier | None, at_ms: int) -> list[HistoryRecord]:
        found = self._fetchall(_HISTORY_NEWEST, (self.agent, None if tier is None
                                                 else Tier(tier).value, at_ms))
        return [rows.history_from_row(r) for r in found]

    # fault injection
    async def corrupt(self, tier: Tier, key: str) -> bool:
        self._block_rows = None
        select, update, key = rows.corruption_sql(tier, key, lambda _: "?")
        row = self._fetchone(select, (self.agent, key))
        if row is not None:
            self._execute(update, (rows.damaged(row[0]), self.agent, key))
        return row is not None


class _HoppingTx:
    """A SqliteTx seen from the event loop: each call is one hop to the connection's thread,
    and `run` takes a whole body there in one hop."""

    def __init__(self, conn: aiosqlite.Connection, inner: SqliteTx) -> None:
        self._conn = conn
        self._inner = inner
        self.agent = inner.agent
        self.emit = inner.emit

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._conn._execute(completed, body(self._inner))

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._inner, name)

        async def call(*args: Any) -> Any:
            return await self._conn._execute(completed, operation(*args))
        return call


def _begin(db: sqlite3.Connection, memory: _ConnectionMemory, write: bool) -> None:
    if write:
        try:
            db.execute("BEGIN IMMEDIATE")
            memory.checked(db)
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise _storage_error(exc) from exc


def _commit(db: sqlite3.Connection, tx: SqliteTx, origin: str, write: bool) -> None:
    """Log the transaction's events if another process watches, and commit; roll back on
    failure. What the transaction learnt, the connection keeps once it committed."""
    assert write or not tx.events, "only a write transaction changes anything"
    if not write:
        return
    memory = tx._memory
    try:
        if tx.events and memory.is_watched(db, origin):
            db.executemany(_CHANGE_LOG_INSERT, [  # the StrEnum members bind as their text
                (origin, tx.agent, e.tier, e.kind, e.key, e.at_ms, e.actor, e.version)
                for e in tx.events])
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(db, tx, write)
        raise _storage_error(exc) from exc
    if tx.history_bytes is not None:
        memory.history_bytes[tx.agent] = tx.history_bytes


def _rollback(db: sqlite3.Connection, tx: SqliteTx, write: bool) -> None:
    tx.events.clear()
    if write:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _run_whole(db: sqlite3.Connection, tx: SqliteTx, body: Callable[[Tx], Awaitable[T]],
               origin: str, write: bool) -> T:
    """Begin, run `body`, log its events and commit: on the connection's thread, at once."""
    _begin(db, tx._memory, write)
    try:
        result = completed(body(tx))
    except BaseException:
        _rollback(db, tx, write)
        raise
    _commit(db, tx, origin, write)
    return result


def _register_watcher(db: sqlite3.Connection, origin: str) -> int:
    """Register `origin` as a reader of the change log; the newest log row's seq then.

    One write transaction: a writer decides whether to log while it holds the write lock,
    so every commit after this one is logged for `origin`."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR IGNORE INTO change_watchers (origin) VALUES (?)", (origin,))
            newest = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM change_log").fetchone()[0])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _storage_error(exc) from exc
    return newest


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
        self._memory = _ConnectionMemory()

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
            conn = self._open_connection()
            self._seen_seq = await conn._execute(_register_watcher, conn._conn, self.origin)
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
                self._conn, "SELECT seq, origin, agent, tier, kind, key, at_ms, actor, version "
                "FROM change_log "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (self._seen_seq, CHANGE_FEED_BATCH_ROWS_MAX))
            # A full batch may leave rows behind: look again at the next poll.
            self._data_version = None if len(rows) == CHANGE_FEED_BATCH_ROWS_MAX else version
        for seq, origin, agent, tier, kind, key, at_ms, actor, version in rows:
            assert seq > self._seen_seq, "the change log is read in order"
            self._seen_seq = seq
            if origin != self.origin:
                self.changes.publish(agent, [ChangeEvent(Tier(tier), ChangeKind(kind), key,
                                                         at_ms, actor, version)])

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            await stop_background_task(poller)
            if self._conn is not None:
                async with self._lock:
                    await _fetchall(self._conn, "DELETE FROM change_watchers WHERE origin = ?",
                                    (self.origin,))
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                try:
                    await conn.close()
                except sqlite3.Error as exc:
                    raise _storage_error(exc) from exc

    def _open_connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailableError(f"{self.url} is not open")
        return self._conn

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        async with self._lock:
            conn = self._open_connection()
            tx = SqliteTx(conn._conn, agent, self._memory, write=write)
            result = await conn._execute(_run_whole, conn._conn, tx, body, self.origin, write)
            events = list(tx.events)
        if events:
            self.changes.publish(agent, events)
        return result

    async def working_put_if_room(self, agent: str, entry: WorkingEntry, size_bytes_max: int,
                                  entries_max: int, record: HistoryRecord,
                                  history_limits: tuple[int, int, int]) -> int | None:
        return None  # a body is one hop already

    async def shortcut(self, agent: str, request: Shortcut[T]) -> T | None:
        return None  # a body is one hop already

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[Tx]:
        async with self._lock:
            conn = self._open_connection()
            db = conn._conn
            await conn._execute(_begin, db, self._memory, write)
            tx = SqliteTx(db, agent, self._memory, write=write)
            try:
                yield _HoppingTx(conn, tx)
            except BaseException:
                await conn._execute(_rollback, db, tx, write)
                raise
            await conn._execute(_commit, db, tx, self.origin, write)
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


async def _fetchall(conn: aiosqlite.Connection, sql: str, params: tuple = ()) -> list[Any]:
    try:
        return list(await conn.execute_fetchall(sql, params))
    except (sqlite3.Error, OverflowError) as exc:
        raise _storage_error(exc) from exc


__all__ = ["SCHEMA_VERSION", "SqliteBackend", "SqliteTx"]
