"""Store throughput, batches and search latency on SQLite and Postgres, beside raw drivers.

    .venv/bin/python bench/store.py [--ops N] [--rounds N] [--entities N] [--postgres URL]
                                    [--only sqlite|postgres] [--skip-ops] [--skip-search]

Every figure is printed beside a baseline measured in the same run; each is the best of
`--rounds` rounds (a shared machine only ever slows a run down), and the sides of one
comparison run in alternating slices of a few calls, so they meet the same load.

- Operations: the store's rate, then the statement a user would write by hand with the
  raw driver (aiosqlite in autocommit, asyncpg on one connection: one upsert per write,
  one SELECT per read), and store/raw. Second column: the store's *own* statements,
  recorded in a first round, replayed through the raw driver (SQLite: all of an
  operation's statements in one hop, as the store sends them; Postgres: statement by
  statement on one connection): the cost of the store's Python layer alone.
- Batches: working.set_many and archival.remember_many against executemany of the same
  rows in one transaction.
- Search: p50 / p95 ms per query class at `--entities` entities, the store's indexed
  search beside a plain scan of the folded columns (instr() / position()).

archival.similar (vector search) has its own bench, bench/similar.py: its data (1536
numbers an entity) and its baselines (a float32 matrix pass, sqlite-vec) differ.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import asyncpg

from umi_store import SimClock, Store, open_store

AGENT = "bench"
WIPE = ("DELETE FROM core_blocks", "DELETE FROM working", "DELETE FROM entities",
        "DELETE FROM history", "DELETE FROM history_totals")
SEARCH_LIMIT = 20
SEARCH_REPEATS = 40
BATCH_KEYS_COUNT = 10_000  # WORKING_MEMORY_ENTRIES_COUNT_MAX: one full working memory
BATCH_ENTITIES_COUNT = 20_000
SEED_CHUNK_ENTITIES_COUNT = 10_000
WORKING_KEYS_COUNT = 500
INTERLEAVE_OPS_COUNT = 50  # calls per slice when sides alternate
Operation = Callable[[int], Awaitable[Any]]

# What a user writes by hand against each table, per backend: (sqlite, postgres).
RAW_SQL = {
    "core.set_block": (
        "INSERT INTO core_blocks (agent, block_type, content, label, importance, version, "
        "created_at, updated_at, checksum) VALUES ({}) ON CONFLICT (agent, block_type) DO "
        "UPDATE SET content = excluded.content, version = core_blocks.version + 1, "
        "updated_at = excluded.updated_at, checksum = excluded.checksum", 9),
    "working.set": (
        "INSERT INTO working (agent, key, value, ttl_ms, expires_at_ms, updated_at, checksum, "
        "size_bytes) VALUES ({}) ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value,"
        " ttl_ms = excluded.ttl_ms, expires_at_ms = excluded.expires_at_ms, "
        "updated_at = excluded.updated_at, checksum = excluded.checksum, "
        "size_bytes = excluded.size_bytes", 8),
    "archival.remember": (
        "INSERT INTO entities (agent, id, entity_type, name, content, metadata, created_at, "
        "updated_at, checksum, name_folded, content_folded) VALUES ({}) ON CONFLICT "
        "(agent, id) DO UPDATE SET content = excluded.content, updated_at = "
        "excluded.updated_at, checksum = excluded.checksum, content_folded = "
        "excluded.content_folded", 11),
    "working.get": ("SELECT value, expires_at_ms, checksum FROM working WHERE agent = {} "
                    "AND key = {}", 2),
    "core.get_block": ("SELECT content, label, importance, version, checksum FROM core_blocks "
                       "WHERE agent = {} AND block_type = {}", 2),
    "archival.get": ("SELECT id, entity_type, name, content, metadata, checksum FROM entities "
                     "WHERE agent = {} AND id = {}", 2),
}
SCAN_SQL = ("SELECT id, name, content FROM entities WHERE agent = {} AND ({}) "
            "ORDER BY updated_at DESC, id LIMIT {}")


def _sql(template: str, count: int, postgres: bool) -> str:
    marks = [f"${i + 1}" for i in range(count)] if postgres else ["?"] * count
    return template.format(", ".join(marks)) if template.count("{}") == 1 else \
        template.format(*marks)


def _raw_params(op: str, i: int, *, batch: bool = False) -> tuple:
    """The row of call `i`; in a batch every key is new, as in set_many's mapping."""
    key = f"key:{i}" if batch else f"k{i % WORKING_KEYS_COUNT}"
    return {
        "core.set_block": (AGENT, "scratch", f"note {i}", None, 0.5, 1, i, i,
                           zlib.crc32(f"note {i}".encode())),
        "working.set": (AGENT, key, b"v", 3_600_000, i + 3_600_000, i, zlib.crc32(b"v"),
                        len(key) + 1),
        "archival.remember": (AGENT, f"id-{i}", "note", f"entity {i}", _content(i), "{}", i, i,
                              zlib.crc32(_content(i).encode()), f"entity {i}", _content(i)),
        "working.get": (AGENT, key),
        "core.get_block": (AGENT, "scratch"),
        "archival.get": (AGENT, f"id-{i % WORKING_KEYS_COUNT}"),
    }[op]


