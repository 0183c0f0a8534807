"""Store throughput and search latency on SQLite and Postgres, each beside its raw driver.

    .venv/bin/python bench/store.py [--ops N] [--rounds N] [--entities N] [--postgres URL]

Throughput: each store operation runs N times while the statements the backend sends are
recorded; then the raw driver (aiosqlite or asyncpg, one connection) replays exactly those
statements, in the same transaction framing, from the same starting state. The ratio
store/raw is the cost of the store layer: compare ratios across machines, not raw rates.

Search: entities are seeded through the raw driver into the backend's own schema (rows
built by the backend's own code), then the store's indexed search is timed beside the same
query as a plain scan (instr() / position() over the folded columns, no trigram index).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import asyncpg

from umi_store import Entity, SimClock, open_store
from umi_store.backends.postgres import ENTITY_COLUMNS, PostgresTx, agent_lock_key
from umi_store.backends.sqlite import SqliteTx
from umi_store.tiers.archival import entity_id

AGENT = "bench"
TABLES = ("core_blocks", "working", "entities")
SEARCH_LIMIT = 20
SEARCH_REPEATS = 40
# One transaction = (write?, [(driver method, args), ...]) as the backend sent it.
Transaction = tuple[bool, list[tuple[str, tuple]]]


class _Recorder:
    """Stands in for a backend's driver connection and notes every statement sent."""

    def __init__(self, conn: Any, log: list[tuple[str, tuple]]) -> None:
        self._conn, self._log = conn, log

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if name not in ("execute", "fetch", "fetchrow", "fetchval"):
            return method

        async def call(*args: Any) -> Any:
            self._log.append((name, args))
            return await method(*args)
        return call


def record_transactions(backend: Any, log: list[Transaction]) -> None:
    """Make every transaction of `backend` append what it sent to `log`."""
    inner = backend.transaction

    @asynccontextmanager
    async def transaction(agent: str, *, write: bool):
        statements: list[tuple[str, tuple]] = []
        async with inner(agent, write=write) as tx:
            tx._conn = _Recorder(tx._conn, statements)
            yield tx
        log.append((write, statements))
    backend.transaction = transaction


class _Capture:
    """A driver connection that runs nothing: it only keeps the statements it is sent."""

    rowcount = 1

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple]] = []

    async def execute(self, sql: str, *args: Any) -> _Capture:
        self.statements.append((sql, args))
        return self

    async def close(self) -> None:
        pass


