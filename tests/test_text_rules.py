"""Text rules that hold on every backend, whatever each engine could store itself."""

import pytest

from umi_store import Entity, InvalidInputError


async def test_text_with_a_nul_character_is_invalid_input_and_changes_nothing(store):
    for write in (lambda: store.working.set("a\x00b", b"v"),
                  lambda: store.core.set_block("human", "x\x00y"),
                  lambda: store.core.set_block("human", "ok", label="l\x00"),
                  lambda: store.archival.remember("x\x00y", "note"),
                  lambda: store.archival.store(Entity("note", "n", "c", metadata={"k": "\x00"}))):
        with pytest.raises(InvalidInputError, match="NUL"):
            await write()
    assert await store.working.entry_count() == 0 and await store.archival.count() == 0
    assert await store.core.blocks() == []


async def test_a_nul_in_a_query_or_prefix_finds_nothing(store):
    await store.working.set("key", b"v")
    await store.archival.remember("plain text", "note")
    assert await store.working.entries(prefix="k\x00") == []
    assert await store.archival.search("plain\x00") == []
    await store.working.set("bytes", b"a\x00b")  # values are bytes: NUL is fine there
    assert await store.working.get("bytes") == b"a\x00b"


async def test_incr_reads_only_plain_decimal_integers(store):
    await store.working.set("n", b"-12")
    assert await store.working.incr("n", 2) == -10
    for lenient in (b" 5", b"+5", b"1_0", b"5 "):
        await store.working.set("n", lenient)
        with pytest.raises(InvalidInputError):
            await store.working.incr("n")
        assert await store.working.get("n") == lenient
