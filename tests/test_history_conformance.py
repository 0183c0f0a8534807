"""History on every backend: actors, versions, retention, restore and as-of views.

Every committed change of a core block, working key or entity is a version, written in
the transaction of the change; the same rules on sim, SQLite and Postgres.
"""

import pytest

from umi_store import (
    ChangeKind,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    ReadOnlyError,
    SimClock,
    Tier,
    open_store,
)
from umi_store.tiers import history as history_module
from umi_store.tiers import working as working_module

from .conftest import store_url


def small_limits(monkeypatch, versions: int, bytes_max: int, bytes_pruned: int) -> None:
    limits = (versions, bytes_max, bytes_pruned)
    monkeypatch.setattr(history_module, "HISTORY_LIMITS", limits)
    monkeypatch.setattr(working_module, "HISTORY_LIMITS", limits)


def summary(records) -> list[tuple]:
    return [(r.version, r.kind.value, r.actor, r.content) for r in records]


async def test_writes_are_attributed_to_the_agent_unless_an_actor_is_named(store):
    await store.core.set_block("human", "likes tea")
    await store.as_actor("person:ada").core.set_block("human", "likes coffee")
    assert summary(await store.history("core", "human")) == [
        (2, "set", "person:ada", "likes coffee"), (1, "set", "agent:tester", "likes tea")]


async def test_open_store_takes_a_default_actor(backend_name, tmp_path):
    async with open_store(store_url(backend_name, tmp_path), agent="tester", clock=SimClock(),
                          actor="tool:importer") as store:
        await store.working.set("k", b"v")
        assert (await store.history("working", "k"))[0].actor == "tool:importer"


async def test_an_actor_must_be_text_within_its_limit(store):
    for bad in ("", "   ", "x" * 129, 5):
        with pytest.raises(InvalidInputError):
            store.as_actor(bad)


async def test_change_events_carry_actor_and_version(store):
    async with store.backend.changes.subscribe(store.agent) as events:
        await store.working.set("k", b"1")
        await store.as_actor("person:ada").working.set("k", b"2")
        await store.working.delete("k")
        seen = [(e.kind.value, e.actor, e.version) for e in
                [events.get_nowait() for _ in range(events.qsize())]]
    assert seen == [("set", "agent:tester", 1), ("set", "person:ada", 2),
                    ("delete", "agent:tester", 3)]


async def test_core_history_records_sets_and_deletes_newest_first(store):
    await store.core.set_block("persona", "v1", label="me")
    await store.core.set_importance("persona", 0.9)
    await store.core.delete_block("persona")
    records = await store.history(Tier.CORE, "persona")
    assert [(r.version, r.kind) for r in records] == [
        (3, ChangeKind.DELETE), (2, ChangeKind.SET), (1, ChangeKind.SET)]
    assert records[0].value is None
    assert records[1].metadata["importance"] == 0.9 and records[1].metadata["label"] == "me"
    assert [r.version for r in await store.history("core", "persona", limit=1)] == [3]


async def test_working_history_records_ttl_changes_expiry_by_the_clock_and_delete(store):
    await store.working.set("a", b"1", ttl_ms=1_000)
    await store.working.expire("a", 5_000)
    store.clock.advance(6_000)
    assert await store.working.cleanup_expired() == 1
    await store.working.set("a", b"2")
    await store.working.delete("a")
    records = await store.history("working", "a")
    assert [(r.kind.value, r.actor) for r in records] == [
        ("delete", "agent:tester"), ("set", "agent:tester"), ("expired", "clock"),
        ("set", "agent:tester"), ("set", "agent:tester")]
    assert records[3].metadata["ttl_ms"] == 5_000


async def test_entity_history_records_remember_update_and_forget(store):
    entity = await store.archival.remember("Ada runs payments", "person", name="Ada")
    await store.archival.remember("Ada runs payments and billing", "person", name="Ada")
    await store.archival.forget(entity.id)
    records = await store.history("archival", entity.id)
    assert summary(records) == [
        (3, "delete", "agent:tester", None),
        (2, "set", "agent:tester", "Ada runs payments and billing"),
        (1, "set", "agent:tester", "Ada runs payments")]
    assert records[0].metadata["name"] == "Ada"


