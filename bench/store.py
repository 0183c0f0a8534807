"""Store throughput per backend, each figure beside raw aiosqlite doing like statements.

    .venv/bin/python bench/store.py [--ops N]

The baseline runs in the same process and the same run, so the ratio (store ops/s over
raw ops/s) is what to compare across machines, not the raw numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import aiosqlite

from umi_store import SimClock, open_store


async def _rate(count: int, operation) -> float:
    started = time.perf_counter()
    for i in range(count):
        await operation(i)
    return count / (time.perf_counter() - started)


async def raw_aiosqlite_rates(path: str, count: int) -> dict[str, float]:
    """One write transaction (BEGIN IMMEDIATE, read, upsert, COMMIT) or one select per op."""
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("CREATE TABLE kv (agent TEXT, key TEXT, value BLOB, "
                         "PRIMARY KEY (agent, key))")
        await db.commit()

        async def write(i: int) -> None:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("SELECT SUM(length(value)), COUNT(*) FROM kv WHERE agent = ?", ("a",))
            await db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", ("a", f"k{i % 500}", b"v"))
            await db.execute("COMMIT")

        async def read(i: int) -> None:
            cursor = await db.execute("SELECT value FROM kv WHERE agent = ? AND key = ?",
                                      ("a", f"k{i % 500}"))
            await cursor.fetchone()

        return {"write": await _rate(count, write), "read": await _rate(count, read)}


async def store_rates(url: str, count: int) -> dict[str, float]:
    async with open_store(url, agent="bench", clock=SimClock()) as store:
        rates = {
            "core set": await _rate(count, lambda i: store.core.set_block("scratch", f"note {i}")),
            "working set": await _rate(count, lambda i: store.working.set(f"k{i % 500}", b"v")),
            "working get": await _rate(count, lambda i: store.working.get(f"k{i % 500}")),
            "remember": await _rate(count, lambda i: store.archival.remember(
                f"entity {i} about tea and memory", "note")),
        }
        rates["search"] = await _rate(max(1, count // 10),
                                      lambda i: store.archival.search("memory", limit=20))
        return rates


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = await raw_aiosqlite_rates(f"{tmp}/raw.db", count)
        print(f"baseline raw aiosqlite: write txn {raw['write']:,.0f}/s, "
              f"point read {raw['read']:,.0f}/s  ({count} ops)")
        for name, url in [("sim", "sim://?seed=1"), ("sqlite", f"sqlite:///{tmp}/umi.db")]:
            for op, rate in (await store_rates(url, count)).items():
                base = raw["read"] if op in ("working get", "search") else raw["write"]
                print(f"{name:7} {op:12} {rate:10,.0f} ops/s   {rate / base:6.2f}x raw aiosqlite")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000)
    asyncio.run(main(parser.parse_args().ops))
