"""Batches on every backend: store.batch(), working.set_many, archival.remember_many.

One transaction, one commit, all or nothing; the same limits as one operation at a time
(counted across the batch); change events published only at the commit.
"""

import pytest

from umi_store import ChangeKind, InvalidInputError, LimitExceededError
from umi_store.constants import (CORE_MEMORY_SIZE_BYTES_MAX, WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                                 WORKING_MEMORY_SIZE_BYTES_MAX)
from umi_store.tiers.archival import entity_id

BIG_VALUE = b"x" * (WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX - 16)
BIG_VALUES_THAT_FIT = WORKING_MEMORY_SIZE_BYTES_MAX // (len(BIG_VALUE) + 16)


def drained(queue) -> list[tuple[str, str]]:
    events = []
    while not queue.empty():
        event = queue.get_nowait()
        events.append((event.kind.value, event.key))
    return events


async def test_a_batch_publishes_its_events_only_at_the_commit(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        async with store.batch() as batch:
            await batch.working.set("a", b"1")
            await batch.core.set_block("human", "likes tea")
            await batch.working.delete("a")
            assert drained(events) == [], "nothing is published before the commit"
        assert drained(events) == [("set", "a"), ("set", "human"), ("delete", "a")]
    assert await store.working.get("a") is None
    assert (await store.core.get_block("human")).content == "likes tea"


async def test_a_batch_sees_its_own_writes(store):
    async with store.batch() as batch:
        await batch.working.set("n", b"41")
        assert await batch.working.incr("n") == 42
        entity = await batch.archival.remember("Ada runs payments", "person", name="Ada")
        assert await batch.archival.get(entity.id) == entity
    assert await store.working.get("n") == b"42"


async def test_a_batch_whose_block_raises_keeps_nothing(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        with pytest.raises(RuntimeError):
            async with store.batch() as batch:
                await batch.working.set("a", b"1")
                await batch.archival.remember("Ada runs payments", "person", name="Ada")
                raise RuntimeError("the caller changed its mind")
        assert drained(events) == []
    assert await store.working.get("a") is None
    assert await store.archival.count() == 0


async def test_one_refused_operation_rolls_back_the_whole_batch_even_when_caught(store):
    await store.working.set("kept", b"before")
    async with store.backend.changes.subscribe(store.agent) as events:
        with pytest.raises(LimitExceededError):
            async with store.batch() as batch:
                await batch.working.set("kept", b"changed")
                with pytest.raises(LimitExceededError):
                    await batch.working.set_many({f"big{i}": BIG_VALUE
                                                  for i in range(BIG_VALUES_THAT_FIT + 1)})
                with pytest.raises(InvalidInputError, match="already failed"):
                    await batch.working.set("later", b"1")
        assert drained(events) == []
    assert await store.working.get("kept") == b"before"
    assert await store.working.get("later") is None


async def test_bad_input_refused_at_the_door_leaves_the_batch_going(store):
    async with store.batch() as batch:
        await batch.working.set("a", b"1")
        with pytest.raises(LimitExceededError):
            await batch.working.set("huge", BIG_VALUE * 2)  # checked before any storage
        await batch.working.set("b", b"2")
    assert [e.key for e in await store.working.entries()] == ["a", "b"]


async def test_limits_count_every_write_before_them_in_the_batch(store):
    with pytest.raises(LimitExceededError):
        async with store.batch() as batch:
            for i in range(BIG_VALUES_THAT_FIT + 1):
                await batch.working.set(f"big{i}", BIG_VALUE)
    assert await store.working.entry_count() == 0
    async with store.batch() as batch:
        for i in range(BIG_VALUES_THAT_FIT):
            await batch.working.set(f"big{i}", BIG_VALUE)
    assert await store.working.entry_count() == BIG_VALUES_THAT_FIT


async def test_set_many_stores_every_key_with_one_ttl(store):
    entries = await store.working.set_many({"a": b"1", "b": "two"}, ttl_ms=5_000)
    assert [(e.key, e.value, e.ttl_ms) for e in entries] == [("a", b"1", 5_000),
                                                            ("b", b"two", 5_000)]
    assert await store.working.get("b") == b"two"
    assert await store.working.ttl_ms("a") == 5_000
    store.clock.advance(5_000)
    assert await store.working.entries() == []


async def test_set_many_stores_nothing_when_the_total_would_break_the_limit(store):
    await store.working.set("kept", b"before")
    items = {f"big{i}": BIG_VALUE for i in range(BIG_VALUES_THAT_FIT + 1)}
    async with store.backend.changes.subscribe(store.agent) as events:
        with pytest.raises(LimitExceededError, match="bytes"):
            await store.working.set_many({"kept": b"changed", **items})
        assert drained(events) == []
    assert [e.key for e in await store.working.entries()] == ["kept"]
    assert await store.working.get("kept") == b"before"


async def test_set_many_refuses_a_bad_item_before_writing_any(store):
    with pytest.raises(LimitExceededError):
        await store.working.set_many({"a": b"1", "b": b"x" * (WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX + 1)})
    with pytest.raises(InvalidInputError):
        await store.working.set_many({"a": b"1", "": b"2"})
    assert await store.working.entry_count() == 0


async def test_set_many_counts_a_replaced_key_once(store):
    await store.working.set_many({f"big{i}": BIG_VALUE for i in range(BIG_VALUES_THAT_FIT)})
    await store.working.set_many({"big0": b"small", "big1": BIG_VALUE})
    assert await store.working.entry_count() == BIG_VALUES_THAT_FIT


async def test_set_many_reclaims_expired_keys_to_make_room(store):
    await store.working.set_many({f"old{i}": BIG_VALUE for i in range(BIG_VALUES_THAT_FIT)},
                                 ttl_ms=1_000)
    store.clock.advance(1_000)
    async with store.backend.changes.subscribe(store.agent) as events:
        await store.working.set_many({"new0": BIG_VALUE, "new1": BIG_VALUE})
        seen = drained(events)
    assert sorted(key for kind, key in seen if kind == ChangeKind.EXPIRED) == \
        sorted(f"old{i}" for i in range(BIG_VALUES_THAT_FIT))
    assert [key for kind, key in seen if kind == ChangeKind.SET] == ["new0", "new1"]
    assert [e.key for e in await store.working.entries()] == ["new0", "new1"]


async def test_remember_many_stores_what_remember_would(store):
    stored = await store.archival.remember_many([
        ("Ada runs payments\nand more", "person"),
        ("Lumen Textiles, Lagos", "organization", "Lumen", {"city": "Lagos"}),
    ])
    assert [e.name for e in stored] == ["Ada runs payments", "Lumen"]
    assert stored[0].id == entity_id(store.agent, "person", "Ada runs payments")
    assert await store.archival.get(stored[1].id) == stored[1]
    assert dict(stored[1].metadata) == {"city": "Lagos"}
    again = await store.archival.remember_many([("Lumen weaves in Porto", "organization",
                                                 "Lumen")])
    assert again[0].created_at == stored[1].created_at
    assert dict(again[0].metadata) == {"city": "Lagos"}, "no metadata given: the old is kept"
    assert await store.archival.count() == 2


async def test_remember_many_refuses_all_when_one_item_breaks_a_limit(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        with pytest.raises(LimitExceededError):
            await store.archival.remember_many([("fine", "note", "a"),
                                                ("too long a name", "note", "n" * 300)])
        with pytest.raises(InvalidInputError):
            await store.archival.remember_many([("fine", "note", "a"), ("bad", "no-such-type")])
        assert drained(events) == []
    assert await store.archival.count() == 0


async def test_remember_many_publishes_one_event_per_item(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        stored = await store.archival.remember_many([(f"note {i}", "note") for i in range(3)])
        assert drained(events) == [("set", e.id) for e in stored]


async def test_many_writes_inside_a_batch_join_it(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        with pytest.raises(RuntimeError):
            async with store.batch() as batch:
                await batch.working.set_many({"a": b"1", "b": b"2"})
                await batch.archival.remember_many([("note", "note")])
                raise RuntimeError("abandon")
        assert drained(events) == []
    assert await store.working.entry_count() == 0
    assert await store.archival.count() == 0


async def test_core_limit_counts_the_blocks_set_earlier_in_the_batch(store):
    half = "x" * (CORE_MEMORY_SIZE_BYTES_MAX // 2)
    with pytest.raises(LimitExceededError):
        async with store.batch() as batch:
            await batch.core.set_block("human", half)
            await batch.core.set_block("facts", half)
            await batch.core.set_block("goals", "one byte too many")
    assert await store.core.blocks() == []


@pytest.mark.parametrize("items", [None, "text", [("only content",)], ["not a tuple"]])
async def test_remember_many_refuses_what_is_not_items(store, items):
    with pytest.raises(InvalidInputError):
        await store.archival.remember_many(items)


@pytest.mark.parametrize("items", [None, [("k", b"v")], {"k": 1}])
async def test_set_many_refuses_what_is_not_a_mapping_of_values(store, items):
    with pytest.raises(InvalidInputError):
        await store.working.set_many(items)
