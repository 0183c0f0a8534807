"""store.agents() with many agents, on SQLite and Postgres, beside a raw-driver baseline.

    .venv/bin/python bench/agents.py [--agents N] [--entities-per-agent E] [--postgres URL]

Each agent gets 6 core blocks, 10 working keys and E entities, seeded with the raw driver
into the store's own schema. Timed: `await store.agents()` (one grouped query per tier,
each on that tier's agent index). Baseline: the one statement a person would write by hand for a
single tier, `SELECT agent, COUNT(*) FROM entities GROUP BY agent`, on the same driver.
Best of 20 calls each (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg

from umi_store import SimClock, open_store

CALLS = 20
BLOCK_TYPES = ("system", "persona", "human", "facts", "goals", "scratch")


def rows(agents: int, entities: int, now: int) -> tuple[list[tuple], list[tuple], list[tuple]]:
    names = [f"agent-{i:04}" for i in range(agents)]
    blocks = [(a, t, "x", None, 0.5, 1, now, now, 0) for a in names for t in BLOCK_TYPES]
    keys = [(a, f"k{k}", b"v", 60_000, now + 60_000, now, 0, 3) for a in names
            for k in range(10)]
    things = [(a, f"{a}-{e}", "note", f"n{e}", "c", "{}", None, now, now + e, 0, f"n{e}", "c")
              for a in names for e in range(entities)]
    return blocks, keys, things


async def best_of(call: Callable[[], Awaitable[object]]) -> float:
    timings = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - started)
    return min(timings) * 1000


async def sqlite_figures(agents: int, entities: int, now: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'agents.db'}"
        async with open_store(url, clock=SimClock()):
            pass
        blocks, keys, things = rows(agents, entities, now)
        async with aiosqlite.connect(Path(tmp) / "agents.db") as conn:
            await conn.execute("BEGIN")
            await conn.executemany("INSERT INTO core_blocks VALUES (?,?,?,?,?,?,?,?,?)", blocks)
            await conn.executemany("INSERT INTO working VALUES (?,?,?,?,?,?,?,?)", keys)
            await conn.executemany(
                "INSERT INTO entities (agent, id, entity_type, name, content, metadata, "
                "embedding, created_at, updated_at, checksum, name_folded, content_folded) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", things)
            await conn.commit()

            async def raw() -> object:
                cursor = await conn.execute("SELECT agent, COUNT(*) FROM entities GROUP BY agent")
                return await cursor.fetchall()
            baseline = await best_of(raw)
        async with open_store(url, clock=SimClock()) as store:
            listed = len(await store.agents())
            mine = await best_of(store.agents)
    return mine, baseline, listed


async def postgres_figures(url: str, agents: int, entities: int,
                           now: int) -> tuple[float, float, int]:
    async with open_store(url, clock=SimClock()):
        pass
    blocks, keys, things = rows(agents, entities, now)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM core_blocks; DELETE FROM working; DELETE FROM entities")
        await conn.copy_records_to_table("core_blocks", records=blocks)
        await conn.copy_records_to_table("working", records=keys)
        await conn.copy_records_to_table("entities", records=things)
        await conn.execute("ANALYZE")
        baseline = await best_of(lambda: conn.fetch(
            "SELECT agent, COUNT(*) FROM entities GROUP BY agent"))
    finally:
        await conn.close()
    async with open_store(url, clock=SimClock()) as store:
        listed = len(await store.agents())
        mine = await best_of(store.agents)
    return mine, baseline, listed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--entities-per-agent", type=int, default=20)
    parser.add_argument("--postgres", help="a database this bench may wipe")
    args = parser.parse_args()
    now = SimClock().now_ms()
    print(f"{args.agents} agents, each 6 blocks, 10 keys, {args.entities_per_agent} entities; "
          f"best of {CALLS}")
    figures = [("sqlite", await sqlite_figures(args.agents, args.entities_per_agent, now))]
    if args.postgres:
        figures.append(("postgres", await postgres_figures(args.postgres, args.agents,
                                                           args.entities_per_agent, now)))
    for name, (mine, baseline, listed) in figures:
        print(f"  {name:8} store.agents() {mine:6.1f} ms ({listed} agents)   "
              f"raw one-tier GROUP BY {baseline:6.1f} ms   ratio {mine / baseline:4.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
