"""The Postgres backend: an asyncpg pool, every row scoped by agent, LISTEN/NOTIFY changes.

Same semantics as the simulator (umi_store.backends.sim): checksums beside stored values,
archival order updated_at descending then id (COLLATE "C", so code-point order), literal
substring search on casefolded text served by pg_trgm GIN indexes. Writers for one agent
are serialised across processes by a transaction-scoped advisory lock on the agent.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg

from ..constants import CORE_MEMORY_IMPORTANCE_DEFAULT
from ..errors import StorageError, StoreUnavailableError
from ..integrity import checksum
from ..models import (AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity, EntityType,
                      HistoryRecord, MemoryBlock, Tier, WorkingEntry, metadata_json)
from . import rows
from .agents import agent_tier_sql, summaries_from_tiers
from .base import ChangeHub, Tx
from .shortcuts import (CoreDelete, CorePut, CoreSetImportance, EntityForget, EntityPut,
                        EntityPutMany, Shortcut, WorkingDelete, WorkingPutMany, WorkingRemove,
                        WorkingRenew)

T = TypeVar("T")

SCHEMA_VERSION = 6
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
    # Similarity (umi_store.similarity): each embedding's sketch, and a per-agent version
    # of the embeddings, moved by a trigger, that the cached sketches are checked against.
    5: [
        "ALTER TABLE entities ADD COLUMN IF NOT EXISTS embedding_sketch BYTEA",
        "ALTER TABLE entities ADD COLUMN IF NOT EXISTS embedding_exact BYTEA",
        """CREATE TABLE IF NOT EXISTS entity_vectors_versions (
            agent TEXT PRIMARY KEY,
            version BIGINT NOT NULL
        )""",
        """CREATE OR REPLACE FUNCTION umi_entity_vectors_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO entity_vectors_versions AS v (agent, version)
            VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.agent ELSE NEW.agent END, 1)
            ON CONFLICT (agent) DO UPDATE SET version = v.version + 1;
            RETURN NULL;
        END $$""",
        *(f"CREATE OR REPLACE TRIGGER entity_vectors_{name} AFTER {event} ON entities "
          f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION umi_entity_vectors_changed()"
          for name, event, changed in (
              ("ai", "INSERT", "NEW.embedding IS NOT NULL"),
              ("au", "UPDATE", "OLD.embedding IS DISTINCT FROM NEW.embedding OR "
               "(NEW.embedding IS NOT NULL AND OLD.entity_type IS DISTINCT FROM NEW.entity_type)"),
              ("ad", "DELETE", "OLD.embedding IS NOT NULL"))),
    ],
    # One round trip for the common writes (umi_store.backends.shortcuts): each function
    # takes the agent's lock, checks the case it serves (no row found for it: the caller
    # runs the tier's full rule, nothing changed), writes, appends the history record
    # and NOTIFYs the event with its version. Every one begins with the same context:
    # (agent, lock key, actor, history limits, channel, payload head).
    6: [
        # The totals kept per statement (transition tables), not per row: a batch of many
        # rows updates its agent's totals row once, not once per row (each such update of
        # the same row walks the versions the earlier ones left: quadratic in the batch).
        """CREATE OR REPLACE FUNCTION umi_working_totals_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE working_totals AS t SET size_bytes = t.size_bytes - r.size_bytes,
                    entries = t.entries - r.entries
                FROM (SELECT agent, SUM(size_bytes) AS size_bytes, COUNT(*) AS entries
                      FROM removed GROUP BY agent) AS r
                WHERE t.agent = r.agent;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO working_totals AS t (agent, size_bytes, entries)
                SELECT agent, SUM(size_bytes), COUNT(*) FROM added GROUP BY agent
                ON CONFLICT (agent) DO UPDATE SET size_bytes = t.size_bytes + excluded.size_bytes,
                    entries = t.entries + excluded.entries;
            END IF;
            RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS working_totals ON working",
        "CREATE TRIGGER working_totals_added AFTER INSERT ON working REFERENCING NEW TABLE "
        "AS added FOR EACH STATEMENT EXECUTE FUNCTION umi_working_totals_changed()",
        "CREATE TRIGGER working_totals_updated AFTER UPDATE ON working REFERENCING OLD TABLE "
        "AS removed NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION umi_working_totals_changed()",
        "CREATE TRIGGER working_totals_removed AFTER DELETE ON working REFERENCING OLD TABLE "
        "AS removed FOR EACH STATEMENT EXECUTE FUNCTION umi_working_totals_changed()",
        """CREATE OR REPLACE FUNCTION umi_history_totals_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                UPDATE history_totals AS t SET size_bytes = t.size_bytes - r.size_bytes
                FROM (SELECT agent, SUM(size_bytes) AS size_bytes FROM removed
                      GROUP BY agent) AS r
                WHERE t.agent = r.agent;
            ELSE
                INSERT INTO history_totals AS t (agent, size_bytes)
                SELECT agent, SUM(size_bytes) FROM added GROUP BY agent
                ON CONFLICT (agent) DO UPDATE SET size_bytes = t.size_bytes + excluded.size_bytes;
            END IF;
            RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS history_totals ON history",
        "CREATE TRIGGER history_totals_added AFTER INSERT ON history REFERENCING NEW TABLE "
        "AS added FOR EACH STATEMENT EXECUTE FUNCTION umi_history_totals_changed()",
        "CREATE TRIGGER history_totals_removed AFTER DELETE ON history REFERENCING OLD TABLE "
        "AS removed FOR EACH STATEMENT EXECUTE FUNCTION umi_history_totals_changed()",
        f"""CREATE OR REPLACE FUNCTION umi_notify_events(p_channel text, p_head text,
            p_items text[]) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            body text := '';
            item text;
        BEGIN
            FOREACH item IN ARRAY p_items LOOP
                IF body <> '' AND octet_length(p_head) + octet_length(body)
                        + octet_length(item) + 4 > {CHANGE_FEED_PAYLOAD_BYTES_MAX} THEN
                    PERFORM pg_notify(p_channel, p_head || body || ']}}');
                    body := '';
                END IF;
                body := CASE WHEN body = '' THEN item ELSE body || ', ' || item END;
            END LOOP;
            IF body <> '' THEN
                PERFORM pg_notify(p_channel, p_head || body || ']}}');
            END IF;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_event_json(p_tier text, p_kind text, p_key text,
            p_at_ms bigint, p_actor text, p_version bigint) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT json_build_array(p_tier, p_kind, p_key, p_at_ms, p_actor, p_version)::text
        $$""",
        # A float as Python's repr writes it (1.0, not 1), for metadata JSON.
        """CREATE OR REPLACE FUNCTION umi_json_float(p double precision) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE WHEN p = trunc(p) AND abs(p) < 1e15 THEN p::text || '.0'
                        ELSE p::text END
        $$""",
        """CREATE OR REPLACE FUNCTION umi_record(
            p_agent text, p_actor text, p_limits bigint[], p_channel text, p_head text,
            p_tier text, p_key text, p_kind text, p_at_ms bigint, p_value bytea,
            p_metadata text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            appended bigint;
        BEGIN
            appended := umi_history_append(p_agent, p_tier, p_key, p_kind, p_at_ms, p_actor,
                p_value, p_metadata, octet_length(p_key) + COALESCE(octet_length(p_value), 0)
                + length(p_metadata), p_limits[1], p_limits[2], p_limits[3]);
            PERFORM umi_notify_events(p_channel, p_head, ARRAY[umi_event_json(p_tier, p_kind,
                p_key, p_at_ms, p_actor, appended)]);
            RETURN appended;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_core_put(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_block_type text, p_content text, p_checksum bigint,
            p_label text, p_importance double precision,
            p_importance_default double precision, p_if_version bigint,
            p_core_bytes_max bigint, OUT o_label text, OUT o_importance double precision,
            OUT o_version bigint, OUT o_created_at bigint, OUT o_history_version bigint)
            RETURNS SETOF record
        LANGUAGE plpgsql AS $$
        DECLARE
            old core_blocks%ROWTYPE;
            others bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT * INTO old FROM core_blocks AS b
            WHERE b.agent = p_agent AND b.block_type = p_block_type;
            IF p_if_version IS NOT NULL AND p_if_version <> COALESCE(old.version, 0) THEN
                RETURN;
            END IF;
            SELECT COALESCE(SUM(octet_length(b.content)), 0) INTO others FROM core_blocks AS b
            WHERE b.agent = p_agent AND b.block_type <> p_block_type;
            IF others + octet_length(p_content) > p_core_bytes_max THEN
                RETURN;
            END IF;
            o_label := CASE WHEN p_label IS NULL THEN old.label ELSE NULLIF(p_label, '') END;
            o_importance := COALESCE(p_importance, old.importance, p_importance_default);
            o_version := COALESCE(old.version, 0) + 1;
            o_created_at := COALESCE(old.created_at, p_now);
            INSERT INTO core_blocks AS b (agent, block_type, content, label, importance,
                                          version, created_at, updated_at, checksum)
            VALUES (p_agent, p_block_type, p_content, o_label, o_importance, o_version,
                    o_created_at, p_now, p_checksum)
            ON CONFLICT (agent, block_type) DO UPDATE SET content = excluded.content,
                label = excluded.label, importance = excluded.importance,
                version = excluded.version, created_at = excluded.created_at,
                updated_at = excluded.updated_at, checksum = excluded.checksum;
            o_history_version := umi_record(p_agent, p_actor, p_limits, p_channel, p_head,
                'core', p_block_type, 'set', p_now, convert_to(p_content, 'UTF8'),
                umi_core_metadata(o_version, o_created_at, o_importance, o_label));
            RETURN NEXT;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_core_metadata(p_version bigint, p_created_at bigint,
            p_importance double precision, p_label text) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT format('{"block_version": %s, "created_at": %s, "importance": %s, '
                          '"label": %s}', p_version, p_created_at, umi_json_float(p_importance),
                          COALESCE(to_json(p_label)::text, 'null'))
        $$""",
        # The stored value as its newest version recorded it: what a change that keeps a
        # value (touch, expire, set_importance) copies into history. Bytes that differ
        # were damaged since; the tier's body then reads them and refuses by checksum.
        """CREATE OR REPLACE FUNCTION umi_recorded_value(p_agent text, p_tier text,
            p_key text) RETURNS bytea
        LANGUAGE sql STABLE AS $$
            SELECT h.value FROM history AS h
            WHERE h.agent = p_agent AND h.tier = p_tier AND h.key = p_key
            ORDER BY h.version DESC LIMIT 1
        $$""",
        """CREATE OR REPLACE FUNCTION umi_core_set_importance(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_block_type text, p_importance double precision,
            OUT o_content text, OUT o_label text, OUT o_version bigint,
            OUT o_created_at bigint, OUT o_history_version bigint) RETURNS SETOF record
        LANGUAGE plpgsql AS $$
        DECLARE
            old core_blocks%ROWTYPE;
            recorded bytea;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT * INTO old FROM core_blocks AS b
            WHERE b.agent = p_agent AND b.block_type = p_block_type;
            recorded := umi_recorded_value(p_agent, 'core', p_block_type);
            IF old.block_type IS NULL OR recorded IS DISTINCT FROM convert_to(old.content, 'UTF8')
                    THEN
                RETURN;
            END IF;
            o_content := old.content;
            o_label := old.label;
            o_version := old.version + 1;
            o_created_at := old.created_at;
            UPDATE core_blocks AS b SET importance = p_importance, version = o_version,
                updated_at = p_now
            WHERE b.agent = p_agent AND b.block_type = p_block_type;
            o_history_version := umi_record(p_agent, p_actor, p_limits, p_channel, p_head,
                'core', p_block_type, 'set', p_now, recorded,
                umi_core_metadata(o_version, o_created_at, p_importance, o_label));
            RETURN NEXT;
        END $$""",
        # touch (p_ttl_ms NULL: the entry's own), expire (a new TTL; zero or less deletes).
        # No row: the body runs; o_kind NULL: the key was not live, nothing changed.
        """CREATE OR REPLACE FUNCTION umi_working_renew(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_key text, p_ttl_ms bigint,
            OUT o_kind text, OUT o_version bigint) RETURNS SETOF record
        LANGUAGE plpgsql AS $$
        DECLARE
            stored working%ROWTYPE;
            ttl bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT * INTO stored FROM working AS w WHERE w.agent = p_agent AND w.key = p_key;
            IF stored.key IS NULL OR stored.expires_at_ms <= p_now THEN
                RETURN NEXT;
                RETURN;
            END IF;
            IF p_ttl_ms <= 0 THEN
                DELETE FROM working AS w WHERE w.agent = p_agent AND w.key = p_key;
                o_kind := 'delete';
                o_version := umi_record(p_agent, p_actor, p_limits, p_channel, p_head,
                    'working', p_key, 'delete', p_now, NULL, '{}');
                RETURN NEXT;
                RETURN;
            END IF;
            IF umi_recorded_value(p_agent, 'working', p_key) IS DISTINCT FROM stored.value THEN
                RETURN;
            END IF;
            ttl := COALESCE(p_ttl_ms, stored.ttl_ms);
            UPDATE working AS w SET ttl_ms = ttl, expires_at_ms = p_now + ttl,
                updated_at = p_now
            WHERE w.agent = p_agent AND w.key = p_key;
            o_kind := 'set';
            o_version := umi_record(p_agent, p_actor, p_limits, p_channel, p_head, 'working',
                p_key, 'set', p_now, stored.value,
                format('{"expires_at_ms": %s, "ttl_ms": %s}', p_now + ttl, ttl));
            RETURN NEXT;
        END $$""",
        # cleanup_expired (p_expired_only: up to p_limit lapsed keys, earliest deadline
        # first) and clear (every key): the keys removed, in key order, each recorded.
        """CREATE OR REPLACE FUNCTION umi_working_remove(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_expired_only boolean, p_limit bigint,
            OUT o_keys text[], OUT o_versions bigint[])
        LANGUAGE plpgsql AS $$
        DECLARE
            keys text[];
            nothing bytea[];
            empty text[];
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT COALESCE(array_agg(w.key ORDER BY w.key), '{}') INTO keys FROM (
                SELECT w.key FROM working AS w WHERE w.agent = p_agent
                AND (NOT p_expired_only OR w.expires_at_ms <= p_now)
                ORDER BY w.expires_at_ms, w.key LIMIT p_limit) AS w;
            nothing := array_fill(NULL::bytea, ARRAY[cardinality(keys)]);
            empty := array_fill('{}'::text, ARRAY[cardinality(keys)]);
            IF NOT umi_history_fits(p_agent, p_limits, keys, nothing, empty) THEN
                RETURN;
            END IF;
            DELETE FROM working AS w WHERE w.agent = p_agent AND w.key = ANY(keys);
            o_versions := umi_record_many(p_agent, p_actor, p_limits, p_channel, p_head,
                'working', CASE WHEN p_expired_only THEN 'expired' ELSE 'delete' END, keys,
                p_now, nothing, empty);
            o_keys := keys;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_core_delete(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_block_type text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            DELETE FROM core_blocks AS b WHERE b.agent = p_agent AND b.block_type = p_block_type;
            IF NOT FOUND THEN
                RETURN 0;
            END IF;
            RETURN umi_record(p_agent, p_actor, p_limits, p_channel, p_head, 'core',
                              p_block_type, 'delete', p_now, NULL, '{}');
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_working_delete(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_key text, p_expiry_actor text,
            OUT o_live boolean, OUT o_version bigint)
        LANGUAGE plpgsql AS $$
        DECLARE
            expires bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            DELETE FROM working AS w WHERE w.agent = p_agent AND w.key = p_key
            RETURNING w.expires_at_ms INTO expires;
            o_live := expires IS NOT NULL AND expires > p_now;
            o_version := 0;
            IF expires IS NOT NULL THEN
                o_version := umi_record(p_agent,
                    CASE WHEN o_live THEN p_actor ELSE p_expiry_actor END, p_limits, p_channel,
                    p_head, 'working', p_key, CASE WHEN o_live THEN 'delete' ELSE 'expired' END,
                    p_now, NULL, '{}');
            END IF;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_entity_put(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_id text, p_entity_type text, p_name text,
            p_content text, p_metadata text, p_embedding double precision[],
            p_checksum bigint, p_name_folded text, p_content_folded text,
            p_must_exist boolean, p_keep_metadata boolean,
            OUT o_created_at bigint, OUT o_metadata text, OUT o_version bigint)
            RETURNS SETOF record
        LANGUAGE plpgsql AS $$
        DECLARE
            old_created bigint;
            old_metadata text;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT e.created_at, e.metadata INTO old_created, old_metadata FROM entities AS e
            WHERE e.agent = p_agent AND e.id = p_id;
            IF old_created IS NULL AND p_must_exist THEN
                RETURN;
            END IF;
            o_created_at := COALESCE(old_created, p_now);
            o_metadata := CASE WHEN p_keep_metadata AND old_created IS NOT NULL
                               THEN old_metadata ELSE p_metadata END;
            INSERT INTO entities AS e (agent, id, entity_type, name, content, metadata,
                embedding, created_at, updated_at, checksum, name_folded, content_folded)
            VALUES (p_agent, p_id, p_entity_type, p_name, p_content, o_metadata, p_embedding,
                    o_created_at, p_now, p_checksum, p_name_folded, p_content_folded)
            ON CONFLICT (agent, id) DO UPDATE SET entity_type = excluded.entity_type,
                name = excluded.name, content = excluded.content, metadata = excluded.metadata,
                embedding = excluded.embedding, created_at = excluded.created_at,
                updated_at = excluded.updated_at, checksum = excluded.checksum,
                name_folded = excluded.name_folded, content_folded = excluded.content_folded;
            o_version := umi_record(p_agent, p_actor, p_limits, p_channel, p_head, 'archival',
                p_id, 'set', p_now, convert_to(p_content, 'UTF8'), umi_entity_metadata(
                    o_created_at, p_entity_type, o_metadata, p_name));
            RETURN NEXT;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_entity_metadata(p_created_at bigint,
            p_entity_type text, p_metadata text, p_name text) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT format('{"created_at": %s, "entity_type": %s, "metadata": %s, "name": %s}',
                          p_created_at, to_json(p_entity_type), p_metadata, to_json(p_name))
        $$""",
        """CREATE OR REPLACE FUNCTION umi_entity_forget(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_id text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            last jsonb;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            DELETE FROM entities AS e WHERE e.agent = p_agent AND e.id = p_id;
            IF NOT FOUND THEN
                RETURN 0;
            END IF;
            SELECT h.metadata::jsonb INTO last FROM history AS h
            WHERE h.agent = p_agent AND h.tier = 'archival' AND h.key = p_id
            ORDER BY h.version DESC LIMIT 1;
            RETURN umi_record(p_agent, p_actor, p_limits, p_channel, p_head, 'archival', p_id,
                'delete', p_now, NULL, '{' || concat_ws(', ',
                    CASE WHEN last ? 'entity_type'
                         THEN '"entity_type": ' || to_json(last ->> 'entity_type') END,
                    CASE WHEN last ? 'name' THEN '"name": ' || to_json(last ->> 'name') END)
                || '}');
        END $$""",
        # Many records of one tier at once, each key new to the batch: versions, the
        # per-key prune and one NOTIFY per payload. False, nothing written, when they would
        # pass the agent's history budget (the caller then records them one by one).
        """CREATE OR REPLACE FUNCTION umi_record_many(
            p_agent text, p_actor text, p_limits bigint[], p_channel text, p_head text,
            p_tier text, p_kind text, p_keys text[], p_at_ms bigint, p_values bytea[],
            p_metadatas text[]) RETURNS bigint[]
        LANGUAGE plpgsql AS $$
        DECLARE
            versions bigint[];
        BEGIN
            WITH appended AS (
                INSERT INTO history (agent, tier, key, version, kind, at_ms, actor, value,
                                     metadata, size_bytes)
                SELECT p_agent, p_tier, r.key, COALESCE((SELECT MAX(h.version) FROM history
                    AS h WHERE h.agent = p_agent AND h.tier = p_tier AND h.key = r.key), 0)
                    + 1, p_kind, p_at_ms, p_actor, r.value, r.metadata,
                    octet_length(r.key) + COALESCE(octet_length(r.value), 0)
                    + length(r.metadata)
                FROM unnest(p_keys, p_values, p_metadatas) WITH ORDINALITY
                    AS r(key, value, metadata, n)
                ORDER BY r.n
                RETURNING key, version)
            SELECT array_agg(a.version ORDER BY r.n) INTO versions
            FROM unnest(p_keys) WITH ORDINALITY AS r(key, n) JOIN appended AS a USING (key);
            DELETE FROM history AS h USING unnest(p_keys, versions) AS v(key, version)
            WHERE h.agent = p_agent AND h.tier = p_tier AND h.key = v.key
            AND v.version > p_limits[1] AND h.version <= v.version - p_limits[1];
            PERFORM umi_notify_events(p_channel, p_head, ARRAY(
                SELECT umi_event_json(p_tier, p_kind, v.key, p_at_ms, p_actor, v.version)
                FROM unnest(p_keys, versions) WITH ORDINALITY AS v(key, version, n)
                ORDER BY v.n));
            RETURN versions;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_history_fits(p_agent text, p_limits bigint[],
            p_keys text[], p_values bytea[], p_metadatas text[]) RETURNS boolean
        LANGUAGE sql STABLE AS $$
            SELECT COALESCE((SELECT t.size_bytes FROM history_totals AS t
                             WHERE t.agent = p_agent), 0)
                + (SELECT COALESCE(SUM(octet_length(r.key) + COALESCE(octet_length(r.value), 0)
                                       + length(r.metadata)), 0)
                   FROM unnest(p_keys, p_values, p_metadatas) AS r(key, value, metadata))
                <= p_limits[2]
        $$""",
        """CREATE OR REPLACE FUNCTION umi_entity_put_many(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_ids text[], p_types text[], p_names text[],
            p_contents text[], p_metadatas text[], p_keeps boolean[], p_checksums bigint[],
            p_names_folded text[], p_contents_folded text[], OUT o_created_at bigint[],
            OUT o_metadata text[], OUT o_versions bigint[]) RETURNS SETOF record
        LANGUAGE plpgsql AS $$
        DECLARE
            records text[];
            contents bytea[];
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT array_agg(COALESCE(e.created_at, p_now) ORDER BY i.n),
                   array_agg(CASE WHEN i.keep AND e.id IS NOT NULL THEN e.metadata
                                  ELSE i.metadata END ORDER BY i.n)
            INTO o_created_at, o_metadata
            FROM unnest(p_ids, p_keeps, p_metadatas) WITH ORDINALITY AS i(id, keep, metadata, n)
            LEFT JOIN entities AS e ON e.agent = p_agent AND e.id = i.id;
            SELECT array_agg(umi_entity_metadata(i.created_at, i.entity_type, i.metadata,
                                                 i.name) ORDER BY i.n),
                   array_agg(convert_to(i.content, 'UTF8') ORDER BY i.n)
            INTO records, contents
            FROM unnest(o_created_at, p_types, o_metadata, p_names, p_contents)
                WITH ORDINALITY AS i(created_at, entity_type, metadata, name, content, n);
            IF NOT umi_history_fits(p_agent, p_limits, p_ids, contents, records) THEN
                RETURN;
            END IF;
            INSERT INTO entities AS e (agent, id, entity_type, name, content, metadata,
                embedding, created_at, updated_at, checksum, name_folded, content_folded)
            SELECT p_agent, i.id, i.entity_type, i.name, i.content, i.metadata, NULL,
                   i.created_at, p_now, i.checksum, i.name_folded, i.content_folded
            FROM unnest(p_ids, p_types, p_names, p_contents, o_metadata, o_created_at,
                        p_checksums, p_names_folded, p_contents_folded)
                AS i(id, entity_type, name, content, metadata, created_at, checksum,
                     name_folded, content_folded)
            ON CONFLICT (agent, id) DO UPDATE SET entity_type = excluded.entity_type,
                name = excluded.name, content = excluded.content, metadata = excluded.metadata,
                embedding = excluded.embedding, created_at = excluded.created_at,
                updated_at = excluded.updated_at, checksum = excluded.checksum,
                name_folded = excluded.name_folded, content_folded = excluded.content_folded;
            o_versions := umi_record_many(p_agent, p_actor, p_limits, p_channel, p_head,
                'archival', 'set', p_ids, p_now, contents, records);
            RETURN NEXT;
        END $$""",
        """CREATE OR REPLACE FUNCTION umi_working_put_many(
            p_agent text, p_lock_key bigint, p_actor text, p_limits bigint[], p_channel text,
            p_head text, p_now bigint, p_keys text[], p_values bytea[], p_ttl_ms bigint,
            p_expires_at_ms bigint, p_checksums bigint[], p_sizes bigint[],
            p_metadatas text[], p_size_bytes_max bigint, p_entries_max bigint)
            RETURNS bigint[]
        LANGUAGE plpgsql AS $$
        DECLARE
            used bigint;
            entries bigint;
            peak_bytes bigint;
            peak_entries bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock_key);
            SELECT t.size_bytes, t.entries INTO used, entries FROM working_totals AS t
            WHERE t.agent = p_agent;
            SELECT MAX(s.bytes), MAX(s.added) INTO peak_bytes, peak_entries FROM (
                SELECT SUM(i.size - COALESCE(w.size_bytes, 0)) OVER (ORDER BY i.n) AS bytes,
                       SUM((w.key IS NULL)::int) OVER (ORDER BY i.n) AS added
                FROM unnest(p_keys, p_sizes) WITH ORDINALITY AS i(key, size, n)
                LEFT JOIN working AS w ON w.agent = p_agent AND w.key = i.key) AS s;
            IF COALESCE(used, 0) + peak_bytes > p_size_bytes_max
                    OR COALESCE(entries, 0) + peak_entries > p_entries_max
                    OR NOT umi_history_fits(p_agent, p_limits, p_keys, p_values, p_metadatas)
                    THEN
                RETURN NULL;
            END IF;
            INSERT INTO working AS w (agent, key, value, ttl_ms, expires_at_ms, updated_at,
                                      checksum, size_bytes)
            SELECT p_agent, i.key, i.value, p_ttl_ms, p_expires_at_ms, p_now, i.checksum,
                   i.size
            FROM unnest(p_keys, p_values, p_checksums, p_sizes) AS i(key, value, checksum, size)
            ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value,
                ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms,
                updated_at = excluded.updated_at, checksum = excluded.checksum,
                size_bytes = excluded.size_bytes;
            RETURN umi_record_many(p_agent, p_actor, p_limits, p_channel, p_head, 'working',
                                   'set', p_keys, p_now, p_values, p_metadatas);
        END $$""",
    ],
}
TABLES = ("core_blocks", "working", "entities")
MIGRATION_VERSIONS = tuple(sorted(_MIGRATIONS))
assert SCHEMA_VERSION == MIGRATION_VERSIONS[-1], "the schema is its newest migration"


def _dollar(number: int) -> str:
    return f"${number}"


ENTITY_COLUMNS = rows.columns(rows.ENTITY_COLUMNS)
_ENTITY_SKETCHES = rows.ENTITY_SKETCH_SQL.format(agent="$1")
_ENTITY_VECTORS_VERSION = rows.ENTITY_VECTORS_VERSION_SQL.format(agent="$1")
_ENTITY_EXACT = rows.ENTITY_EXACT_SQL.replace("IN ({ids})", "= ANY({ids})").format(
    agent="$1", ids="$2::text[]")
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
        try:
            return await self._conn.execute(sql, *params)
        except _OPERATION_ERRORS as exc:
            raise storage_error(exc) from exc

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        try:
            return await self._conn.fetch(sql, *params)
        except _OPERATION_ERRORS as exc:
            raise storage_error(exc) from exc

    async def _fetchrow(self, sql: str, *params: Any) -> Any:
        try:
            return await self._conn.fetchrow(sql, *params)
        except _OPERATION_ERRORS as exc:
            raise storage_error(exc) from exc

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

    async def entity_embeddings(self, entity_ids: Iterable[str]) -> dict[str, bytes | Sequence[float]]:
        found = await self._fetch(_ENTITY_EXACT, self.agent, list(entity_ids))
        return {entity_id: exact if exact is not None else embedding
                for entity_id, exact, embedding in found}

    async def entity_vectors_version(self) -> int:
        row = await self._fetchrow(_ENTITY_VECTORS_VERSION, self.agent)
        return 0 if row is None else int(row[0])

    async def entity_sketches(self) -> list[tuple[str, str, bytes | None, Sequence[float] | None]]:
        return [tuple(row) for row in await self._fetch(_ENTITY_SKETCHES, self.agent)]

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


def change_payload_head(origin: str, agent: str) -> str:
    """A NOTIFY payload up to its events: the events, comma-separated, and "]}" follow."""
    return json.dumps({"origin": origin, "agent": agent})[:-1] + ', "events": ['


def change_payloads(origin: str, agent: str, events: list[ChangeEvent]) -> list[str]:
    """NOTIFY payloads (JSON, ASCII, each under CHANGE_FEED_PAYLOAD_BYTES_MAX) for `events`."""
    head = change_payload_head(origin, agent)
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

    async def _acquire(self) -> asyncpg.Connection:
        """A connection for one operation: the backend's own when it is free (no pool
        bookkeeping on the common, one-at-a-time path), else one from the pool. Plain
        calls, not a context manager: a read pays for nothing else than its statement."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError(f"{self.masked_url} is not open")
        own = self._own
        if own is not None and not self._own_busy:
            if _usable(own):
                self._own_busy = True
                return own
            self._own = None  # dropped or terminated: take a fresh one
            with suppress(asyncpg.InterfaceError):  # a terminated one went back already
                await pool.release(own)
        try:
            return await pool.acquire()
        except _OPERATION_ERRORS as exc:
            raise storage_error(exc) from exc

    async def _release(self, conn: asyncpg.Connection) -> None:
        if conn is self._own:
            self._own_busy = False
            return
        pool = self._pool
        if self._own is None and pool is not None and _usable(conn):
            self._own = conn  # kept as the backend's own, not released
        elif pool is not None:
            await pool.release(conn)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._acquire()
        try:
            yield conn
        finally:
            await self._release(conn)

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
        if write:
            async with self.transaction(agent, write=True) as tx:
                return await body(tx)
        conn = await self._acquire()  # a read: its statements in autocommit, no events
        try:
            return await body(PostgresTx(conn, agent))
        finally:
            await self._release(conn)

    async def shortcut(self, agent: str, request: Shortcut[T]) -> T | None:
        """The request's server-side function, in one round trip (see migration 6)."""
        handler = _SHORTCUTS.get(type(request))
        return None if handler is None else await handler(self, agent, request)

    async def _call(self, agent: str, request: Shortcut[Any], function: str,
                    *params: Any) -> Any:
        """The row `function` returns for (agent's context, request.now_ms, *params): one
        statement in autocommit. A connection lost meanwhile leaves the outcome unknown."""
        head = change_payload_head(self.origin, agent)
        conn = await self._acquire()
        try:
            return await conn.fetchrow(
                _function_call_sql(function, 7 + len(params)), agent, agent_lock_key(agent),
                request.actor, list(request.history_limits), CHANGE_FEED_CHANNEL, head,
                request.now_ms, *params)
        except _OPERATION_ERRORS as exc:
            error = storage_error(exc)
            error.outcome_unknown = not isinstance(exc, asyncpg.PostgresError)
            raise error from exc
        finally:
            await self._release(conn)

    async def _core_put(self, agent: str, request: CorePut) -> MemoryBlock | None:
        content = request.content
        row = await self._call(agent, request, "umi_core_put", request.block_type.value,
                               content, checksum(content.encode()), request.label,
                               request.importance, CORE_MEMORY_IMPORTANCE_DEFAULT,
                               request.if_version, request.core_size_bytes_max)
        if row is None:
            return None
        label, importance, version, created_at, history_version = row
        self.changes.publish(agent, [ChangeEvent(Tier.CORE, ChangeKind.SET,
                                                 request.block_type.value, request.now_ms,
                                                 request.actor, history_version)])
        return MemoryBlock(request.block_type, content, label, importance, version, created_at,
                           request.now_ms)

    async def _core_set_importance(self, agent: str,
                                   request: CoreSetImportance) -> MemoryBlock | None:
        row = await self._call(agent, request, "umi_core_set_importance",
                               request.block_type.value, request.importance)
        if row is None:
            return None
        content, label, version, created_at, history_version = row
        self._published(agent, request, Tier.CORE, ChangeKind.SET, request.block_type.value,
                        history_version)
        return MemoryBlock(request.block_type, content, label, request.importance, version,
                           created_at, request.now_ms)

    async def _working_renew(self, agent: str, request: WorkingRenew) -> bool | None:
        row = await self._call(agent, request, "umi_working_renew", request.key,
                               request.ttl_ms)
        if row is None:
            return None
        kind, version = row
        if kind is not None:
            self._published(agent, request, Tier.WORKING, ChangeKind(kind), request.key,
                            version)
        return kind is not None

    async def _working_remove(self, agent: str, request: WorkingRemove) -> int | None:
        row = await self._call(agent, request, "umi_working_remove", request.expired_only,
                               request.limit)
        keys, versions = row
        if keys is None:
            return None
        kind = ChangeKind.EXPIRED if request.expired_only else ChangeKind.DELETE
        self.changes.publish(agent, [
            ChangeEvent(Tier.WORKING, kind, key, request.now_ms, request.actor, version)
            for key, version in zip(keys, versions or ())])
        return len(keys)

    async def _core_delete(self, agent: str, request: CoreDelete) -> bool:
        row = await self._call(agent, request, "umi_core_delete", request.block_type.value)
        return self._published(agent, request, Tier.CORE, ChangeKind.DELETE,
                               request.block_type.value, row[0])

    async def _working_delete(self, agent: str, request: WorkingDelete) -> bool:
        live, version = await self._call(agent, request, "umi_working_delete", request.key,
                                         request.expiry_actor)
        if live:
            self._published(agent, request, Tier.WORKING, ChangeKind.DELETE, request.key,
                            version)
        elif version:
            self._published(agent, replace(request, actor=request.expiry_actor), Tier.WORKING,
                            ChangeKind.EXPIRED, request.key, version)
        return bool(live)

    async def _entity_put(self, agent: str, request: EntityPut) -> Entity | None:
        entity = request.entity
        if entity.embedding is not None:
            return None  # its similarity sketch is written by the body
        (_, entity_id, entity_type, name, content, metadata, embedding, _, _, sum_,
         name_folded, content_folded, _, _) = entity_row(agent, entity)
        row = await self._call(agent, request, "umi_entity_put", entity_id, entity_type, name,
                               content, metadata, embedding, sum_, name_folded,
                               content_folded, request.must_exist, request.keep_metadata)
        if row is None:
            return None
        created_at, kept_metadata, version = row
        self._published(agent, request, Tier.ARCHIVAL, ChangeKind.SET, entity_id, version)
        return replace(entity, created_at=created_at, updated_at=request.now_ms,
                       metadata=json.loads(kept_metadata) if request.keep_metadata
                       else entity.metadata)

    async def _entity_forget(self, agent: str, request: EntityForget) -> bool:
        row = await self._call(agent, request, "umi_entity_forget", request.entity_id)
        return self._published(agent, request, Tier.ARCHIVAL, ChangeKind.DELETE,
                               request.entity_id, row[0])

    async def _entity_put_many(self, agent: str, request: EntityPutMany) -> list[Entity] | None:
        drafts = [draft for draft, _ in request.entities]
        if len({draft.id for draft in drafts}) < len(drafts) or any(
                draft.embedding is not None for draft in drafts):
            return None  # a later item updates an earlier one: the body's rule, one by one
        columns = list(zip(*(entity_row(agent, draft) for draft in drafts)))
        row = await self._call(agent, request, "umi_entity_put_many", columns[1], columns[2],
                               columns[3], columns[4], columns[5],
                               [keep for _, keep in request.entities], columns[9],
                               columns[10], columns[11])
        if row is None:
            return None
        created_ats, metadatas, versions = row
        stored = [replace(draft, created_at=created_at, updated_at=request.now_ms,
                          metadata=json.loads(metadata) if keep else draft.metadata)
                  for (draft, keep), created_at, metadata
                  in zip(request.entities, created_ats, metadatas)]
        self.changes.publish(agent, [
            ChangeEvent(Tier.ARCHIVAL, ChangeKind.SET, entity.id, request.now_ms, request.actor,
                        version) for entity, version in zip(stored, versions)])
        return stored

    async def _working_put_many(self, agent: str,
                                request: WorkingPutMany) -> list[WorkingEntry] | None:
        entries = request.entries
        first = entries[0]
        assert all((e.ttl_ms, e.expires_at_ms, e.updated_at) ==
                   (first.ttl_ms, first.expires_at_ms, first.updated_at) for e in entries), \
            "set_many stamps every entry alike"
        values = [bytes(e.value) for e in entries]
        metadata = metadata_json({"ttl_ms": first.ttl_ms, "expires_at_ms": first.expires_at_ms})
        row = await self._call(agent, request, "umi_working_put_many",
                               [e.key for e in entries], values, first.ttl_ms,
                               first.expires_at_ms, [checksum(v) for v in values],
                               [e.size_bytes for e in entries], [metadata] * len(entries),
                               request.size_bytes_max, request.entries_max)
        versions = row[0]
        if versions is None:
            return None
        self.changes.publish(agent, [
            ChangeEvent(Tier.WORKING, ChangeKind.SET, entry.key, request.now_ms, request.actor,
                        version) for entry, version in zip(entries, versions)])
        return entries

    def _published(self, agent: str, request: Shortcut[Any], tier: Tier, kind: ChangeKind,
                   key: str, version: int) -> bool:
        """Publish the change locally if the function recorded one (version > 0)."""
        if version:
            self.changes.publish(agent, [ChangeEvent(tier, kind, key, request.now_ms,
                                                     request.actor, version)])
        return bool(version)

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


_SHORTCUTS: dict[type, Callable[[PostgresBackend, str, Any], Awaitable[Any]]] = {
    CorePut: PostgresBackend._core_put,
    CoreSetImportance: PostgresBackend._core_set_importance,
    WorkingRenew: PostgresBackend._working_renew,
    WorkingRemove: PostgresBackend._working_remove,
    CoreDelete: PostgresBackend._core_delete,
    WorkingDelete: PostgresBackend._working_delete,
    WorkingPutMany: PostgresBackend._working_put_many,
    EntityPut: PostgresBackend._entity_put,
    EntityPutMany: PostgresBackend._entity_put_many,
    EntityForget: PostgresBackend._entity_forget,
}


@functools.cache
def _function_call_sql(function: str, params_count: int) -> str:
    return f"SELECT * FROM {function}({', '.join(map(_dollar, range(1, params_count + 1)))})"


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
