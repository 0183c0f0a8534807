"""Export and import (umi_store.portable) on every backend, and the lossless round trip."""

import io
import json

import pytest

from tests.conftest import postgres_url, wipe_postgres
from umi_store import (ConflictError, Entity, InvalidInputError, LimitExceededError, SimClock,
                       open_store)
from umi_store.constants import EMBEDDING_DIMENSIONS_COUNT
from umi_store.portable import ImportFileError, export_memory, import_memory


async def _fill(store) -> None:
    await store.core.set_block("human", "Prefers short answers & <examples>.", label="profile",
                               importance=0.75)
    await store.core.set_block("persona", "Émile, a careful assistant")
    await store.core.set_block("persona", "Émile, a careful assistant, v2")
    await store.working.set("session:topic", b"billing", ttl_ms=60_000)
    await store.working.set("blob", b"\xff\x00\xfe", ttl_ms=3_600_000)
    await store.working.set("gone", b"x", ttl_ms=10)
    await store.archival.remember("Ada runs the payments team", "person", name="Ada",
                                  metadata={"team": "payments", "ünï": "çødé"})
    await store.archival.store(Entity("note", "vector", "has an embedding", id="custom-id",
                                      embedding=[i / 7 for i in range(EMBEDDING_DIMENSIONS_COUNT)]))
    store.clock.advance(20)  # "gone" expires: not exported


async def _exported(store, agents=None) -> str:
    out = io.StringIO()
    await export_memory(store, out, agents or [store.agent])
    return out.getvalue()


def _records(text: str) -> list[str]:
    return text.splitlines()[1:]


@pytest.mark.postgres
async def test_round_trip_sim_sqlite_postgres_is_byte_for_byte(tmp_path):
    url = postgres_url()
    await wipe_postgres(url)
    clock = SimClock()
    async with open_store("sim://?seed=5", agent="ada", clock=clock) as sim, \
            open_store(f"sqlite:///{tmp_path}/rt.db", agent="ada", clock=clock) as sqlite, \
            open_store(url, agent="ada", clock=clock) as postgres:
        await _fill(sim)
        from_sim = await _exported(sim)
        await import_memory(sqlite, io.StringIO(from_sim))
        from_sqlite = await _exported(sqlite)
        await import_memory(postgres, io.StringIO(from_sqlite))
        from_postgres = await _exported(postgres)
    assert len(_records(from_sim)) == 6  # 2 blocks, 2 live keys, 2 entities
    assert _records(from_sim) == _records(from_sqlite) == _records(from_postgres)
    headers = [json.loads(text.splitlines()[0]) for text in (from_sim, from_postgres)]
    assert headers[0]["source"] == "sim://?seed=5" and headers[1]["clock_ms"] == clock.now_ms()


async def test_import_keeps_versions_timestamps_and_values(store, tmp_path):
    async with open_store("sim://?seed=1", agent="tester", clock=SimClock()) as source:
        await _fill(source)
        text = await _exported(source)
        originals = (await source.core.blocks(), await source.archival.list())
    store.clock.advance(100_000)
    summary = await import_memory(store, io.StringIO(text))
    assert summary.written == 6 and summary.agents == ["tester"]
    assert await store.core.blocks() == originals[0]
    assert await store.archival.list() == originals[1]
    assert await store.working.get("blob") == b"\xff\x00\xfe"
    assert await store.core.render() == (
        '<core_memory>\n<block type="persona" importance="0.50">\n'
        "Émile, a careful assistant, v2\n</block>\n"
        '<block type="human" label="profile" importance="0.75">\n'
        "Prefers short answers &amp; &lt;examples&gt;.\n</block>\n</core_memory>")


async def test_ttl_is_kept_relative_to_the_clock(store):
    async with open_store("sim://?seed=1", agent="tester", clock=SimClock()) as source:
        await source.working.set("k", b"v", ttl_ms=60_000)
        source.clock.advance(15_000)
        text = await _exported(source)
    store.clock.advance(3_600_000)  # the target's clock is an hour later: the key is not stale
    await import_memory(store, io.StringIO(text))
    assert await store.working.ttl_ms("k") == 45_000
    store.clock.advance(45_000)
    assert await store.working.get("k") is None


