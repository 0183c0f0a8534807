"""What history costs: writes with history beside the same writes with it switched off.

    .venv/bin/python bench/history.py [--ops N] [--rounds N] [--postgres URL]

Baseline, measured in the same run: the same store and operations with the backend's
history_append replaced by a no-op (the write path as it was before history; on Postgres
working.set's one-round-trip function is then the one without history). The two sides
run on two stores in alternating slices of a few calls, so a change in the machine's load
falls on both alike; each figure is the best of `--rounds` rounds (a shared machine only
ever slows a run down). Then history() of a key with 1 000 versions
(HISTORY_KEY_VERSIONS_COUNT_MAX), p50 and p95 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg

from umi_store import SimClock, Store, open_store
from umi_store.backends import postgres, sqlite
from umi_store.constants import HISTORY_KEY_VERSIONS_COUNT_MAX

HISTORY_READS_COUNT = 200
INTERLEAVE_OPS_COUNT = 50  # calls per slice when the sides alternate
Operation = Callable[[Store, int], Awaitable[Any]]
OPERATIONS: dict[str, Operation] = {
    "working.set": lambda s, i: s.working.set(f"k{i % 500}", b"v" * 100),
    "core.set_block": lambda s, i: s.core.set_block("scratch", f"note {i} " * 20),
    "archival.remember": lambda s, i: s.archival.remember(f"fact {i % 300} " * 10, "note",
                                                          name=f"n{i % 300}"),
}


@contextlib.contextmanager
def history_off() -> Iterator[None]:
    """The write path without history: appends do nothing, working.set's Postgres
    function is the one from before history."""
    async def no_append(self: Any, *args: Any) -> int:
        return 1

    async def put_without_history(self: Any, agent: str, entry: Any, size_max: int,
                                  entries_max: int, record: Any, limits: Any) -> int | None:
        from umi_store.backends import rows
        from umi_store.models import ChangeEvent, ChangeKind, Tier
        event = ChangeEvent(Tier.WORKING, ChangeKind.SET, entry.key, entry.updated_at)
        payload, = postgres.change_payloads(self.origin, agent, [event])
        async with self._connection() as conn:
            return int(await conn.fetchval(
                "SELECT umi_working_put_if_room($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, $13)", agent, postgres.agent_lock_key(agent),
                *rows.entry_params(agent, entry)[1:], size_max, entries_max,
                postgres.CHANGE_FEED_CHANNEL, payload))
    saved = (sqlite.SqliteTx.history_append, postgres.PostgresTx.history_append,
             postgres.PostgresBackend.working_put_if_room)
    sqlite.SqliteTx.history_append = no_append  # type: ignore[method-assign,assignment]
    postgres.PostgresTx.history_append = no_append  # type: ignore[method-assign,assignment]
    postgres.PostgresBackend.working_put_if_room = put_without_history  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        (sqlite.SqliteTx.history_append, postgres.PostgresTx.history_append,
         postgres.PostgresBackend.working_put_if_room) = saved


async def rates(stores: dict[bool, Store], operation: Operation, ops: int) -> dict[bool, float]:
    """Writes per second with history (True) and without (False), in alternating slices."""
    spent = {True: 0.0, False: 0.0}
    for start in range(0, ops, INTERLEAVE_OPS_COUNT):
        for recorded, store in stores.items():
            with contextlib.nullcontext() if recorded else history_off():
                started = time.perf_counter()
                for i in range(start, min(start + INTERLEAVE_OPS_COUNT, ops)):
                    await operation(store, i)
                spent[recorded] += time.perf_counter() - started
    return {recorded: ops / seconds for recorded, seconds in spent.items()}


async def wipe_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM core_blocks; DELETE FROM working; DELETE FROM entities;"
                           " DELETE FROM history; DELETE FROM history_totals")
    finally:
        await conn.close()


async def bench_writes(urls: dict[bool, str], ops: int, rounds: int) -> None:
    """`urls`: where the writes with history (True) and without (False) go; on Postgres,
    one database under two agents."""
    print(f"\n{urls[True].split(':')[0]}: writes per second, best of {rounds} rounds of {ops}")
    print(f"  {'operation':<20}{'with history':>14}{'without':>10}{'cost ×':>8}")
    for name, operation in OPERATIONS.items():
        best = {True: 0.0, False: 0.0}
        for _ in range(rounds):
            if urls[True].startswith("postgres"):
                await wipe_postgres(urls[True])
            async with contextlib.AsyncExitStack() as opened:
                stores = {recorded: await opened.enter_async_context(
                    open_store(url, agent=f"bench-{recorded}", clock=SimClock()))
                    for recorded, url in urls.items()}
                for recorded, store in stores.items():
                    with contextlib.nullcontext() if recorded else history_off():
                        await operation(store, -1)  # warm: schema, first row, statements
                for recorded, rate in (await rates(stores, operation, ops)).items():
                    best[recorded] = max(best[recorded], rate)
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
        await bench_writes({recorded: f"sqlite:///{directory}/bench-{recorded}.db"
                            for recorded in (True, False)}, args.ops, args.rounds)
        await bench_history_read(f"sqlite:///{directory}/read.db")
    if args.postgres:
        await bench_writes(dict.fromkeys((True, False), args.postgres), args.ops // 4,
                           args.rounds)
        await wipe_postgres(args.postgres)
        await bench_history_read(args.postgres)


if __name__ == "__main__":
    asyncio.run(main())
