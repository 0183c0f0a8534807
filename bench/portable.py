"""Export and import of N archival entities on SQLite, each beside a raw-driver baseline.

    .venv/bin/python bench/portable.py [--entities N] [--rounds R]

Import: a generated export file of N entities is imported into an empty SQLite store
(validation of every line, one transaction). Baseline: the same rows, parsed with
json.loads and inserted by hand with one aiosqlite executemany into the store's own
schema (so its trigram search index is built too), in one transaction.
Export: the store is exported to a file. Baseline: one aiosqlite SELECT of every row,
each written as a JSON line with json.dumps.
Best of R rounds (the machine is shared: take the best, run it more than once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiosqlite

from umi_store import Entity, SimClock, open_store
from umi_store.portable import export_memory, import_memory
from umi_store.tiers.archival import entity_id

AGENT = "bench"


def write_export_file(path: Path, count: int) -> None:
    clock = SimClock()
    with path.open("w") as out:
        out.write(json.dumps({"type": "header", "format": "umi-memory", "version": 1,
                              "source": "bench", "clock_ms": clock.now_ms(),
                              "agents": [AGENT]}) + "\n")
        for i in range(count):
            name = f"entity {i}"
            entity = Entity("note", name, f"note number {i} about topic {i % 97}",
                            entity_id(AGENT, "note", name), {"n": str(i)}, None,
                            clock.now_ms(), clock.now_ms() + i)
            out.write(json.dumps({"type": "entity", "agent": AGENT, "id": entity.id,
                                  "entity_type": "note", "name": name,
                                  "content": entity.content, "metadata": dict(entity.metadata),
                                  "embedding": None, "created_at": entity.created_at,
                                  "updated_at": entity.updated_at}) + "\n")


async def store_import(db: Path, source: Path) -> float:
    db.unlink(missing_ok=True)
    async with open_store(f"sqlite:///{db}", agent=AGENT, clock=SimClock()) as store:
        started = time.perf_counter()
        with source.open() as lines:
            await import_memory(store, lines)
        return time.perf_counter() - started


async def store_export(db: Path, target: Path) -> float:
    async with open_store(f"sqlite:///{db}", agent=AGENT, clock=SimClock()) as store:
        started = time.perf_counter()
        with target.open("w") as out:
            summary = await export_memory(store, out, [AGENT])
        elapsed = time.perf_counter() - started
        assert summary.entities > 0
        return elapsed


async def raw_import(db: Path, source: Path) -> float:
    """The rows inserted by hand into the store's own schema (its search index included)."""
    db.unlink(missing_ok=True)
    async with open_store(f"sqlite:///{db}", clock=SimClock()):
        pass  # creates the schema
    async with aiosqlite.connect(db) as conn:
        started = time.perf_counter()
        with source.open() as lines:
            next(lines)
            rows = [(r["agent"], r["id"], r["entity_type"], r["name"], r["content"],
                     json.dumps(r["metadata"]), r["created_at"], r["updated_at"], 0,
                     r["name"].casefold(), r["content"].casefold())
                    for r in map(json.loads, lines)]
        await conn.execute("BEGIN")
        await conn.executemany(
            "INSERT INTO entities (agent, id, entity_type, name, content, metadata, "
            "created_at, updated_at, checksum, name_folded, content_folded) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        await conn.commit()
        return time.perf_counter() - started


async def raw_export(db: Path, target: Path) -> float:
    columns = ("agent", "id", "entity_type", "name", "content", "metadata", "created_at",
               "updated_at")
    async with aiosqlite.connect(db) as conn:
        started = time.perf_counter()
        cursor = await conn.execute(f"SELECT {', '.join(columns)} FROM entities "
                                    "ORDER BY updated_at DESC, id")
        with target.open("w") as out:
            for row in await cursor.fetchall():
                out.write(json.dumps(dict(zip(columns, row, strict=True))) + "\n")
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "in.jsonl"
        write_export_file(source, args.entities)
        figures: dict[str, list[float]] = {k: [] for k in ("import", "raw import", "export",
                                                         "raw export")}
        for _ in range(args.rounds):
            figures["import"].append(await store_import(work / "store.db", source))
            figures["export"].append(await store_export(work / "store.db", work / "out.jsonl"))
            figures["raw import"].append(await raw_import(work / "raw.db", source))
            figures["raw export"].append(await raw_export(work / "raw.db", work / "raw.jsonl"))
    print(f"{args.entities} entities on SQLite, best of {args.rounds} rounds")
    for what in ("import", "export"):
        mine, raw = min(figures[what]), min(figures[f"raw {what}"])
        print(f"  {what:7} {mine:6.2f} s   raw aiosqlite {raw:6.2f} s   ratio {mine / raw:5.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
