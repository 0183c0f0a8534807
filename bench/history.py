"""What history costs: writes with history beside the same writes with it switched off.

    .venv/bin/python bench/history.py [--ops N] [--rounds N] [--postgres URL]

Baseline, measured in the same run: the same store and operations with the backend's
history_append replaced by a no-op (the write path as it was before history; on Postgres
the server-side umi_history_append too, which every one-round-trip write calls). Each figure is
the best of `--rounds` rounds (a shared machine only ever slows a run down). Then
history() of a key with 1 000 versions (HISTORY_KEY_VERSIONS_COUNT_MAX), p50 and p95 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from umi_store import SimClock, Store, open_store
from umi_store.backends import postgres, sqlite
from umi_store.constants import HISTORY_KEY_VERSIONS_COUNT_MAX

HISTORY_READS_COUNT = 200
Operation = Callable[[Store, int], Awaitable[Any]]
OPERATIONS: dict[str, Operation] = {
    "working.set": lambda s, i: s.working.set(f"k{i % 500}", b"v" * 100),
    "core.set_block": lambda s, i: s.core.set_block("scratch", f"note {i} " * 20),
    "archival.remember": lambda s, i: s.archival.remember(f"fact {i % 300} " * 10, "note",
                                                          name=f"n{i % 300}"),
}


_NO_APPEND = """CREATE OR REPLACE FUNCTION umi_history_append(
    p_agent text, p_tier text, p_key text, p_kind text, p_at_ms bigint, p_actor text,
    p_value bytea, p_metadata text, p_size_bytes bigint, p_versions_max bigint,
    p_bytes_max bigint, p_bytes_pruned bigint) RETURNS bigint
LANGUAGE sql AS 'SELECT 1::bigint'"""


def _kept_append() -> str:
    """The migration's own umi_history_append, to put back."""
    return next(statement for statement in postgres._MIGRATIONS[4]
                if "FUNCTION umi_history_append(" in statement)


@asynccontextmanager
async def history_off(url: str) -> AsyncIterator[None]:
    """The write path without history: appends do nothing. In a transaction body that is
    Tx.history_append; on Postgres also the server-side umi_history_append that every
    one-round-trip function calls (replaced in this bench database, then restored), so
    the same statements run, less their history step."""
    async def no_append(self: Any, *args: Any) -> int:
        return 1

    saved = (sqlite.SqliteTx.history_append, postgres.PostgresTx.history_append)
    sqlite.SqliteTx.history_append = no_append  # type: ignore[method-assign,assignment]
    postgres.PostgresTx.history_append = no_append  # type: ignore[method-assign,assignment]
    server = await asyncpg.connect(url) if url.startswith("postgres") else None
    try:
        if server is not None:
            await server.execute(_NO_APPEND)
        yield
    finally:
        sqlite.SqliteTx.history_append, postgres.PostgresTx.history_append = saved
        if server is not None:
            await server.execute(_kept_append())
            await server.close()


async def rate(store: Store, operation: Operation, ops: int) -> float:
    started = time.perf_counter()
    for i in range(ops):
        await operation(store, i)
    return ops / (time.perf_counter() - started)


async def wipe_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM core_blocks; DELETE FROM working; DELETE FROM entities;"
                           " DELETE FROM history; DELETE FROM history_totals")
    finally:
        await conn.close()


async def bench_writes(url: str, ops: int, rounds: int) -> None:
    print(f"\n{url.split(':')[0]}: writes per second, best of {rounds} rounds of {ops}")
    print(f"  {'operation':<20}{'with history':>14}{'without':>10}{'cost ×':>8}")
    for name, operation in OPERATIONS.items():
        best = {True: 0.0, False: 0.0}
        for _ in range(rounds):
            for recorded in (True, False):
                async with open_store(url, agent="bench", clock=SimClock()) as store:
                    if url.startswith("postgres"):
                        await wipe_postgres(url)  # the schema exists once the store is open
                    await operation(store, -1)  # warm: schema, first row, prepared statements
                    if recorded:
                        best[True] = max(best[True], await rate(store, operation, ops))
                    else:
                        async with history_off(url):
                            best[False] = max(best[False], await rate(store, operation, ops))
        print(f"  {name:<20}{best[True]:>14.0f}{best[False]:>10.0f}"
              f"{best[False] / best[True]:>8.2f}")


async def bench_history_read(url: str) -> None:
    async with open_store(url, agent="bench", clock=SimClock()) as store:
        async with store.batch() as batch:
            for i in range(HISTORY_KEY_VERSIONS_COUNT_MAX):
                await batch.core.set_block("scratch", f"version {i} " * 20)
        times = []
        for _ in range(HISTORY_READS_COUNT):
            started = time.perf_counter()
            records = await store.history("core", "scratch")
            times.append((time.perf_counter() - started) * 1000)
        assert len(records) == HISTORY_KEY_VERSIONS_COUNT_MAX
        # Baseline: one raw SELECT of the same rows through the store's own connection.
        raw = []
        for _ in range(HISTORY_READS_COUNT):
            started = time.perf_counter()
            await store.backend.run("bench", lambda tx: _raw_select(tx), write=False)
            raw.append((time.perf_counter() - started) * 1000)
    print(f"\n{url.split(':')[0]}: history() of a key with {len(records)} versions, "
          f"{HISTORY_READS_COUNT} reads")
    print(f"  store  p50 {statistics.median(times):.2f} ms   p95 "
          f"{statistics.quantiles(times, n=20)[-1]:.2f} ms")
    print(f"  raw    p50 {statistics.median(raw):.2f} ms (the same SELECT, rows not built "
          "into records)")


async def _raw_select(tx: Any) -> Any:
    if isinstance(tx, sqlite.SqliteTx):
        return tx._fetchall("SELECT tier, key, version, kind, at_ms, actor, value, metadata "
                            "FROM history WHERE agent = ? AND tier = 'core' AND key = "
                            "'scratch' ORDER BY version DESC LIMIT 10000", ("bench",))
    return await tx._fetch("SELECT tier, key, version, kind, at_ms, actor, value, metadata "
                           "FROM history WHERE agent = $1 AND tier = 'core' AND key = "
                           "'scratch' ORDER BY version DESC LIMIT 10000", "bench")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="a database the bench may wipe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        await bench_writes(f"sqlite:///{directory}/bench.db", args.ops, args.rounds)
        await bench_history_read(f"sqlite:///{directory}/read.db")
    if args.postgres:
        await bench_writes(args.postgres, args.ops // 4, args.rounds)
        await wipe_postgres(args.postgres)
        await bench_history_read(args.postgres)


if __name__ == "__main__":
    asyncio.run(main())
