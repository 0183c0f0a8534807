"""SPEC §2.3, run on every backend."""

import pytest

from umi_store import Entity, InvalidInputError, LimitExceededError, NotFoundError
from umi_store.constants import (ENTITY_CONTENT_BYTES_MAX, ENTITY_NAME_BYTES_MAX,
                                 ENTITY_NAME_DERIVED_CHARS_MAX, SEARCH_QUERY_BYTES_MAX)


async def test_remembering_same_type_and_name_updates_one_entity(store):
    first = await store.archival.remember("v1", "topic", name="tea")
    store.clock.advance(5)
    second = await store.archival.remember("v2", "topic", name="tea")
    assert first.id == second.id and second.content == "v2"
    assert second.created_at == first.created_at < second.updated_at
    assert await store.archival.count() == 1


async def test_derived_name_is_first_line_cut_at_a_word(store):
    long_line = "The quick brown fox jumps over the lazy dog and keeps running far away"
    entity = await store.archival.remember(f"  {long_line}\nsecond line", "note")
    assert entity.name == "The quick brown fox jumps over the lazy dog and..."
    assert len(entity.name) <= 50
    assert (await store.archival.remember("short\nmore", "note")).name == "short"


async def test_a_first_line_of_up_to_fifty_characters_is_the_whole_name(store):
    at_limit = "Quarterly planning notes for the Lisbon office 26"  # 49
    assert len(at_limit + "Q") == ENTITY_NAME_DERIVED_CHARS_MAX
    for line in (at_limit + "Q", "é" * ENTITY_NAME_DERIVED_CHARS_MAX, "x"):
        entity = await store.archival.remember(f"{line}\nthe body", "note")
        assert entity.name == line
        assert (await store.archival.get(entity.id)).name == line


async def test_a_first_line_one_past_fifty_is_cut_at_a_word(store):
    line = "Quarterly planning notes for the Lisbon office 2026"  # 51
    assert len(line) == ENTITY_NAME_DERIVED_CHARS_MAX + 1
    entity = await store.archival.remember(line, "note")
    assert entity.name == "Quarterly planning notes for the Lisbon office..."
    unbroken = "x" * (ENTITY_NAME_DERIVED_CHARS_MAX + 1)
    cut = (await store.archival.remember(unbroken, "note")).name
    assert cut == "x" * (ENTITY_NAME_DERIVED_CHARS_MAX - 3) + "..."


async def test_search_is_literal_and_case_folded(store):
    texts = ["100% sure", "1000 sure", "snake_case", "snakeXcase", "back\\slash",
             "it's \"quoted\"", "Émile Zola"]
    for text in texts:
        await store.archival.remember(text, "note")
    names = lambda hits: sorted(h.name for h in hits)  # noqa: E731
    assert names(await store.archival.search("0%")) == ["100% sure"]
    assert names(await store.archival.search("e_c")) == ["snake_case"]
    assert names(await store.archival.search("k\\s")) == ["back\\slash"]
    assert names(await store.archival.search("'s \"")) == ["it's \"quoted\""]
    assert names(await store.archival.search("ÉMILE")) == ["Émile Zola"]
    assert names(await store.archival.search("émile zola")) == ["Émile Zola"]
    assert await store.archival.search("") == []


async def test_search_orders_newest_first_then_by_id(store):
    a = await store.archival.remember("apple one", "note")
    b = await store.archival.remember("apple two", "note")
    store.clock.advance(1)
    c = await store.archival.remember("apple three", "note")
    hits = await store.archival.search("apple")
    assert hits[0].id == c.id
    assert [h.id for h in hits[1:]] == sorted([a.id, b.id])
    assert [h.id for h in await store.archival.list()] == [h.id for h in hits]


async def test_search_filters_by_type_and_limit(store):
    for i in range(5):
        await store.archival.remember(f"item {i}", "task")
    await store.archival.remember("item x", "person")
    assert len(await store.archival.search("item", entity_type="person")) == 1
    assert len(await store.archival.search("item", limit=3)) == 3
    with pytest.raises(InvalidInputError):
        await store.archival.search("item", limit=101)
    with pytest.raises(InvalidInputError):
        await store.archival.search("x" * (SEARCH_QUERY_BYTES_MAX + 1))
    assert await store.archival.count("task") == 5
    assert len(await store.archival.list("task", limit=2, offset=4)) == 1


async def test_store_upserts_by_id_and_update_needs_existing(store):
    entity = Entity("project", "Umi", "memory", metadata={"lang": "py"})
    stored = await store.archival.store(entity)
    again = await store.archival.store(Entity("project", "Umi", "more", id=stored.id))
    assert again.id == stored.id and await store.archival.count() == 1
    got = await store.archival.get(stored.id)
    assert got.content == "more"
    with pytest.raises(NotFoundError):
        await store.archival.update(Entity("note", "ghost", "x", id="missing"))
    assert await store.archival.forget(stored.id) is True
    assert await store.archival.forget(stored.id) is False


async def test_entity_fields_round_trip(store):
    embedding = tuple(i / 1536 for i in range(1536))
    stored = await store.archival.store(
        Entity("person", "Ada", "wrote notes", metadata={"role": "engineer"}, embedding=embedding))
    got = await store.archival.get(stored.id)
    assert got == stored
    assert dict(got.metadata) == {"role": "engineer"}
    assert got.embedding == embedding


async def test_entity_limits_and_bad_input(store):
    await store.archival.remember("x", "note", name="n" * ENTITY_NAME_BYTES_MAX)
    with pytest.raises(LimitExceededError):
        await store.archival.remember("x", "note", name="n" * (ENTITY_NAME_BYTES_MAX + 1))
    await store.archival.remember("é" * (ENTITY_CONTENT_BYTES_MAX // 2), "note", name="big")
    with pytest.raises(LimitExceededError):
        await store.archival.remember("é" * (ENTITY_CONTENT_BYTES_MAX // 2) + "x", "note",
                                      name="big")
    assert len((await store.archival.search("big"))[0].content) == ENTITY_CONTENT_BYTES_MAX // 2
    with pytest.raises(InvalidInputError):
        await store.archival.store(Entity("note", "e", "x", embedding=(1.0, 2.0)))
    with pytest.raises(InvalidInputError):
        await store.archival.remember("x", "planet")
    assert await store.archival.count() == 2


async def test_search_finds_old_matches_behind_many_newer_entities(store):
    # More entities than any backend's newest-rows fast path scans, oldest first.
    for i in range(2_100):
        word = "needle" if i < 3 else "hay"
        await store.archival.remember(f"common {word} {i}", "note", name=f"n{i}")
        store.clock.advance(1)
    assert [e.name for e in await store.archival.search("needle")] == ["n2", "n1", "n0"]
    assert [e.name for e in await store.archival.search("Common", limit=3)] == \
        ["n2099", "n2098", "n2097"]
