"""Room in working memory is counted exactly as keys come and go, on every backend."""

import pytest

from umi_store import LimitExceededError
from umi_store.constants import WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX, WORKING_MEMORY_SIZE_BYTES_MAX

CHUNK = WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX - 2  # plus a 2-byte key = 64 KiB
FULL_COUNT = WORKING_MEMORY_SIZE_BYTES_MAX // (CHUNK + 2)


async def _fill(store) -> None:
    for i in range(FULL_COUNT):
        await store.working.set(f"{i:02}", b"x" * CHUNK)


async def test_room_freed_by_delete_overwrite_append_and_clear_is_usable_at_once(store):
    await _fill(store)
    await store.working.delete("00")
    await store.working.set("zz", b"x" * CHUNK)  # the deleted key's room
    with pytest.raises(LimitExceededError):
        await store.working.set("yy", b"x")
    await store.working.set("01", b"")  # an overwrite frees what it no longer holds
    await store.working.append("01", b"x" * (CHUNK - 1))
    with pytest.raises(LimitExceededError):
        await store.working.append("01", b"xx")
    assert await store.working.used_bytes() == WORKING_MEMORY_SIZE_BYTES_MAX - 1
    assert await store.working.clear() == FULL_COUNT
    await _fill(store)
    assert await store.working.entry_count() == FULL_COUNT


async def test_agents_have_separate_room(store):
    await _fill(store)
    other = store.for_agent("someone-else")
    await other.working.set("k", b"x" * CHUNK)
    assert await other.working.used_bytes() == CHUNK + 1
