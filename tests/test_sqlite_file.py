"""What only a file-backed store promises: data outlives the process, the file is private."""

import os
import stat

from umi_store import SimClock, open_store


async def test_memory_persists_across_close_and_reopen(tmp_path):
    url = f"sqlite:///{tmp_path}/umi.db"
    clock = SimClock()
    async with open_store(url, agent="a", clock=clock) as store:
        await store.core.set_block("human", "likes tea", label="profile")
        await store.working.set("k", b"v", ttl_ms=60_000)
        entity = await store.archival.remember("Ada runs payments", "person", name="Ada")
    async with open_store(url, agent="a", clock=clock) as store:
        assert (await store.core.get_block("human")).label == "profile"
        assert await store.working.get("k") == b"v"
        assert (await store.archival.search("PAYMENTS"))[0].id == entity.id


async def test_database_file_is_created_private(tmp_path):
    async with open_store(f"sqlite:///{tmp_path}/umi.db"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "umi.db").st_mode) == 0o600
