"""umi-tui figures, each beside its baseline measured in the same run.

    .venv/bin/python bench/tui.py [--runs N] [--entities N]

- first paint of `umi-tui --demo` (a fresh process until the first frame is drawn) as a
  ratio to an empty Textual app started the same way;
- tick cost (ClockMoved to every pane, until the screen is drawn again) with 10 000 working
  keys, beside the same tick on an empty store;
- keystroke → results in the Archival pane at 100 000 entities on SQLite (from the last key
  of a query until its search workers are done and the screen drawn, debounce included),
  beside the bare `store.archival.search` call.
Pane internals are not assumed: the bench uses the contract's class names and the app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAINT_CHILD = r"""
import sys, time
from textual.app import App
kind, url = sys.argv[1], sys.argv[2]
if kind == "empty":
    app = App()
    app.call_after_refresh(app.exit)
else:
    from umi_tui.app import UmiApp
    from umi_tui.settings import Settings
    app = UmiApp(Settings(demo=True, seed=42) if kind == "demo" else Settings(url=url))
    PANES = ("#core", "#working", "#archival", "#simulation")

    def filled() -> bool:
        # The Core pane shows the system block's text and no pane still says "loading…".
        try:
            core = str(app.query_one("#core-detail-content").render())
        except Exception:
            return False
        if "You are Tern" not in core:
            return False
        for pane in PANES:
            for static in app.query_one(pane).query("Static"):
                if "loading…" in str(static.render()):
                    return False
        return True

    def check() -> None:
        if filled():
            app.call_after_refresh(app.exit)  # the frame with the data is drawn
        else:
            app.set_timer(0.002, check)

    app.call_later(check)
app.run(headless=True, size=(120, 40))
"""


def first_paint_secs(kind: str, url: str = "") -> float:
    """A fresh interpreter: imports, app start, until the panes show data (`empty`: an empty
    Textual app's first frame); wall time of the process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", PAINT_CHILD, kind, url], check=True,
                   capture_output=True, env={**os.environ, "TEXTUAL_ANIMATIONS": "none"})
    return time.perf_counter() - started


async def settle(pilot, app) -> None:
    await pilot.pause()
    finite = [w for w in app.workers if w.group != "store-changes"]
    if finite:
        await app.workers.wait_for_complete(finite)
    await pilot.pause()


async def tick_secs(working_keys: int, ticks: int) -> float:
    """Median cost of one tick with `working_keys` live keys in the store."""
    from umi_store import SimClock
    from umi_tui.app import UmiApp
    from umi_tui.settings import Settings

    app = UmiApp(Settings(url="sim://?seed=1"), clock=SimClock(), follow_wall_clock=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        for index in range(working_keys):
            await app.store.working.set(f"bench:{index:05d}", b"value", ttl_ms=3_600_000 + index)
        for _ in range(3):
            await settle(pilot, app)
        samples = []
        for _ in range(ticks):
            started = time.perf_counter()
            app.tick()
            await settle(pilot, app)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)


async def seed_entities(url: str, count: int) -> None:
    """`count` demo-like entities in one write transaction (bench setup only)."""
    import random

    from umi_store import SimClock, open_store
    from umi_store.tiers.archival import entity_id
    from umi_tui.demo import _entity
    from umi_store import EntityType
    from dataclasses import replace

    rng = random.Random(42)
    types = [t for t in EntityType if t != EntityType.SELF]
    async with open_store(url, agent="default", clock=SimClock()) as store:
        async with store.backend.transaction("default", write=True) as tx:
            for index in range(count):
                entity = _entity(rng, index, types[index % len(types)])
                entity = replace(entity, id=entity_id("default", entity.entity_type, entity.name),
                                 created_at=index, updated_at=index)
                await tx.entity_put(entity)


async def keystroke_secs(url: str, query: str, runs: int) -> tuple[float | None, float]:
    """(median keystroke → results in the app or None when the pane has no input, median
    bare search call)."""
    from textual.widgets import Input

    from umi_tui.app import UmiApp
    from umi_tui.settings import Settings

    app = UmiApp(Settings(url=url), follow_wall_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        bare = []
        for _ in range(runs):
            started = time.perf_counter()
            await app.store.archival.search(query)
            bare.append(time.perf_counter() - started)
        inputs = list(app.query("#archival Input"))
        if not inputs:
            return None, statistics.median(bare)
        search_input: Input = inputs[0]
        samples = []
        for _ in range(runs):
            search_input.focus()
            search_input.value = ""
            await settle(pilot, app)
            await pilot.press(*query[:-1])
            started = time.perf_counter()
            await pilot.press(query[-1])
            await settle(pilot, app)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples), statistics.median(bare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--working-keys", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"

    empty = statistics.median(first_paint_secs("empty") for _ in range(args.runs))
    demo = statistics.median(first_paint_secs("demo") for _ in range(args.runs))
    print(f"first paint: umi-tui --demo {demo * 1000:.0f} ms, empty Textual app "
          f"{empty * 1000:.0f} ms: ratio {demo / empty:.2f}")

    base_tick = asyncio.run(tick_secs(0, args.runs * 4))
    full_tick = asyncio.run(tick_secs(args.working_keys, args.runs * 4))
    print(f"tick: {args.working_keys:,} working keys {full_tick * 1000:.1f} ms, empty store "
          f"{base_tick * 1000:.1f} ms: ratio {full_tick / base_tick:.2f}")

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        started = time.perf_counter()
        asyncio.run(seed_entities(url, args.entities))
        print(f"(seeded {args.entities:,} entities on SQLite in "
              f"{time.perf_counter() - started:.1f} s)")
        app_secs, bare_secs = asyncio.run(keystroke_secs(url, "payroll", args.runs))
    if app_secs is None:
        print(f"keystroke → results: not measured (the Archival pane has no Input yet); "
              f"bare search {bare_secs * 1000:.1f} ms")
    else:
        print(f"keystroke → results at {args.entities:,} entities: {app_secs * 1000:.0f} ms, "
              f"bare search {bare_secs * 1000:.1f} ms: ratio {app_secs / bare_secs:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
