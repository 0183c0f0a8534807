"""SPEC §2.2, run on every backend."""

import pytest

from umi_store import InvalidInputError, LimitExceededError
from umi_store.constants import (WORKING_MEMORY_ENTRIES_COUNT_MAX,
                                 WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                                 WORKING_MEMORY_KEY_BYTES_MAX, WORKING_MEMORY_SIZE_BYTES_MAX,
                                 WORKING_MEMORY_TTL_SECS_DEFAULT, WORKING_MEMORY_TTL_SECS_MAX)


async def test_key_is_gone_at_its_deadline(store):
    await store.working.set("k", b"v", ttl_ms=1_000)
    store.clock.advance(999)
    assert await store.working.get("k") == b"v"
    assert await store.working.ttl_ms("k") == 1
    store.clock.advance(1)
    assert await store.working.get("k") is None
    assert await store.working.ttl_ms("k") is None
    assert await store.working.exists("k") is False


async def test_default_ttl_is_one_hour(store):
    await store.working.set("k", b"v")
    assert await store.working.ttl_ms("k") == WORKING_MEMORY_TTL_SECS_DEFAULT * 1000


async def test_overwrite_resets_ttl(store):
    await store.working.set("k", b"v", ttl_ms=1_000)
    store.clock.advance(900)
    await store.working.set("k", b"w", ttl_ms=1_000)
    store.clock.advance(900)
    assert await store.working.get("k") == b"w"


async def test_limits_at_and_one_past_boundary(store):
    await store.working.set("é" * (WORKING_MEMORY_KEY_BYTES_MAX // 2), b"v")
    with pytest.raises(LimitExceededError):
        await store.working.set("é" * (WORKING_MEMORY_KEY_BYTES_MAX // 2) + "x", b"v")
    await store.working.set("big", b"x" * WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX)
    with pytest.raises(LimitExceededError):
        await store.working.set("big", b"x" * (WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX + 1))
    assert len(await store.working.get("big")) == WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX
    await store.working.set("t", b"v", ttl_ms=WORKING_MEMORY_TTL_SECS_MAX * 1000)
    with pytest.raises(LimitExceededError):
        await store.working.set("t2", b"v", ttl_ms=WORKING_MEMORY_TTL_SECS_MAX * 1000 + 1)
    assert await store.working.exists("t2") is False


async def test_total_size_limit_refuses_and_changes_nothing(store):
    chunk = WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX - 2  # plus a 2-byte key = 64 KiB
    for i in range(16):
        await store.working.set(f"{i:02}", b"x" * chunk)
    assert await store.working.used_bytes() == WORKING_MEMORY_SIZE_BYTES_MAX
    with pytest.raises(LimitExceededError):
        await store.working.set("z", b"x")
    assert await store.working.entry_count() == 16


async def test_expired_keys_are_reclaimed_when_a_write_needs_room(store):
    chunk = WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX - 2
    for i in range(16):
        await store.working.set(f"{i:02}", b"x" * chunk, ttl_ms=1_000 if i == 0 else 60_000)
    store.clock.advance(1_000)
    await store.working.set("zz", b"x" * chunk)
    assert await store.working.entry_count() == 16
    assert await store.working.get("00") is None


async def test_entry_count_limit(store):
    for i in range(WORKING_MEMORY_ENTRIES_COUNT_MAX):
        await store.working.set(f"k{i}", b"")
    with pytest.raises(LimitExceededError):
        await store.working.set("one-more", b"")
    await store.working.set("k0", b"overwrite fits")


async def test_expired_keys_never_listed_and_cleanup_counts_them(store):
    await store.working.set("a", b"1", ttl_ms=10)
    await store.working.set("b", b"2", ttl_ms=1_000)
    store.clock.advance(10)
    assert [e.key for e in await store.working.entries()] == ["b"]
    assert await store.working.entry_count() == 1
    assert await store.working.usage() == (len("b") + len(b"2"), 1)  # bytes and keys, live only
    assert await store.working.cleanup_expired() == 1
    assert await store.working.cleanup_expired() == 0


async def test_prefix_is_literal(store):
    for key in ["a%b", "axb", "a_b", "a\\b", "ab"]:
        await store.working.set(key, b"v")
    assert [e.key for e in await store.working.entries(prefix="a%")] == ["a%b"]
    assert [e.key for e in await store.working.entries(prefix="a_")] == ["a_b"]
    assert [e.key for e in await store.working.entries(prefix="a\\")] == ["a\\b"]
    assert len(await store.working.entries(limit=2)) == 2


async def test_incr_append_expire_touch(store):
    assert await store.working.incr("n") == 1
    assert await store.working.incr("n", 41) == 42
    assert await store.working.get("n") == b"42"
    await store.working.set("s", b"text")
    with pytest.raises(InvalidInputError):
        await store.working.incr("s")
    assert await store.working.append("s", b"!") == 5
    await store.working.set("e", b"v", ttl_ms=10_000)
    store.clock.advance(5_000)
    assert await store.working.touch("e") is True
    assert await store.working.ttl_ms("e") == 10_000
    assert await store.working.expire("e", 50) is True
    assert await store.working.ttl_ms("e") == 50
    assert await store.working.expire("e", 0) is True
    assert await store.working.exists("e") is False
    assert await store.working.delete("s") is True
    assert await store.working.delete("s") is False
    assert await store.working.clear() == 1


async def test_agents_are_isolated(store):
    other = store.for_agent("someone-else")
    await store.working.set("k", b"mine")
    await store.core.set_block("human", "mine")
    await store.archival.remember("mine", "note")
    assert await other.working.get("k") is None
    assert await other.core.blocks() == []
    assert await other.archival.count() == 0
    assert await other.archival.search("mine") == []
