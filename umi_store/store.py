"""open_store: one entry point for every backend (SPEC §2)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit, urlunsplit

from .backends.base import Backend, stop_background_task
from .as_of import AsOfBackend, FrozenClock
from .constants import (CORE_MEMORY_SIZE_BYTES_MAX, CORE_MEMORY_SIZE_BYTES_MIN,
                        HISTORY_ACTOR_BYTES_MAX, HISTORY_RECORDS_COUNT_MAX,
                        WORKING_MEMORY_EXPIRY_SWEEP_KEYS_MAX, WORKING_MEMORY_EXPIRY_SWEEP_MS)
from .dst.clock import Clock, SimClock, SystemClock
from .dst.config import SimConfig, parse_seed
from .dst.faults import FaultInjector
from .errors import InvalidInputError, StorageError
from .models import (AgentSummary, BlockType, ChangeEvent, HistoryRecord, Tier, checked_text,
                     parse_enum)
from .tiers import ArchivalMemory, CoreMemory, WorkingMemory
from .tiers.context import EmbedHook, OpenBatch, TierContext
from .validation import text_argument, whole_number_argument

AGENT_NAME_BYTES_MAX = 64
_log = logging.getLogger("umi_store")


def _with_password(url: str, password: str | None) -> str:
    """The URL with any password replaced by `password`, or left out when None."""
    secret = "" if password is None else f":{password}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", rf"//\1{secret}@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}{secret}@{netloc[1]}"))


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to show and log."""
    return _with_password(url, "***")


def url_without_password(url: str) -> str:
    """The URL with any password left out: safe to show, and it still connects where libpq
    finds the password itself (PGPASSWORD, ~/.pgpass), as asyncpg does."""
    return _with_password(url, None)


class Batch:
    """The tiers of a store inside `store.batch()`: each operation joins its transaction."""

    def __init__(self, context: TierContext) -> None:
        self.core = CoreMemory(context)
        self.working = WorkingMemory(context)
        self.archival = ArchivalMemory(context)