def _content(i: int) -> str:
    return f"entity {i} about tea and memory"


def _store_operations(store: Store) -> dict[str, Operation]:
    ids: list[str] = []

    async def remember(i: int) -> None:
        entity = await store.archival.remember(_content(i), "note", name=f"entity {i}")
        ids.append(entity.id)

    return {
        "core.set_block": lambda i: store.core.set_block("scratch", f"note {i}"),
        "core.get_block": lambda i: store.core.get_block("scratch"),
        "working.set": lambda i: store.working.set(f"k{i % WORKING_KEYS_COUNT}", b"v"),
        "working.get": lambda i: store.working.get(f"k{i % WORKING_KEYS_COUNT}"),
        "archival.remember": remember,
        "archival.get": lambda i: store.archival.get(ids[i % len(ids)]),
    }


async def _rate(count: int, operation: Operation) -> float:
    started = time.perf_counter()
    for i in range(count):
        await operation(i)
    return count / (time.perf_counter() - started)


class Sqlite:
    """The raw aiosqlite side, and how to record what the store sends on its connection."""

    name = "sqlite"
    postgres = False

    def __init__(self, path: str, raw_path: str) -> None:
        self.url = f"sqlite:///{path}"
        # The raw driver writes a file of its own, as a user's program would: two
        # connections writing one file would each empty the other's page cache.
        self.path = path
        self.raw_path = raw_path
        self.raw_url = f"sqlite:///{raw_path}"

    async def connect(self, *, to_the_stores_file: bool = False) -> None:
        path = self.path if to_the_stores_file else self.raw_path
        self.db = await aiosqlite.connect(path, isolation_level=None)  # autocommit
        for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
            await self.db.execute(f"PRAGMA {pragma}")

    async def close(self) -> None:
        await self.db.close()

    async def wipe(self) -> None:
        """Empty the raw driver's file and the store's."""
        await self.db.executescript(";".join(WIPE))
        async with aiosqlite.connect(self.path, isolation_level=None) as store_file:
            await store_file.execute("PRAGMA busy_timeout=5000")
            await store_file.executescript(";".join(WIPE))

    def raw(self, op: str) -> Operation:
        template, count = RAW_SQL[op]
        sql = _sql(template, count, postgres=False)
        if op.endswith(("get", "get_block")):
            return lambda i: self.db.execute_fetchall(sql, _raw_params(op, i))
        return lambda i: self.db.execute(sql, _raw_params(op, i))

    @asynccontextmanager
    async def recording(self, store: Store,
                        log: list[list[tuple[str, tuple]]]) -> AsyncIterator[None]:
        """Every statement the store sends its sqlite3 connection, grouped per operation."""
        conn = store.backend._conn  # aiosqlite's; its thread runs the sqlite3 connection
        real = conn._connection
        conn._connection = _RecordingSqlite(real, log)
        try:
            yield
        finally:
            conn._connection = real

    def replay(self, statements: list[tuple[str, tuple]]) -> Awaitable[Any]:
        """The statements in one hop to the connection's thread, as the store sends them."""
        db = self.db._conn

        def run() -> None:
            for method, args in statements:
                getattr(db, method)(*args).fetchall()
        return self.db._execute(run)

    async def executemany(self, sql_template: str, count: int, rows: list[tuple]) -> None:
        await self.db.execute("BEGIN IMMEDIATE")
        await self.db.executemany(_sql(sql_template, count, postgres=False), rows)
        await self.db.execute("COMMIT")

    def scan(self, folded: str) -> Awaitable[Any]:
        return self.db.execute_fetchall(
            SCAN_SQL.format("?", "instr(name_folded, ?) > 0 OR instr(content_folded, ?) > 0",
                            "?"), (AGENT, folded, folded, SEARCH_LIMIT))