async def test_a_refused_or_rolled_back_write_leaves_no_history(store):
    await store.core.set_block("human", "a")
    with pytest.raises(ConflictError):
        await store.core.set_block("human", "b", if_version=7)
    with pytest.raises(RuntimeError):
        async with store.batch() as batch:
            await batch.working.set("k", b"v")
            raise RuntimeError("abandon")
    assert [r.version for r in await store.history("core", "human")] == [1]
    assert await store.history("working", "k") == []


async def test_history_since_lists_the_agents_changes_after_a_time_oldest_first(store):
    await store.core.set_block("human", "a")
    start = store.clock.now_ms()
    store.clock.advance(10)
    await store.working.set("k", b"v")
    await store.archival.remember("note", "note", name="n")
    store.clock.advance(10)
    await store.core.set_block("human", "b")
    since = await store.history_since(start)
    assert [(r.tier.value, r.version) for r in since] == [
        ("working", 1), ("archival", 1), ("core", 2)]
    assert await store.for_agent("other").history_since(0) == []


async def test_history_refuses_bad_arguments(store):
    with pytest.raises(InvalidInputError):
        await store.history("nowhere", "k")
    with pytest.raises(InvalidInputError):
        await store.history("core", "nonsense")
    with pytest.raises(InvalidInputError):
        await store.history("working", "k", limit=0)
    with pytest.raises(InvalidInputError):
        await store.history_since("yesterday")


async def test_a_key_keeps_its_newest_versions(store, monkeypatch):
    small_limits(monkeypatch, versions=3, bytes_max=10**9, bytes_pruned=10**9)
    for n in range(6):
        await store.working.set("k", str(n))
    assert summary(await store.history("working", "k")) == [
        (6, "set", "agent:tester", "5"), (5, "set", "agent:tester", "4"),
        (4, "set", "agent:tester", "3")]


async def test_an_agents_history_is_pruned_oldest_first_keeping_each_keys_newest(store,
                                                                                 monkeypatch):
    small_limits(monkeypatch, versions=100, bytes_max=300, bytes_pruned=200)
    for _ in range(8):
        store.clock.advance(1)
        await store.working.set("a", "x" * 20)
        await store.working.set("b", "y" * 20)
    kept = [(r.key, r.version) for r in await store.history_since(0)]
    sizes = sum(r.size_bytes for r in await store.history_since(0))
    assert sizes <= 300
    assert ("a", 8) in kept and ("b", 8) in kept, "a key's newest version is never pruned"
    assert kept == sorted(kept, key=lambda kv: (kv[1], kv[0])), "the oldest went first"
    assert ("a", 1) not in kept


async def test_set_many_keeps_and_prunes_history_as_one_set_per_key_would(store, monkeypatch):
    # Byte prunes fall inside batches, and keys pass their version limit.
    small_limits(monkeypatch, versions=3, bytes_max=400, bytes_pruned=250)
    batched, single = store.for_agent("batched"), store.for_agent("single")
    for round_ in range(4):
        items = {f"k{n}": f"{round_}-{n}" * (1 + n % 7) for n in range(5)}
        await batched.working.set_many(items)
        for key, value in items.items():
            await single.working.set(key, value)
        store.clock.advance(1)
    kept = [(r.key, r.version, r.at_ms, r.content) for r in await batched.history_since(0)]
    assert kept == [(r.key, r.version, r.at_ms, r.content)
                    for r in await single.history_since(0)]
    assert ("k0", 4) in [(key, version) for key, version, *_ in kept], "a key's newest stays"
    assert [r.version for r in await batched.history("working", "k0")] == [4], "pruned"


async def test_restore_writes_an_old_core_version_as_a_new_one(store):
    await store.core.set_block("human", "likes tea", label="Ada", importance=0.7)
    await store.core.set_block("human", "likes coffee", label="", importance=0.2)
    restored = await store.as_actor("person:ada").core.restore("human", 1)
    assert (restored.content, restored.label, restored.importance) == ("likes tea", "Ada", 0.7)
    assert restored.version == 3
    assert summary(await store.history("core", "human"))[0] == (
        3, "set", "person:ada", "likes tea")


async def test_restore_goes_through_the_version_lock(store):
    await store.core.set_block("human", "a")
    await store.core.set_block("human", "b")
    with pytest.raises(ConflictError):
        await store.core.restore("human", 1, if_version=1)
    assert (await store.core.get_block("human")).content == "b"
    assert (await store.core.restore("human", 1, if_version=2)).content == "a"