class Store:
    """An open store for one agent: its three tiers, its clock and its change feed."""

    def __init__(self, backend: Backend, agent: str, clock: Clock, seed: int | None,
                 core_size_bytes_max: int,
                 sweepers: set[asyncio.Task[None]] | None = None,
                 actor: str | None = None, embed: EmbedHook | None = None) -> None:
        self.backend = backend
        self._sweepers = set() if sweepers is None else sweepers  # shared by for_agent views
        self.agent = agent
        self.clock = clock
        self.seed = seed
        self.url = backend.url
        self._actor = actor
        self.actor = default_actor(agent) if actor is None else actor
        self._context = TierContext(backend, agent, clock, core_size_bytes_max, self.actor,
                                    embed=embed)
        self.core = CoreMemory(self._context)
        self.working = WorkingMemory(self._context)
        self.archival = ArchivalMemory(self._context)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        """Many operations in one transaction, committed once when the block ends:

            async with store.batch() as batch:
                await batch.working.set("a", b"1")
                await batch.archival.remember("Ada runs payments", "person")

        All or nothing: if the block raises, or an operation fails inside the transaction
        (a total limit, a version conflict, a storage error; even one whose error the block
        caught), nothing is kept and the failure is raised. Bad input refused before an
        operation reaches storage changes nothing and the batch goes on. Limits count
        every write before them in the batch; change events are published at the commit.
        A transient storage error is not retried inside a batch (retry the whole block).
        """
        async with self.backend.transaction(self.agent, write=True) as tx:
            opened = OpenBatch(tx)
            yield Batch(replace(self._context, batch=opened))
            if opened.failure is not None:
                raise opened.failure

    @property
    def core_size_bytes_max(self) -> int:
        """The core-memory limit this store was opened with."""
        return self.core._context.core_size_bytes_max

    async def agents(self) -> list[AgentSummary]:
        """Every agent with memory in this store, in name order, with its counts per tier
        (live working keys) and the time of its last change."""
        return await self.backend.agent_summaries(self.clock.now_ms())

    def for_agent(self, agent: str) -> Store:
        """The same storage, seen as another agent (writing as the same actor, or as that
        agent when the actor was the default)."""
        return Store(self.backend, _checked_agent(agent), self.clock, self.seed,
                     self._context.core_size_bytes_max, self._sweepers, self._actor,
                     self._context.embed)

    def as_actor(self, actor: str) -> Store:
        """The same store, its writes attributed to `actor` in history and change events
        (e.g. "person:ada", "tool:importer")."""
        return Store(self.backend, self.agent, self.clock, self.seed,
                     self._context.core_size_bytes_max, self._sweepers, _checked_actor(actor),
                     self._context.embed)

    async def history(self, tier: Tier | str, key: str,
                      limit: int = HISTORY_RECORDS_COUNT_MAX) -> list[HistoryRecord]:
        """The versions of one core block, working key or entity (by id), newest first:
        each change, delete and expiry, with who made it and what it left."""
        tier = parse_enum(Tier, tier, "tier")
        key = text_argument(key, "key")
        limit = _checked_limit(limit)
        if tier is Tier.CORE:
            key = parse_enum(BlockType, key, "block type").value
        return await self._context.read(lambda tx: tx.history_list(tier, key, limit))

    async def history_since(self, at_ms: int,
                            limit: int = HISTORY_RECORDS_COUNT_MAX) -> list[HistoryRecord]:
        """Every change of this agent's memory after `at_ms` (store-clock ms), oldest first."""
        at_ms = whole_number_argument(at_ms, "at_ms")
        limit = _checked_limit(limit)
        return await self._context.read(lambda tx: tx.history_since(at_ms, limit))

    def as_of(self, at_ms: int) -> Store:
        """A read-only view of this agent's memory as it stood at `at_ms` (store-clock ms),
        rebuilt from history: its reads answer as of then, its writes raise ReadOnlyError.
        What history has pruned (or never saw) is absent from it."""
        at_ms = whole_number_argument(at_ms, "at_ms")
        label = datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return Store(AsOfBackend(self.backend, at_ms, label), self.agent, FrozenClock(at_ms),
                     self.seed, self._context.core_size_bytes_max, set(), self._actor)

    async def changes(self) -> AsyncIterator[ChangeEvent]:
        """Committed changes to this agent's memory, as they happen, from any process.

        While it is iterated, working-memory keys are swept as the store clock passes
        their deadlines, so a key that lapses with no writer still yields `expired`.
        Close it (`contextlib.aclosing`) to stop the sweeper at once.
        """
        async with self.backend.changes.subscribe(self.agent) as queue:
            sweeper = asyncio.create_task(self._sweep_expired_keys())
            self._sweepers.add(sweeper)
            try:
                while True:
                    yield await queue.get()
            finally:
                self._sweepers.discard(sweeper)
                await stop_background_task(sweeper)

    async def _stop_sweepers(self) -> None:
        """Stop the sweepers of feeds still open when the store closes."""
        for sweeper in list(self._sweepers):
            self._sweepers.discard(sweeper)
            await stop_background_task(sweeper)

    async def _sweep_expired_keys(self) -> None:
        """Active expiry on the store clock: a bounded sweep every sweep interval."""
        next_sweep_ms = self.clock.now_ms()
        while True:
            await self.clock.sleep(next_sweep_ms - self.clock.now_ms())
            started_ms = self.clock.now_ms()
            try:
                removed = await self.working.cleanup_expired(WORKING_MEMORY_EXPIRY_SWEEP_KEYS_MAX)
            except StorageError as exc:
                _log.info("active expiry sweep failed; next sweep retries: %s", exc)
                removed = 0
            more_lapsed = removed == WORKING_MEMORY_EXPIRY_SWEEP_KEYS_MAX
            next_sweep_ms = started_ms + (0 if more_lapsed else WORKING_MEMORY_EXPIRY_SWEEP_MS)


def default_actor(agent: str) -> str:
    """Who a store's writes are attributed to unless open_store names an actor."""
    return f"agent:{agent}"


def _checked_actor(actor: str) -> str:
    actor = text_argument(actor, "actor")
    if not actor.strip():
        raise InvalidInputError("an actor must be non-empty text, e.g. 'person:ada'")
    if len(actor.encode()) > HISTORY_ACTOR_BYTES_MAX:
        raise InvalidInputError(f"actor is {len(actor.encode())} bytes; the limit is "
                                f"{HISTORY_ACTOR_BYTES_MAX}")
    return checked_text(actor, "the actor")