class _RecordingSqlite:
    """A sqlite3 connection that notes each statement it runs (method, arguments)."""

    def __init__(self, real: Any, log: list[list[tuple[str, tuple]]]) -> None:
        self._real, self._log = real, log

    def execute(self, *args: Any) -> Any:
        self._log[-1].append(("execute", args))
        return self._real.execute(*args)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        self._log[-1].append(("executemany", (sql, rows)))
        return self._real.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Postgres:
    """The raw asyncpg side, and how to record what the store sends on its connections."""

    name = "postgres"
    postgres = True
    _RECORDED = ("execute", "executemany", "fetch", "fetchrow", "fetchval")

    def __init__(self, url: str) -> None:
        self.url = url
        self.raw_url = url

    async def connect(self, *, to_the_stores_file: bool = False) -> None:
        self.db = await asyncpg.connect(self.url)

    async def close(self) -> None:
        await self.db.close()

    async def wipe(self) -> None:
        await self.db.execute(";".join(WIPE))

    def raw(self, op: str) -> Operation:
        template, count = RAW_SQL[op]
        sql = _sql(template, count, postgres=True)
        if op.endswith(("get", "get_block")):
            return lambda i: self.db.fetchrow(sql, *_raw_params(op, i))
        return lambda i: self.db.execute(sql, *_raw_params(op, i))

    @asynccontextmanager
    async def recording(self, store: Store,
                        log: list[list[tuple[str, tuple]]]) -> AsyncIterator[None]:
        originals = {name: getattr(asyncpg.Connection, name) for name in self._RECORDED}

        def recorder(name: str) -> Callable[..., Any]:
            def call(conn: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
                if conn is not self.db:
                    log[-1].append((name, args))
                return originals[name](conn, *args, **kwargs)
            return call
        for name in self._RECORDED:
            setattr(asyncpg.Connection, name, recorder(name))
        try:
            yield
        finally:
            for name, method in originals.items():
                setattr(asyncpg.Connection, name, method)

    async def replay(self, statements: list[tuple[str, tuple]]) -> None:
        for method, args in statements:
            await getattr(self.db, method)(*args)

    async def executemany(self, sql_template: str, count: int, rows: list[tuple]) -> None:
        async with self.db.transaction():
            await self.db.executemany(_sql(sql_template, count, postgres=True), rows)

    def scan(self, folded: str) -> Awaitable[Any]:
        return self.db.fetch(SCAN_SQL.format(
            "$1", "position($2 in name_folded) > 0 OR position($2 in content_folded) > 0", "$3"),
            AGENT, folded, SEARCH_LIMIT)


Backend = Sqlite | Postgres


async def _interleaved(count: int, sides: dict[str, Operation]) -> dict[str, float]:
    """Each side's rate over `count` calls, run in alternating slices of a few calls each,
    so a change in the machine's load falls on every side alike."""
    spent = dict.fromkeys(sides, 0.0)
    for start in range(0, count, INTERLEAVE_OPS_COUNT):
        for name, operation in sides.items():
            began = time.perf_counter()
            for i in range(start, min(start + INTERLEAVE_OPS_COUNT, count)):
                await operation(i)
            spent[name] += time.perf_counter() - began
    return {name: count / seconds for name, seconds in spent.items()}


async def operations(side: Backend, count: int, rounds: int) -> None:
    """Each operation's rate: store, hand-written raw statement, replay of the store's own
    (recorded in the first round, replayed in the others)."""
    best: dict[str, dict[str, float]] = {}
    recorded: dict[str, list[list[Any]]] = {}
    for round_index in range(rounds + 1):
        await side.connect()
        await side.wipe()
        async with open_store(side.url, agent=AGENT, clock=SimClock()) as store:
            for op, operation in _store_operations(store).items():
                sides = {"store": operation, "raw": side.raw(op)}
                if round_index == 0:
                    log = recorded.setdefault(op, [])

                    async def logged(i: int, operation: Operation = operation,
                                     log: list[list[Any]] = log) -> None:
                        log.append([])
                        await operation(i)
                    async with side.recording(store, log):
                        await _interleaved(count, {"store": logged})
                    continue
                per_op = recorded[op]
                sides["replay"] = lambda i, per_op=per_op: side.replay(per_op[i])
                for name, rate in (await _interleaved(count, sides)).items():
                    _keep(best, op, name, rate)
        await side.wipe()
        await side.close()
    print(f"  {'operation':18} {'store/s':>9} {'raw/s':>9} {'store/raw':>9} "
          f"{'replay/s':>9} {'store/replay':>12}")
    for op, rates in best.items():
        print(f"  {op:18} {rates['store']:9,.0f} {rates['raw']:9,.0f} "
              f"{rates['store'] / rates['raw']:9.2f} {rates['replay']:9,.0f} "
              f"{rates['store'] / rates['replay']:12.2f}")


def _keep(best: dict[str, dict[str, float]], op: str, side: str, rate: float) -> None:
    best.setdefault(op, {})[side] = max(rate, best.get(op, {}).get(side, 0.0))


async def batches(side: Backend, rounds: int) -> None:
    """set_many and remember_many in one call, beside executemany of the same rows."""
    best: dict[str, dict[str, float]] = {}
    keys = {f"key:{i}": b"value %d" % i for i in range(BATCH_KEYS_COUNT)}
    items = [(_content(i), "note", f"entity {i}") for i in range(BATCH_ENTITIES_COUNT)]
    for _ in range(rounds):
        await side.connect()
        await side.wipe()
        async with open_store(side.url, agent=AGENT, clock=SimClock()) as store:
            started = time.perf_counter()
            await store.working.set_many(keys)
            _keep(best, "working.set_many", "store", len(keys) / (time.perf_counter() - started))
            started = time.perf_counter()
            await store.archival.remember_many(items)
            _keep(best, "archival.remember_many", "store",
                  len(items) / (time.perf_counter() - started))
        await side.wipe()
        for op, raw_op, count in (("working.set_many", "working.set", len(keys)),
                                  ("archival.remember_many", "archival.remember", len(items))):
            template, params = RAW_SQL[raw_op]
            rows = [_raw_params(raw_op, i, batch=True) for i in range(count)]
            started = time.perf_counter()
            await side.executemany(template, params, rows)
            _keep(best, op, "raw", count / (time.perf_counter() - started))
        await side.wipe()
        await side.close()
    print(f"  {'batch':24} {'store rows/s':>12} {'executemany/s':>14} {'store/raw':>9}")
    for op, rates in best.items():
        print(f"  {op:24} {rates['store']:12,.0f} {rates['raw']:14,.0f} "
              f"{rates['store'] / rates['raw']:9.2f}")


def _corpus(count: int) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """`count` notes of pseudo-words with a skewed word frequency, and the queries to time."""
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = sorted({"".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(20_000)})
    rng.shuffle(words)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    items = [(" ".join(rng.choices(words, weights, k=30)), "note",
              f"note {i} {words[i % len(words)]}") for i in range(count)]
    queries = {"common word": words[0], "rare word": words[-1], "two chars": "ka",
               "no match": "xyzzy"}
    return items, queries


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=20)
    return f"{statistics.median(samples):7.2f} / {cuts[18]:7.2f}"