async def test_restore_refuses_unknown_versions_and_deletes(store):
    await store.core.set_block("human", "a")
    await store.core.delete_block("human")
    with pytest.raises(NotFoundError):
        await store.core.restore("human", 9)
    with pytest.raises(InvalidInputError):
        await store.core.restore("human", 2)
    assert (await store.core.restore("human", 1)).content == "a", "a deleted block comes back"


async def test_restore_still_keeps_the_core_size_limit(store):
    await store.core.set_block("human", "x" * 8_000)
    await store.core.set_block("human", "small")
    for block in ("persona", "facts", "goals"):
        await store.core.set_block(block, "y" * 8_500)
    with pytest.raises(LimitExceededError):
        await store.core.restore("human", 1)
    assert (await store.core.get_block("human")).content == "small"


async def test_a_forgotten_entity_is_listed_and_can_be_restored(store):
    entity = await store.archival.remember("Ada runs payments", "person", name="Ada",
                                           metadata={"team": "pay"})
    await store.archival.forget(entity.id)
    forgotten = await store.archival.forgotten()
    assert [(r.key, r.metadata["name"]) for r in forgotten] == [(entity.id, "Ada")]
    restored = await store.archival.restore(entity.id, forgotten[0].version - 1)
    assert (restored.name, restored.content, dict(restored.metadata)) == (
        "Ada", "Ada runs payments", {"team": "pay"})
    assert await store.archival.get(entity.id) == restored
    assert await store.archival.forgotten() == []
    assert (await store.archival.search("payments"))[0].id == entity.id


async def test_archival_restore_goes_through_the_version_lock(store):
    entity = await store.archival.remember("one", "note", name="n")
    await store.archival.remember("two", "note", name="n")
    with pytest.raises(ConflictError):
        await store.archival.restore(entity.id, 1, if_version=1)
    assert (await store.archival.restore(entity.id, 1, if_version=2)).content == "one"


async def test_as_of_reads_core_working_and_archival_as_they_stood(store):
    await store.core.set_block("human", "likes tea")
    await store.working.set("k", b"old", ttl_ms=10_000)
    entity = await store.archival.remember("Ada runs payments", "person", name="Ada")
    then = store.clock.now_ms()
    store.clock.advance(4_000)
    await store.core.set_block("human", "likes coffee")
    await store.working.set("k", b"new")
    await store.archival.remember("Ada runs billing", "person", name="Ada")
    await store.archival.remember("Bob", "person", name="Bob")
    past = store.as_of(then + 1_000)
    assert (await past.core.get_block("human")).content == "likes tea"
    assert "likes tea" in await past.core.render()
    assert await past.working.get("k") == b"old"
    assert await past.working.ttl_ms("k") == 9_000, "the TTL it had left then"
    assert [e.content for e in await past.archival.search("payments")] == ["Ada runs payments"]
    assert await past.archival.search("billing") == []
    assert await past.archival.count() == 1
    assert (await past.archival.get(entity.id)).content == "Ada runs payments"
    before = store.as_of(then - 1_000_000)
    assert await before.core.blocks() == [] and await before.working.entries() == []


async def test_as_of_shows_deleted_things_before_and_lapsed_keys_after(store):
    await store.working.set("brief", b"v", ttl_ms=1_000)
    await store.core.set_block("goals", "ship")
    then = store.clock.now_ms()
    store.clock.advance(100)
    await store.core.delete_block("goals")
    assert (await store.as_of(then).core.get_block("goals")).content == "ship"
    assert await store.as_of(then + 100).core.get_block("goals") is None
    assert await store.as_of(then + 999).working.get("brief") == b"v"
    assert await store.as_of(then + 1_000).working.get("brief") is None


async def test_writes_through_an_as_of_view_raise_and_change_nothing(store):
    await store.core.set_block("human", "a")
    past = store.as_of(store.clock.now_ms())
    for write in (lambda: past.core.set_block("human", "b"),
                  lambda: past.working.set("k", b"v"),
                  lambda: past.archival.remember("x", "note"),
                  lambda: past.core.restore("human", 1),
                  lambda: past.working.cleanup_expired()):
        with pytest.raises(ReadOnlyError):
            await write()
    with pytest.raises(ReadOnlyError):
        async with past.batch():
            pass
    assert (await store.core.get_block("human")).content == "a"
    assert await store.working.get("k") is None
