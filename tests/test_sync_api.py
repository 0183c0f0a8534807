"""umi_store.sync: the conformance suite's cases, run unchanged through the sync API on every
backend, plus what only the sync API promises (no loop needed; works under a running loop).

The conformance tests await their store; here `store` hands them a thin awaitable face over
a SyncStore, so every call they make goes through the sync wrapper and its private loop.
"""

import asyncio
import inspect
import threading
from contextlib import closing

import pytest

from tests.conftest import store_url
from tests.test_archival_conformance import *  # noqa: F403 (the cases, run through sync)
from tests.test_core_conformance import *  # noqa: F403
from tests.test_working_conformance import *  # noqa: F403
from umi_store import InvalidInputError, SimClock
from umi_store.sync import SyncStore, open_store

# Bulk cases (10 000 writes) test the backend's limits, not the wrapper: the async run has them.
del test_entry_count_limit, test_search_finds_old_matches_behind_many_newer_entities  # noqa: F821


class _Awaitable:
    """Awaitable methods over a sync object: what the conformance tests expect to call."""

    def __init__(self, sync_object: object) -> None:
        self._sync = sync_object

    def __getattr__(self, name: str):
        method = getattr(self._sync, name)

        async def call(*args, **kwargs):
            return method(*args, **kwargs)
        return call


class _AwaitableStore:
    def __init__(self, sync_store: SyncStore) -> None:
        self.sync = sync_store
        self.core = _Awaitable(sync_store.core)
        self.working = _Awaitable(sync_store.working)
        self.archival = _Awaitable(sync_store.archival)
        self.clock = sync_store.clock

    def for_agent(self, agent: str) -> "_AwaitableStore":
        return _AwaitableStore(self.sync.for_agent(agent))


@pytest.fixture
def store(backend_name, tmp_path):
    with open_store(store_url(backend_name, tmp_path), agent="tester",
                    clock=SimClock()) as opened:
        yield _AwaitableStore(opened)


@pytest.fixture
def sync_store(backend_name, tmp_path):
    with open_store(store_url(backend_name, tmp_path), agent="tester",
                    clock=SimClock()) as opened:
        yield opened


def test_sync_methods_keep_the_async_signature_and_docs(sync_store):
    from umi_store.tiers import WorkingMemory
    assert inspect.signature(sync_store.working.set) == \
        inspect.signature(WorkingMemory.set).replace(parameters=list(
            inspect.signature(WorkingMemory.set).parameters.values())[1:])
    assert sync_store.working.set.__doc__ == WorkingMemory.set.__doc__
    assert not inspect.iscoroutinefunction(sync_store.working.set)


def test_sync_store_returns_values_not_coroutines(sync_store):
    block = sync_store.core.set_block("human", "Ada", label="profile")
    assert block.version == 1
    assert sync_store.core.render() == (
        '<core_memory>\n<block type="human" label="profile" importance="0.50">\n'
        "Ada\n</block>\n</core_memory>")
    with pytest.raises(InvalidInputError):
        sync_store.core.set_block("diary", "x")


def test_for_agent_shares_the_connection(sync_store):
    other = sync_store.for_agent("other")
    other.working.set("k", b"theirs")
    assert sync_store.working.get("k") is None
    assert other.working.get("k") == b"theirs"
    assert other._target.backend is sync_store._target.backend


async def test_works_while_the_calling_thread_runs_a_loop(tmp_path):
    """As in Jupyter: a loop is running in this thread, and the sync API still answers."""
    assert asyncio.get_running_loop().is_running()
    with open_store(f"sqlite:///{tmp_path}/nb.db", agent="notebook") as store:
        store.working.set("k", b"v")
        assert store.working.get("k") == b"v"


def test_change_feed_yields_changes_made_from_another_thread(sync_store):
    feed = sync_store.changes()
    writer = threading.Timer(0.2, sync_store.working.set, ("k", b"v"))
    writer.start()
    with closing(feed):
        event = next(feed)
        writer.join()
        assert (event.tier, event.kind, event.key) == ("working", "set", "k")


def test_errors_inside_the_block_close_the_store_and_propagate(tmp_path):
    with pytest.raises(ZeroDivisionError), open_store(f"sqlite:///{tmp_path}/e.db") as store:
        store.working.set("k", b"v")
        raise ZeroDivisionError
    with open_store(f"sqlite:///{tmp_path}/e.db") as store:
        assert store.working.get("k") == b"v"


def test_the_type_stub_is_generated_from_the_current_classes():
    """sync.pyi gives type checkers the async methods' signatures; it must not go stale
    (regenerate: python -m umi_store.sync > umi_store/sync.pyi)."""
    from pathlib import Path

    from umi_store import sync
    assert Path(sync.__file__).with_suffix(".pyi").read_text() == sync.stub_text()


def test_a_sync_batch_is_all_or_nothing(sync_store):
    with sync_store.batch() as batch:
        batch.working.set("a", b"1")
        batch.core.set_block("facts", "kept")
    with pytest.raises(ZeroDivisionError), sync_store.batch() as batch:
        batch.working.set("b", b"2")
        raise ZeroDivisionError
    assert sync_store.working.get("a") == b"1" and sync_store.working.get("b") is None


def test_as_actor_and_as_of_stay_synchronous(sync_store):
    before = sync_store.clock.now_ms()
    sync_store.clock.advance(1)
    sync_store.as_actor("person:ada").core.set_block("human", "likes tea")
    assert sync_store.history("core", "human")[0].actor == "person:ada"
    assert sync_store.as_of(before).core.get_block("human") is None
