"""archival.similar latency at `--entities` entities × 1536 dimensions, on every backend.

    .venv/bin/python bench/similar.py [--entities N] [--queries N] [--postgres URL]
                                      [--only sim|sqlite|postgres]

Per backend: p50 / p95 ms of `similar(vector, k=10)` for random query vectors, (a) warm:
the agent's sketches cached, as on every query after the first while the embeddings are
unchanged; (b) cold: the first query after a write, which reloads the sketches. Beside
them, in the same run, the baseline a user would hand-write: a float32 matrix of the unit
vectors in memory and `matrix @ query` + argpartition (not exact: it is the scan that one
float32 pass over the data costs). On SQLite also the sqlite-vec extension's own exact
KNN (vec0, float32, cosine) over the same vectors, when it loads. The data are random
Gaussian vectors (seeded): the sketch's worst case, with no clusters to help.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from umi_store import SimClock, Store, open_store
from umi_store.constants import EMBEDDING_DIMENSIONS_COUNT as DIMS

K = 10
FILL_CHUNK_ENTITIES = 1_000
COLD_QUERIES = 5


def _vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, DIMS), dtype=np.float32)


async def _fill(store: Store, matrix: np.ndarray) -> None:
    for start in range(0, len(matrix), FILL_CHUNK_ENTITIES):
        async with store.batch() as batch:
            for i in range(start, min(start + FILL_CHUNK_ENTITIES, len(matrix))):
                await batch.archival.remember(f"memory {i}", "note", name=f"m{i:06}",
                                              embedding=matrix[i].tolist())


async def _timed_ms(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


def _p(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.1f}  p95 {p95:7.1f}"


def _baseline(matrix: np.ndarray, queries: np.ndarray) -> list[float]:
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    times = []
    for query in queries:
        started = time.perf_counter()
        scores = unit @ (query / np.linalg.norm(query))
        np.argpartition(-scores, K)[:K]
        times.append((time.perf_counter() - started) * 1000)
    return times


def _sqlite_vec(path: str, matrix: np.ndarray, queries: np.ndarray) -> list[float] | str:
    """sqlite-vec's vec0 KNN over the same unit vectors, or why it could not run."""
    import ctypes
    import sqlite3

    import _sqlite3
    try:
        import sqlite_vec
    except ImportError:
        return "sqlite-vec is not installed"
    db = sqlite3.connect(path)
    if hasattr(db, "enable_load_extension"):
        db.enable_load_extension(True)
        sqlite_vec.load(db)
    else:  # a Python built without extension loading: register it for new connections
        db.close()
        library = ctypes.CDLL(_sqlite3.__file__)
        entry = ctypes.CDLL(sqlite_vec.loadable_path() + ".so").sqlite3_vec_init
        if library.sqlite3_auto_extension(ctypes.cast(entry, ctypes.c_void_p)) != 0:
            return "sqlite-vec did not load"
        db = sqlite3.connect(path)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{DIMS}] "
               "distance_metric=cosine)")
    with db:
        db.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                       ((i + 1, row.tobytes()) for i, row in enumerate(unit)))
    times = []
    for query in queries:
        started = time.perf_counter()
        db.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?",
                   ((query / np.linalg.norm(query)).astype(np.float32).tobytes(), K)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    db.close()
    return times


async def _measure(url: str, matrix: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    async with open_store(url, agent="bench", clock=SimClock()) as store:
        started = time.perf_counter()
        await _fill(store, matrix)
        fill_s = time.perf_counter() - started
        vectors = [q.tolist() for q in queries]
        cold = []
        for i, query in enumerate(vectors[:COLD_QUERIES]):
            await store.archival.remember("a write", "note", name=f"w{i}",
                                          embedding=vectors[-1])
            cold.append(await _timed_ms(lambda: store.archival.similar(query, k=K)))
        warm = [await _timed_ms(lambda: store.archival.similar(query, k=K))
                for query in vectors]
    return {"fill_s": fill_s, "warm": warm, "cold": cold}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--postgres", default=os.environ.get("UMI_TEST_POSTGRES_URL"))
    parser.add_argument("--only", choices=("sim", "sqlite", "postgres"))
    args = parser.parse_args()
    matrix = _vectors(args.entities, seed=1)
    queries = _vectors(args.queries, seed=2)
    print(f"similar(vector, k={K}) at {args.entities:,} entities × {DIMS} dims, "
          f"{args.queries} queries; load {os.getloadavg()[0]:.2f}")
    baseline = _baseline(matrix, queries)
    print(f"  {'baseline: float32 matrix @ q':34} {_p(baseline)}")
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sim": "sim://?seed=1", "sqlite": f"sqlite:///{tmp}/similar.db",
                "postgres": args.postgres}
        for name, url in urls.items():
            if args.only not in (None, name):
                continue
            if url is None:
                print(f"  {name}: skipped (no --postgres URL)")
                continue
            found = await _measure(url, matrix, queries)
            warm_p50 = statistics.median(found["warm"])
            print(f"  {name + ' warm':34} {_p(found['warm'])}  "
                  f"/baseline {warm_p50 / statistics.median(baseline):4.2f}  "
                  f"(filled in {found['fill_s']:.0f} s)")
            print(f"  {name + ' cold (after a write)':34} {_p(found['cold'])}")
            if name == "sqlite":
                vec = _sqlite_vec(f"{tmp}/vec.db", matrix, queries)
                print(f"  {'sqlite-vec vec0 KNN (float32)':34} "
                      + (vec if isinstance(vec, str) else _p(vec)))
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