def _checked_limit(limit: int) -> int:
    if not 1 <= whole_number_argument(limit, "limit") <= HISTORY_RECORDS_COUNT_MAX:
        raise InvalidInputError(f"limit must be 1–{HISTORY_RECORDS_COUNT_MAX}, got {limit!r}")
    return limit


def _checked_agent(agent: str) -> str:
    if not isinstance(agent, str) or not agent.strip():
        raise InvalidInputError("agent name must be non-empty text")
    if len(agent.encode()) > AGENT_NAME_BYTES_MAX:
        raise InvalidInputError(f"agent name is {len(agent.encode())} bytes; the limit is "
                                f"{AGENT_NAME_BYTES_MAX}")
    return checked_text(agent, "the agent name")


def _backend_for(url: str) -> tuple[Backend, int | None]:
    if not isinstance(url, str):
        raise InvalidInputError("the store URL must be text")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sim":
        from .backends.sim import SimBackend
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        unknown = set(query) - {"seed"}
        if unknown:
            raise InvalidInputError(f"unknown sim:// option(s): {', '.join(sorted(unknown))}")
        seed = parse_seed(query["seed"][-1], "sim:// seed") if "seed" in query else \
            SimConfig.from_env(announce=_log.info).seed
        return SimBackend(url), seed
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise InvalidInputError(f"a SQLite URL looks like sqlite:///path/umi.db, got {url!r}")
        from .backends.sqlite import SqliteBackend
        path = url[len("sqlite:///"):]
        if not path:
            raise InvalidInputError("the SQLite URL names no file")
        return SqliteBackend(path, url), None
    if scheme in ("postgresql", "postgres"):
        from .backends.postgres import PostgresBackend
        return PostgresBackend(url, mask_url(url)), None
    raise InvalidInputError(f"unknown store URL {mask_url(url)!r}; expected sim://, "
                            "sqlite:///path or postgresql://")


@asynccontextmanager
async def open_store(url: str, *, agent: str = "default", clock: Clock | None = None,
                     core_memory_size_bytes_max: int = CORE_MEMORY_SIZE_BYTES_MAX,
                     faults: FaultInjector | None = None,
                     actor: str | None = None,
                     embed: EmbedHook | None = None) -> AsyncIterator[Store]:
    """Open the store at `url` for `agent`; closed when the block ends.

    Writes are attributed to `actor` in history (default: "agent:<agent>"). `embed`, a
    function of text (plain or async) that returns EMBEDDING_DIMENSIONS_COUNT numbers, is
    called with the content of every entity written without an embedding.

    The clock defaults to a SimClock for sim:// and the system clock otherwise; with
    `faults`, every storage operation first asks the injector what fires.
    """
    agent = _checked_agent(agent)
    actor = None if actor is None else _checked_actor(actor)
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidInputError(f"clock must be a Clock (now_ms, sleep, advance, elapse), "
                                f"got {type(clock).__name__}")
    if faults is not None and not isinstance(faults, FaultInjector):
        raise InvalidInputError(f"faults must be a FaultInjector, got {type(faults).__name__}")
    if embed is not None and not callable(embed):
        raise InvalidInputError(f"embed must be a function of text, got {type(embed).__name__}")
    whole_number_argument(core_memory_size_bytes_max, "core_memory_size_bytes_max")
    if not CORE_MEMORY_SIZE_BYTES_MIN <= core_memory_size_bytes_max <= CORE_MEMORY_SIZE_BYTES_MAX:
        raise InvalidInputError(
            f"core memory size must be {CORE_MEMORY_SIZE_BYTES_MIN}–{CORE_MEMORY_SIZE_BYTES_MAX} "
            f"bytes, got {core_memory_size_bytes_max}")
    backend, seed = _backend_for(url)
    if clock is None:
        clock = SimClock() if seed is not None else SystemClock()
    if faults is not None:
        from .backends.faulty import FaultyBackend
        backend = FaultyBackend(backend, faults, clock)
    await backend.open()
    store = Store(backend, agent, clock, seed, core_memory_size_bytes_max, actor=actor,
                  embed=embed)
    try:
        yield store
    finally:
        await store._stop_sweepers()
        await backend.close()