async def test_a_bad_line_names_its_number_and_nothing_is_written(store):
    async with open_store("sim://?seed=1", agent="tester", clock=SimClock()) as source:
        await _fill(source)
        lines = (await _exported(source)).splitlines(keepends=True)
    bad_record = json.loads(lines[4])
    bad_record["ttl_ms"] = "soon"
    lines.insert(5, json.dumps(bad_record) + "\n")
    with pytest.raises(ImportFileError) as refused:
        await import_memory(store, lines)
    assert refused.value.line_number == 6
    assert "'ttl_ms' must be a whole number" in str(refused.value)
    with pytest.raises(ImportFileError, match="line 3: not JSON"):
        await import_memory(store, [lines[0], lines[1], "{oops\n"])
    with pytest.raises(ImportFileError, match="line 1: not a Umi export"):
        await import_memory(store, lines[1:])
    assert await store.core.blocks() == [] and await store.archival.count() == 0
    assert await store.working.entry_count() == 0


async def test_on_conflict_skip_replace_fail(store):
    async with open_store("sim://?seed=1", agent="tester", clock=SimClock()) as source:
        await source.core.set_block("facts", "from the file")
        await source.working.set("k", b"from the file")
        text = await _exported(source)
    await store.core.set_block("facts", "mine")
    with pytest.raises(ConflictError, match="line 2: the facts block"):
        await import_memory(store, io.StringIO(text))
    assert await store.working.get("k") is None  # refused whole
    skipped = await import_memory(store, io.StringIO(text), on_conflict="skip")
    assert (skipped.written, skipped.skipped) == (1, 1)
    assert (await store.core.get_block("facts")).content == "mine"
    replaced = await import_memory(store, io.StringIO(text), on_conflict="replace")
    assert (replaced.replaced, replaced.written) == (2, 0)
    assert (await store.core.get_block("facts")).content == "from the file"
    with pytest.raises(InvalidInputError, match="on-conflict"):
        await import_memory(store, io.StringIO(text), on_conflict="merge")


async def test_import_into_another_agent_moves_derived_ids(store):
    async with open_store("sim://?seed=1", agent="alice", clock=SimClock()) as source:
        await source.archival.remember("Ada runs payments", "person", name="Ada")
        text = await _exported(source)
    await import_memory(store, io.StringIO(text), agent="bob")
    bob = store.for_agent("bob")
    [imported] = await bob.archival.list()
    again = await bob.archival.remember("Ada runs payments and billing", "person", name="Ada")
    assert again.id == imported.id and await bob.archival.count() == 1
    assert await store.for_agent("alice").archival.count() == 0


async def test_an_import_over_a_total_limit_is_refused_whole(tmp_path):
    async with open_store("sim://?seed=1", agent="a", clock=SimClock()) as big, \
            open_store("sim://?seed=2", agent="a", clock=SimClock(),
                       core_memory_size_bytes_max=4096) as small:
        await big.core.set_block("system", "x" * 3000)
        await big.core.set_block("persona", "y" * 3000)
        text = await _exported(big)
        with pytest.raises(LimitExceededError, match="core memory would hold 6000 bytes"):
            await import_memory(small, io.StringIO(text))
        assert await small.core.blocks() == []


async def test_export_of_several_agents_imports_each(store):
    await store.core.set_block("facts", "tester's")
    await store.for_agent("other").working.set("k", b"other's")
    text = await _exported(store, ["other", "tester"])
    async with open_store("sim://?seed=9", clock=SimClock()) as target:
        summary = await import_memory(target, io.StringIO(text))
        assert summary.agents == ["other", "tester"]
        assert await target.for_agent("other").working.get("k") == b"other's"
        assert (await target.for_agent("tester").core.get_block("facts")).content == "tester's"


async def test_a_storage_failure_mid_import_leaves_nothing_half_written(backend_name, tmp_path):
    from tests.conftest import store_url
    from umi_store import DeterministicRng, FaultConfig, FaultInjector, StorageError
    async with open_store("sim://?seed=1", agent="tester", clock=SimClock()) as source:
        await _fill(source)
        text = await _exported(source)
    faults = FaultInjector(DeterministicRng(1), [FaultConfig("storage_write_fail", 1.0,
                                                             operation_filter="entity_put")])
    async with open_store(store_url(backend_name, tmp_path), agent="tester", clock=SimClock(),
                          faults=faults) as store:
        with pytest.raises(StorageError, match="injected storage_write_fail"):
            await import_memory(store, io.StringIO(text))  # blocks and keys go in first
        assert await store.core.blocks() == [] and await store.working.entry_count() == 0
