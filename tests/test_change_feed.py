"""store.changes(): each commit once, other processes' commits, and keys that lapse alone."""

import asyncio
import sqlite3
import sys
from contextlib import aclosing

import pytest

from umi_store import SimClock, open_store
from umi_store.constants import CHANGE_FEED_LOG_ROWS_MAX

from .conftest import store_url

CROSS_PROCESS_DELIVERY_SECS_MAX = 1.0  # SPEC §2.5: another process's change shows within 1 s
HANG_GUARD_SECS = 10.0  # only so that a broken feed fails instead of hanging


def summary(event) -> tuple[str, str, str]:
    return (event.tier.value, event.kind.value, event.key)


async def first_event(store, feed) -> asyncio.Future:
    """Start waiting for `feed`'s first event; return once the subscription is live."""
    pending = asyncio.ensure_future(anext(feed))
    while not store.backend.changes.subscriber_count(store.agent):
        await asyncio.sleep(0.001)
    return pending


async def test_a_key_that_lapses_with_no_writer_yields_expired(store):
    await store.working.set("k", b"v", ttl_ms=1_000)
    async with aclosing(store.changes()) as feed:
        pending = asyncio.ensure_future(anext(feed))
        store.clock.advance(1_000)
        event = await asyncio.wait_for(pending, HANG_GUARD_SECS)
    assert summary(event) == ("working", "expired", "k")
    assert event.at_ms == store.clock.now_ms()
    async with store.backend.transaction(store.agent, write=False) as tx:
        assert await tx.working_usage(None, None) == (0, 0), "removed, not only hidden"


async def test_the_expiry_sweeper_stops_with_the_subscription(store):
    async with aclosing(store.changes()) as feed:
        pending = await first_event(store, feed)
        await store.working.set("k", b"v")
        await asyncio.wait_for(pending, HANG_GUARD_SECS)
    sweepers = [t for t in asyncio.all_tasks()
                if t.get_coro().__qualname__ == "Store._sweep_expired_keys"]
    assert sweepers == []


async def test_closing_the_store_stops_the_sweeper_of_a_feed_left_open(backend_name, tmp_path):
    def sweepers() -> list[asyncio.Task]:
        return [t for t in asyncio.all_tasks() if not t.done()
                and getattr(t.get_coro(), "__qualname__", "") == "Store._sweep_expired_keys"]

    async with open_store(store_url(backend_name, tmp_path), agent="left-open",
                          clock=SimClock()) as store:
        feed = store.for_agent("other").changes()
        waiting = asyncio.ensure_future(anext(feed))
        await asyncio.sleep(0.05)
        assert len(sweepers()) == 1
    assert sweepers() == []  # nothing keeps sweeping a closed store
    waiting.cancel()


async def test_a_live_key_is_not_swept(store):
    await store.working.set("k", b"v", ttl_ms=5_000)
    async with aclosing(store.changes()) as feed:
        pending = await first_event(store, feed)
        store.clock.advance(4_999)
        await store.working.set("marker", b"m")
        assert summary(await asyncio.wait_for(pending, HANG_GUARD_SECS)) == \
            ("working", "set", "marker")
    assert await store.working.get("k") == b"v"


async def test_every_commit_shows_once_on_every_connection(backend_name, tmp_path):
    if backend_name == "sim":
        pytest.skip("sim:// storage lives inside one store: there is no second connection")
    url = store_url(backend_name, tmp_path)
    async with open_store(url, agent="a", clock=SimClock()) as one, \
            open_store(url, agent="a", clock=SimClock()) as two:
        async with aclosing(one.changes()) as feed_one, aclosing(two.changes()) as feed_two:
            firsts = [await first_event(one, feed_one), await first_event(two, feed_two)]
            await one.working.set("a", b"1")
            await one.core.set_block("human", "likes tea")
            await two.working.delete("a")
            await two.working.set("b", b"2")
            await one.working.set("end-one", b"")  # the last commit of each connection
            await two.working.set("end-two", b"")  # follows any duplicate in the log
            expected = [("working", "set", "a"), ("core", "set", "human"),
                        ("working", "delete", "a"), ("working", "set", "b"),
                        ("working", "set", "end-one"), ("working", "set", "end-two")]
            for feed, first in zip((feed_one, feed_two), firsts):
                seen = [summary(await asyncio.wait_for(first, HANG_GUARD_SECS))]
                seen += [summary(await asyncio.wait_for(anext(feed), HANG_GUARD_SECS))
                         for _ in expected[1:]]
                assert sorted(seen) == sorted(expected)


