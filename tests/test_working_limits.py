"""Working-memory limits at their exact edges, on every backend: Postgres checks them in
SQL (umi_working_put_if_room) and the other backends in tiers/working.py; both agree."""

import pytest

from umi_store import LimitExceededError
from umi_store.constants import (WORKING_MEMORY_ENTRIES_COUNT_MAX,
                                 WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                                 WORKING_MEMORY_SIZE_BYTES_MAX)

FULL_VALUES_COUNT = WORKING_MEMORY_SIZE_BYTES_MAX // WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX


async def _fill_all_but_the_last_bytes(store) -> int:
    """Fill working memory but for one key's room; return the bytes left for key + value."""
    value = b"v" * (WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX - 2)  # key "kN" + value = 64 KiB
    await store.working.set_many({f"k{i}": value for i in range(FULL_VALUES_COUNT - 1)})
    return WORKING_MEMORY_SIZE_BYTES_MAX - await store.working.used_bytes()


async def test_a_set_that_fills_working_memory_exactly_is_accepted(store):
    left = await _fill_all_but_the_last_bytes(store)
    await store.working.set("last", b"x" * (left - len("last")))
    assert await store.working.used_bytes() == WORKING_MEMORY_SIZE_BYTES_MAX


async def test_a_set_one_byte_over_the_total_is_refused(store):
    left = await _fill_all_but_the_last_bytes(store)
    with pytest.raises(LimitExceededError, match="bytes"):
        await store.working.set("last", b"x" * (left - len("last") + 1))
    assert await store.working.get("last") is None


async def test_overwriting_a_key_counts_only_its_new_size(store):
    left = await _fill_all_but_the_last_bytes(store)
    await store.working.set("last", b"x" * (left - len("last")))
    await store.working.set("last", b"y" * (left - len("last")))
    assert await store.working.get("last") == b"y" * (left - len("last"))


async def test_the_key_count_limit_refuses_one_more_key_but_not_an_overwrite(store):
    await store.working.set_many({f"{i}": b"" for i in range(WORKING_MEMORY_ENTRIES_COUNT_MAX)})
    with pytest.raises(LimitExceededError, match="keys"):
        await store.working.set("one-more", b"")
    await store.working.set("0", b"overwritten")
    assert await store.working.entry_count() == WORKING_MEMORY_ENTRIES_COUNT_MAX
