"""SPEC §2.1, run on every backend."""

import pytest

from umi_store import BlockType, ConflictError, InvalidInputError, LimitExceededError
from umi_store.constants import (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX,
                                 CORE_MEMORY_BLOCK_SIZE_BYTES_MAX, CORE_MEMORY_SIZE_BYTES_MAX)


async def test_block_content_at_limit_is_accepted_one_byte_past_is_refused(store):
    at_limit = "é" * (CORE_MEMORY_BLOCK_SIZE_BYTES_MAX // 2)  # two bytes each
    await store.core.set_block("facts", at_limit)
    with pytest.raises(LimitExceededError):
        await store.core.set_block("facts", at_limit + "x")
    assert (await store.core.get_block("facts")).content == at_limit


async def test_label_limit_counts_utf8_bytes(store):
    await store.core.set_block("human", "x", label="é" * (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX // 2))
    with pytest.raises(LimitExceededError):
        await store.core.set_block("human", "y", label="é" * 32 + "x")
    assert (await store.core.get_block("human")).content == "x"


async def test_total_core_limit_refuses_and_changes_nothing(store):
    half = "a" * CORE_MEMORY_BLOCK_SIZE_BYTES_MAX
    await store.core.set_block("system", half)
    await store.core.set_block("persona", half)
    assert await store.core.used_bytes() == CORE_MEMORY_SIZE_BYTES_MAX
    with pytest.raises(LimitExceededError):
        await store.core.set_block("human", "x")
    assert await store.core.get_block("human") is None
    assert await store.core.available_bytes() == 0
    assert await store.core.utilization() == 1.0


async def test_render_escapes_xml_in_render_order(store):
    await store.core.set_block("scratch", "<b>")
    await store.core.set_block("human", "Prefers short answers & examples.", label='pro"file',
                               importance=0.75)
    assert await store.core.render() == (
        "<core_memory>\n"
        '<block type="human" label="pro&quot;file" importance="0.75">\n'
        "Prefers short answers &amp; examples.\n</block>\n"
        '<block type="scratch" importance="0.50">\n&lt;b&gt;\n</block>\n'
        "</core_memory>")


async def test_empty_core_renders_empty_element(store):
    assert await store.core.render() == "<core_memory>\n</core_memory>"
    assert await store.core.render_markdown() == "# Core Memory"


async def test_markdown_has_one_section_per_block(store):
    await store.core.set_block("human", "hi", label="profile", importance=0.75)
    assert await store.core.render_markdown() == \
        "# Core Memory\n\n## Human - profile (importance: 0.75)\n\nhi"


async def test_version_grows_and_stale_edit_conflicts(store):
    first = await store.core.set_block("goals", "a")
    second = await store.core.set_block("goals", "b")
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(ConflictError):
        await store.core.set_block("goals", "mine", if_version=1)
    assert (await store.core.get_block("goals")).content == "b"
    third = await store.core.set_block("goals", "mine", if_version=2)
    assert third.version == 3 and third.created_at == first.created_at


async def test_unknown_block_type_and_bad_importance_are_invalid_input(store):
    with pytest.raises(InvalidInputError):
        await store.core.set_block("diary", "x")
    with pytest.raises(InvalidInputError):
        await store.core.set_block(BlockType.FACTS, "x", importance=1.5)
    assert await store.core.blocks() == []


async def test_delete_and_set_importance(store):
    await store.core.set_block("facts", "x")
    block = await store.core.set_importance("facts", 0.9)
    assert block.importance == 0.9 and block.version == 2
    assert await store.core.delete_block("facts") is True
    assert await store.core.delete_block("facts") is False
