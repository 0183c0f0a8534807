"""store.agents() and store.for_agent(), run on every backend."""

from umi_store import AgentSummary


async def test_a_fresh_store_has_no_agents(store):
    assert await store.agents() == []


async def test_agents_lists_counts_per_tier_and_last_change(store):
    await store.core.set_block("human", "Ada")
    await store.working.set("k", b"v", ttl_ms=1_000)
    await store.working.set("short", b"v", ttl_ms=10)
    store.clock.advance(50)
    other = store.for_agent("bob")
    await other.archival.remember("Bob likes tea", "person", name="Bob")
    await other.archival.remember("Bob's project", "project", name="Kettle")
    store.clock.advance(50)
    await store.core.set_block("facts", "later")
    started = store.clock.now_ms() - 100
    assert await store.agents() == [
        AgentSummary("bob", 0, 0, 2, started + 50),
        AgentSummary("tester", 2, 1, 0, started + 100),  # "short" has expired: not counted
    ]


async def test_an_agent_whose_rows_are_all_gone_is_not_listed(store):
    other = store.for_agent("passing")
    await other.working.set("k", b"v")
    await store.core.set_block("human", "stays")
    await other.working.delete("k")
    assert [a.agent for a in await store.agents()] == ["tester"]


async def test_for_agent_is_the_same_connection_seen_as_another_agent(store):
    other = store.for_agent("bob")
    assert other.backend is store.backend and other.clock is store.clock
    await other.core.set_block("human", "Bob's")
    assert await store.core.get_block("human") is None
    assert (await store.for_agent("bob").core.get_block("human")).content == "Bob's"
