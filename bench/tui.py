"""umi-tui figures, each beside its baseline measured in the same run.

    .venv/bin/python bench/tui.py [--runs N] [--entities N] [--working-keys N] [--idle-secs S]

- first paint with data: a fresh `umi-tui --demo` process, and `umi-tui sqlite:///…` on a
  file of `--entities` entities, until all four panes show their data (the Core pane the
  system block's text, no pane still "loading…"), beside an empty Textual app's first
  frame; wall time of the process, best of `--runs`;
- keystroke → results in the Archival pane at `--entities` entities on SQLite (from the
  last key of a query until the results are drawn, debounce included), and paging (n)
  through the listing, beside the bare `store.archival.search` call;
- tick: main-thread CPU time (time.thread_time) of one tick, from moving the clock until
  the screen is drawn again, with `--working-keys` keys on SQLite, beside an empty store;
- idle CPU of `umi-tui --demo` with `--working-keys` keys added, beside an empty Textual
  app idling as long.
Pane internals are not assumed: the bench uses the app, widget ids and what is on screen.
Ticks at 100 000 keys are not measured: working memory holds at most
WORKING_MEMORY_ENTRIES_COUNT_MAX (10 000) keys per agent, so no store can hold them.
The child processes may write bytecode (PYTHONDONTWRITEBYTECODE is dropped for them): an
installed package's modules are compiled at install, as Textual's are for the baseline, so
recompiling ours at every start (~60 ms) would measure this sandbox, not umi-tui.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from umi_store.constants import WORKING_MEMORY_ENTRIES_COUNT_MAX

CHILD = r"""
import sys, time
kind, url, idle_secs, keys = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
from textual.app import App


def idle_then_exit(app):
    # CPU of this process (every thread) over `idle_secs` of wall time, printed at exit.
    async def add_keys_then_idle():
        for index in range(keys and keys - await app.store.working.entry_count()):
            await app.store.working.set(f"bench:{index:05d}", b"value",
                                        ttl_ms=60_000 + index * 8_640)
        await asyncio.sleep(2)  # the panes catch up with the new keys
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_secs)
        print((time.process_time() - cpu) / (time.perf_counter() - wall))
        app.exit()
    app.run_worker(add_keys_then_idle())


import asyncio

if kind == "empty":
    app = App()
    if idle_secs:
        app.call_later(lambda: idle_then_exit(app))
    else:
        app.call_after_refresh(app.exit)
    app.run(headless=True, size=(120, 40))
else:
    from umi_tui import app as app_module
    from umi_tui.__main__ import main
    PANES = ("#core", "#working", "#archival", "#simulation")
    original_run = app_module.UmiApp.run

    def filled(app) -> bool:
        # The Core pane shows the system block's text and no pane still says "loading…".
        try:
            if "You are Tern" not in str(app.query_one("#core-detail-content").render()):
                return False
        except Exception:
            return False
        return not any("loading…" in str(static.render())
                       for pane in PANES for static in app.query_one(pane).query("Static"))

    def run(app, **options):
        def check() -> None:
            if not filled(app):
                app.set_timer(0.002, check)
            elif idle_secs:
                idle_then_exit(app)
            else:
                app.call_after_refresh(app.exit)  # the frame with the data is drawn
        app.call_later(check)
        return original_run(app, headless=True, size=(120, 40))

    app_module.UmiApp.run = run
    main(["--demo"] if kind == "demo" else [url])
"""


def child(kind: str, url: str = "", idle_secs: float = 0, keys: int = 0) -> tuple[float, str]:
    """A fresh interpreter running CHILD: (its wall time, what it printed)."""
    started = time.perf_counter()
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-c", CHILD, kind, url, str(idle_secs), str(keys)],
                          check=True, capture_output=True, text=True,
                          env={**env, "TEXTUAL_ANIMATIONS": "none"})
    return time.perf_counter() - started, done.stdout.strip()


def first_paint_secs(kind: str, url: str, runs: int) -> float:
    return min(child(kind, url)[0] for _ in range(runs))


async def settle(pilot, app) -> None:
    await pilot.pause()
    finite = [w for w in app.workers if w.group != "store-changes"]
    if finite:
        await app.workers.wait_for_complete(finite)
    await pilot.pause()


@contextmanager
def frames_written(app, clock: Callable[[], float]) -> Iterator[list[float]]:
    """The readings of `clock` at which the app writes a frame, while the block runs."""
    frames: list[float] = []
    display = app._display

    def spy(screen, update) -> None:
        display(screen, update)
        frames.append(clock())

    app._display = spy
    try:
        yield frames
    finally:
        app._display = display


async def tick_thread_secs(url: str, working_keys: int, ticks: int) -> tuple[float, float]:
    """(median, max) main-thread CPU (time.thread_time) of one tick, the clock moving 1 s,
    with `working_keys` keys: from the tick until the last frame it causes is written."""
    from umi_store import SimClock
    from umi_tui.app import UmiApp
    from umi_tui.settings import Settings

    app = UmiApp(Settings(url=url), clock=SimClock(), follow_wall_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        for index in range(working_keys):
            await app.store.working.set(f"bench:{index:05d}", b"value",
                                        ttl_ms=60_000 + index * 8_640)
        for _ in range(3):
            await settle(pilot, app)
        samples = []
        with frames_written(app, time.thread_time) as frames:
            for _ in range(ticks):
                frames.clear()
                started = time.thread_time()
                app.session.sim_clock.advance(1_000)
                app.clock_moved()
                await asyncio.sleep(0.25)  # idle: the panes, the feed and the redraw run
                samples.append((frames[-1] if frames else time.thread_time()) - started)
        return statistics.median(samples), max(samples)


async def seed_file(url: str, count: int) -> None:
    """The demo's core blocks and `count` demo-like entities, in one write transaction."""
    import random
    from dataclasses import replace

    from umi_store import EntityType, SimClock, open_store
    from umi_store.tiers.archival import entity_id
    from umi_tui.demo import BLOCKS, _entity

    rng = random.Random(42)
    types = [t for t in EntityType if t != EntityType.SELF]
    async with open_store(url, agent="default", clock=SimClock()) as store:
        for block_type, (label, importance, content) in BLOCKS.items():
            await store.core.set_block(block_type, content, label=label, importance=importance)
        async with store.backend.transaction("default", write=True) as tx:
            for index in range(count):
                entity = _entity(rng, index, types[index % len(types)])
                entity = replace(entity, id=entity_id("default", entity.entity_type, entity.name),
                                 created_at=index, updated_at=index)
                await tx.entity_put(entity)