async def search(side: Backend, count: int) -> None:
    """Seed `count` entities with remember_many, then time each query class."""
    items, queries = _corpus(count)
    await side.connect(to_the_stores_file=True)
    await side.wipe()
    async with open_store(side.url, agent=AGENT, clock=SimClock()) as store:
        started = time.perf_counter()
        for start in range(0, count, SEED_CHUNK_ENTITIES_COUNT):
            await store.archival.remember_many(items[start:start + SEED_CHUNK_ENTITIES_COUNT])
            store.clock.advance(1)
        print(f"  seeded {count:,} entities with remember_many in "
              f"{time.perf_counter() - started:.1f} s")
        if side.postgres:
            await side.db.execute("VACUUM ANALYZE entities")  # what autovacuum would do
        print(f"  {'query':12} {'store p50 / p95 ms':>20} {'scan p50 / p95 ms':>20}  hits")
        for kind, query in queries.items():
            timings: dict[str, list[float]] = {"store": [], "scan": []}
            hits = 0
            for _ in range(SEARCH_REPEATS):
                for name, call in (("store", lambda: store.archival.search(query, limit=20)),
                                   ("scan", lambda: side.scan(query.casefold()))):
                    started = time.perf_counter()
                    found = await call()
                    timings[name].append((time.perf_counter() - started) * 1000)
                    hits = len(found) if name == "store" else hits
            print(f"  {kind:12} {_percentiles(timings['store']):>20} "
                  f"{_percentiles(timings['scan']):>20}  {hits}")
    await side.wipe()
    await side.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sides: list[Backend] = [Sqlite(f"{tmp}/umi.db", f"{tmp}/raw.db"),
                                Postgres(args.postgres)]
        for side in sides:
            if args.only and side.name != args.only:
                continue
            for url in {side.url, side.raw_url}:
                async with open_store(url, agent=AGENT):
                    pass  # the schema exists before the raw driver touches it
            print(f"{side.name}: {args.ops} ops each, best of {args.rounds} rounds")
            if not args.skip_ops:
                await operations(side, args.ops, args.rounds)
            await batches(side, args.rounds)
            if not args.skip_search:
                print(f"{side.name}: search at {args.entities:,} entities, limit "
                      f"{SEARCH_LIMIT}, {SEARCH_REPEATS} runs per query")
                await search(side, args.entities)
    print("archival.similar (vector search): .venv/bin/python bench/similar.py")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1/umi_pg_bench")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--skip-ops", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    asyncio.run(main(parser.parse_args()))