class SqliteRaw:
    """Raw aiosqlite: one call per statement, framed as the backend frames a write."""

    name = "aiosqlite"

    def __init__(self, path: str) -> None:
        self.path = path

    async def __aenter__(self) -> SqliteRaw:
        self.db = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
            await self.db.execute(f"PRAGMA {pragma}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.db.close()

    async def run(self, write: bool, statements: list[tuple[str, tuple]]) -> None:
        if write:
            await self.db.execute("BEGIN IMMEDIATE")
        for _, (sql, params) in statements:
            await self.db.execute_fetchall(sql, params)
        if write:
            await self.db.execute("COMMIT")

    async def wipe(self) -> None:
        for table in TABLES:
            await self.db.execute(f"DELETE FROM {table}")

    async def seed(self, rows: list[tuple[str, tuple]]) -> None:
        await self.db.execute("BEGIN IMMEDIATE")
        await self.db.executemany(rows[0][0], [args[0] for _, args in rows])
        await self.db.execute("COMMIT")

    async def scan(self, folded: str) -> list[Any]:
        return await self.db.execute_fetchall(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = ? "
            "AND (instr(name_folded, ?) > 0 OR instr(content_folded, ?) > 0) "
            "ORDER BY updated_at DESC, id LIMIT ?", (AGENT, folded, folded, SEARCH_LIMIT))


class PostgresRaw:
    """Raw asyncpg on one connection, framed as the backend frames a write."""

    name = "asyncpg"

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> PostgresRaw:
        self.db = await asyncpg.connect(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.db.close()

    async def run(self, write: bool, statements: list[tuple[str, tuple]]) -> None:
        if write:
            await self.db.execute(f"BEGIN; SELECT pg_advisory_xact_lock({agent_lock_key(AGENT)})")
        for method, args in statements:
            await getattr(self.db, method)(*args)
        if write:
            await self.db.execute("COMMIT")

    async def wipe(self) -> None:
        await self.db.execute("; ".join(f"DELETE FROM {table}" for table in TABLES))

    async def seed(self, rows: list[tuple[str, tuple]]) -> None:
        async with self.db.transaction():
            await self.db.executemany(rows[0][0], [args for _, args in rows])
        await self.db.execute("VACUUM ANALYZE entities")  # what autovacuum would do

    async def scan(self, folded: str) -> list[Any]:
        return await self.db.fetch(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE agent = $1 "
            "AND (position($2 in name_folded) > 0 OR position($2 in content_folded) > 0) "
            "ORDER BY updated_at DESC, id LIMIT $3", AGENT, folded, SEARCH_LIMIT)


async def _rate(count: int, operation: Callable[[int], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for i in range(count):
        await operation(i)
    return count / (time.perf_counter() - started)


def _operations(store: Any, count: int) -> dict[str, tuple[int, Callable[[int], Awaitable]]]:
    return {
        "core set": (count, lambda i: store.core.set_block("scratch", f"note {i}")),
        "working set": (count, lambda i: store.working.set(f"k{i % 500}", b"v")),
        "working get": (count, lambda i: store.working.get(f"k{i % 500}")),
        "remember": (count, lambda i: store.archival.remember(
            f"entity {i} about tea and memory", "note")),
        "search": (max(1, count // 10), lambda i: store.archival.search("memory", limit=20)),
    }


async def throughput(url: str, raw: SqliteRaw | PostgresRaw, count: int, rounds: int) -> None:
    """Print each operation's rate through the store and its ratio to the raw replay.

    Each round runs every operation through the store, then replays it raw, both from an
    empty agent; the best round of each side counts (a shared machine only slows runs).
    """
    store_rates: dict[str, float] = {}
    raw_rates: dict[str, float] = {}
    for _ in range(rounds):
        recorded: dict[str, list[Transaction]] = {}
        async with open_store(url, agent=AGENT, clock=SimClock()) as store:
            async with raw:
                await raw.wipe()
            for op, (times, operation) in _operations(store, count).items():
                recorded[op] = []
                record_transactions(store.backend, recorded[op])
                rate = await _rate(times, operation)
                store_rates[op] = max(rate, store_rates.get(op, 0.0))
                del store.backend.transaction
                assert len(recorded[op]) == times, f"{op}: one transaction per store operation"
        async with raw:
            await raw.wipe()  # the replay starts from the state the store started from
            for op, log in recorded.items():
                rate = await _rate(len(log), lambda i, log=log: raw.run(*log[i]))
                raw_rates[op] = max(rate, raw_rates.get(op, 0.0))
    for op, rate in store_rates.items():
        print(f"  {op:12} {rate:9,.0f} ops/s   raw {raw.name} {raw_rates[op]:9,.0f}/s   "
              f"{rate / raw_rates[op]:5.2f}x raw")


def _corpus(count: int) -> tuple[list[Entity], dict[str, str]]:
    """`count` notes of pseudo-words with a skewed word frequency, and the queries to time."""
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = sorted({"".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(20_000)})
    rng.shuffle(words)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    entities = []
    for i in range(count):
        text = " ".join(rng.choices(words, weights, k=30))
        name = f"note {i} {words[i % len(words)]}"
        entities.append(Entity("note", name, text, entity_id(AGENT, "note", name),
                               created_at=i, updated_at=i))
    queries = {"common word": words[0], "rare word": words[-1], "two chars": "ka",
               "no match": "xyzzy"}
    return entities, queries


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=20)
    return f"{statistics.median(samples):7.2f} / {cuts[18]:7.2f}"


async def search_latency(url: str, raw: SqliteRaw | PostgresRaw, tx_class: type,
                         count: int) -> None:
    """Seed `count` entities, then print search p50/p95 in ms: store and plain scan."""
    entities, queries = _corpus(count)
    capture = _Capture()
    for entity in entities:
        await tx_class(capture, AGENT).entity_put(entity)
    async with open_store(url, agent=AGENT, clock=SimClock()) as store:
        async with raw:
            await raw.wipe()
            started = time.perf_counter()
            await raw.seed(capture.statements)
            print(f"  seeded {count:,} entities in {time.perf_counter() - started:.1f} s")
            print(f"  {'query':12} {'store p50 / p95 ms':>20} {'scan p50 / p95 ms':>20}  hits")
            every: dict[str, list[float]] = {"store": [], "scan": []}
            for kind, query in queries.items():
                timings: dict[str, list[float]] = {"store": [], "scan": []}
                for _ in range(SEARCH_REPEATS):
                    for side, call in (("store", lambda: store.archival.search(query, limit=20)),
                                       ("scan", lambda: raw.scan(query.casefold()))):
                        started = time.perf_counter()
                        hits = await call()
                        timings[side].append((time.perf_counter() - started) * 1000)
                for side in every:
                    every[side] += timings[side]
                print(f"  {kind:12} {_percentiles(timings['store']):>20} "
                      f"{_percentiles(timings['scan']):>20}  {len(hits)}")
            print(f"  {'all':12} {_percentiles(every['store']):>20} "
                  f"{_percentiles(every['scan']):>20}")
            await raw.wipe()


async def main(count: int, rounds: int, entity_count: int, postgres_url: str) -> None:
    print(f"throughput, {count} ops each, best of {rounds} rounds "
          "(store rate, raw replay of the same statements)")
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store("sim://?seed=1", agent=AGENT) as sim:
            for op, (times, operation) in _operations(sim, count).items():
                print(f"  sim {op:12} {await _rate(times, operation):9,.0f} ops/s")
        path = f"{tmp}/umi.db"
        print("sqlite")
        await throughput(f"sqlite:///{path}", SqliteRaw(path), count, rounds)
        print("postgres")
        await throughput(postgres_url, PostgresRaw(postgres_url), count, rounds)
        print(f"search at {entity_count:,} entities, limit {SEARCH_LIMIT}, "
              f"{SEARCH_REPEATS} runs per query")
        print("sqlite (FTS5 trigram) vs instr() scan")
        await search_latency(f"sqlite:///{path}", SqliteRaw(path), SqliteTx, entity_count)
        print("postgres (pg_trgm GIN) vs position() scan")
        await search_latency(postgres_url, PostgresRaw(postgres_url), PostgresTx, entity_count)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1/umi_pg_bench")
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.rounds, args.entities, args.postgres))