async def drawn_after(app, key: str, changed) -> float:
    """Seconds from pressing `key` until the first frame written after `changed()` holds:
    the key goes in as a terminal would send it, and no Pilot wait is timed."""
    with frames_written(app, time.perf_counter) as frames:
        started = time.perf_counter()
        app.simulate_key(key)
        while not changed():
            await asyncio.sleep(0.0005)
        seen = time.perf_counter()
        while not frames or frames[-1] < seen:
            await asyncio.sleep(0.0005)
        return frames[-1] - started


async def keystroke_secs(url: str, query: str, runs: int) -> tuple[float, float, float]:
    """Medians of (keystroke → results drawn, n → next page drawn, bare search call)."""
    from textual.widgets import DataTable, Input, Static

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
        search_input = app.query_one("#archival Input", Input)
        status = app.query_one("#archival-status", Static)

        def status_changed_from(before: str):
            return lambda: str(status.render()) != before

        typed = []
        for _ in range(runs):
            search_input.focus()
            search_input.value = query[:-1]
            await settle(pilot, app)
            typed.append(await drawn_after(app, query[-1],
                                           status_changed_from(str(status.render()))))
            await settle(pilot, app)
        search_input.value = ""
        await settle(pilot, app)
        app.query_one("#archival DataTable", DataTable).focus()
        paging = []
        for index in range(runs * 2):
            paging.append(await drawn_after(app, "n" if index < runs else "p",
                                            status_changed_from(str(status.render()))))
            await settle(pilot, app)
        return statistics.median(typed), statistics.median(paging), statistics.median(bare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--working-keys", type=int, default=WORKING_MEMORY_ENTRIES_COUNT_MAX)
    parser.add_argument("--idle-secs", type=float, default=10.0)
    args = parser.parse_args()
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        started = time.perf_counter()
        asyncio.run(seed_file(url, args.entities))
        print(f"(seeded {args.entities:,} entities on SQLite in "
              f"{time.perf_counter() - started:.1f} s)")

        empty = first_paint_secs("empty", "", args.runs)
        demo = first_paint_secs("demo", "", args.runs)
        big = first_paint_secs("url", url, args.runs)
        print(f"first paint with data (best of {args.runs}): empty Textual app "
              f"{empty * 1000:.0f} ms; umi-tui --demo {demo * 1000:.0f} ms: ratio "
              f"{demo / empty:.2f}; umi-tui on {args.entities:,} entities (SQLite) "
              f"{big * 1000:.0f} ms: ratio {big / empty:.2f}")

        typed, paging, bare = asyncio.run(keystroke_secs(url, "payroll", args.runs))
        print(f"keystroke → results at {args.entities:,} entities: {typed * 1000:.0f} ms, "
              f"paging (n/p) {paging * 1000:.0f} ms; bare search {bare * 1000:.1f} ms")

        empty_url, full_url = (f"sqlite:///{Path(directory) / name}" for name in
                               ("ticks-empty.db", "ticks.db"))
        base_median, base_max = asyncio.run(tick_thread_secs(empty_url, 0, 20))
        full_median, full_max = asyncio.run(tick_thread_secs(full_url, args.working_keys, 20))
        print(f"tick main-thread time: {args.working_keys:,} keys {full_median * 1000:.1f} ms "
              f"(max {full_max * 1000:.1f}); empty store {base_median * 1000:.1f} ms "
              f"(max {base_max * 1000:.1f}); 100,000 keys: not possible, working memory "
              f"holds at most {WORKING_MEMORY_ENTRIES_COUNT_MAX:,}")

    idle_empty = float(child("empty", idle_secs=args.idle_secs)[1])
    idle_demo = float(child("demo", idle_secs=args.idle_secs, keys=args.working_keys)[1])
    print(f"idle CPU over {args.idle_secs:g} s: umi-tui --demo with {args.working_keys:,} keys "
          f"{idle_demo:.1%}; empty Textual app {idle_empty:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