async def test_a_commit_by_another_process_shows_within_a_second(backend_name, tmp_path):
    if backend_name == "sim":
        pytest.skip("sim:// storage lives inside one process")
    url = store_url(backend_name, tmp_path)
    writer = ("import asyncio, sys\n"
              "from umi_store import open_store\n"
              "async def main():\n"
              "    async with open_store(sys.argv[1], agent='a') as store:\n"
              "        await store.working.set('from-child', b'hello')\n"
              "asyncio.run(main())\n")
    async with open_store(url, agent="a", clock=SimClock()) as store:
        async with aclosing(store.changes()) as feed:
            pending = await first_event(store, feed)
            child = await asyncio.create_subprocess_exec(sys.executable, "-c", writer, url)
            assert await child.wait() == 0
            event = await asyncio.wait_for(pending, CROSS_PROCESS_DELIVERY_SECS_MAX)
        assert summary(event) == ("working", "set", "from-child")
        assert await store.working.get("from-child") == b"hello"


async def test_the_sqlite_change_log_stays_bounded(tmp_path):
    async with open_store(f"sqlite:///{tmp_path}/umi.db", agent="a", clock=SimClock()) as store:
        await store.working.set("k", b"v")
    with sqlite3.connect(tmp_path / "umi.db") as conn:
        conn.executemany("INSERT INTO change_log (origin, agent, tier, kind, key, at_ms) "
                         "VALUES ('elsewhere', 'a', 'working', 'set', ?, 0)",
                         [(f"k{i}",) for i in range(CHANGE_FEED_LOG_ROWS_MAX + 5)])
        assert conn.execute("SELECT COUNT(*) FROM change_log").fetchone()[0] == \
            CHANGE_FEED_LOG_ROWS_MAX


async def test_a_bounded_sweep_removes_the_earliest_deadlines_first(store):
    for key, ttl_ms in [("c", 1_000), ("a", 3_000), ("b", 2_000), ("live", 9_000)]:
        await store.working.set(key, b"v", ttl_ms=ttl_ms)
    store.clock.advance(3_000)
    assert await store.working.cleanup_expired(limit=2) == 2
    async with store.backend.transaction(store.agent, write=False) as tx:
        assert await tx.working_get("a") is not None, "the latest deadline waits its turn"
        assert await tx.working_get("b") is None and await tx.working_get("c") is None
    assert await store.working.cleanup_expired() == 1
    assert [e.key for e in await store.working.entries()] == ["live"]


async def test_a_writer_logs_for_a_watcher_that_came_after_its_first_writes(backend_name,
                                                                           tmp_path):
    if backend_name == "sim":
        pytest.skip("sim:// storage lives inside one store: there is no second connection")
    url = store_url(backend_name, tmp_path)
    async with open_store(url, agent="a", clock=SimClock()) as writer:
        await writer.working.set("before", b"nobody watches yet")
        for round_ in range(2):  # the second watcher comes after the first one left
            async with open_store(url, agent="a", clock=SimClock()) as watcher, \
                    aclosing(watcher.changes()) as feed:
                pending = await first_event(watcher, feed)
                await writer.working.set(f"seen{round_}", b"v")
                event = await asyncio.wait_for(pending, CROSS_PROCESS_DELIVERY_SECS_MAX * 2)
                assert summary(event) == ("working", "set", f"seen{round_}")
            await writer.working.set(f"after{round_}", b"the watcher left")
