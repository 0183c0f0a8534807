"""What only a file-backed store promises: data outlives the process, the file is private,
and any number of stores on one file, in one process and across processes, lose nothing."""

import asyncio
import os
import signal
import sqlite3
import stat
import sys

import pytest

from umi_store import ConflictError, SimClock, open_store
from umi_store.backends import sqlite as sqlite_backend
from umi_store.dst import Simulation, SimulationConfig
from umi_store.tiers import history as history_module
from umi_store.tiers import working as working_module

HANG_GUARD_SECS = 30.0  # only so that a stuck child fails the test instead of hanging it
KILLED_WRITER_ACKS_COUNT = 20  # writes the child acknowledges before it is killed mid-run

# Sets each key given on the command line, in order; prints a key once its write returned.
CHILD_WRITER = """\
import asyncio, sys
from umi_store import open_store
async def main():
    async with open_store(sys.argv[1], agent="a") as store:
        block = await store.core.get_block("facts")
        await store.core.set_block("facts", "from the child",
                                   if_version=0 if block is None else block.version)
        for key in sys.argv[2:]:
            await store.working.set(key, b"child")
            print(key, flush=True)
asyncio.run(main())
"""

# Writes keys without end, printing each once acknowledged, until it is killed.
ENDLESS_WRITER = """\
import asyncio, sys
from umi_store import open_store
async def main():
    async with open_store(sys.argv[1], agent="a") as store:
        step = 0
        while True:
            await store.working.set(f"child{step}", b"x" * 512)
            await store.archival.remember(f"note {step}", "note")
            print(f"child{step}", flush=True)
            step += 1
asyncio.run(main())
"""


async def run_child(url: str, *keys: str) -> list[str]:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD_WRITER, url, *keys,
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(child.communicate(), HANG_GUARD_SECS)
    assert child.returncode == 0
    return out.decode().split()


def keys_in_file(path) -> set[str]:
    """The working keys a fresh connection finds in the file: what really reached it."""
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM working")}


def journal_mode(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]


def file_mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


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
    async with open_store(f"sqlite:///{tmp_path}/umi.db") as store:
        await store.working.set("k", b"v")
        for name in ("umi.db", "umi.db-wal", "umi.db-shm"):
            assert file_mode(tmp_path / name) == 0o600, name


async def test_opening_an_existing_file_keeps_its_mode(tmp_path):
    async with open_store(f"sqlite:///{tmp_path}/umi.db"):
        pass
    os.chmod(tmp_path / "umi.db", 0o640)
    async with open_store(f"sqlite:///{tmp_path}/umi.db"):
        pass
    assert file_mode(tmp_path / "umi.db") == 0o640


async def test_two_stores_in_one_process_and_a_writer_elsewhere_lose_no_write(tmp_path):
    path = tmp_path / "umi.db"
    url = f"sqlite:///{path}"
    acknowledged: list[str] = []
    async with open_store(url, agent="a") as one:
        await one.core.set_block("human", "one, first")
        async with open_store(url, agent="a") as two:  # a second store on the same file
            for round_ in range(3):
                acknowledged += await run_child(url, f"child{round_}")
                assert (path.parent / "umi.db-wal").exists(), "the WAL stays while stores are open"
                assert (path.parent / "umi.db-shm").exists()
                for name, store in (("one", one), ("two", two)):
                    await store.working.set(f"{name}{round_}", b"x")
                    acknowledged.append(f"{name}{round_}")
                    assert await store.working.get(f"child{round_}") == b"child", \
                        "a store sees the other process's write"
                assert keys_in_file(path) >= set(acknowledged), "every acknowledged write landed"
            facts = await two.core.get_block("facts")
            assert facts.content == "from the child" and facts.version == 3
            with pytest.raises(ConflictError):
                await one.core.set_block("facts", "stale edit", if_version=2)
            await one.core.set_block("facts", "fresh edit", if_version=3)
            assert (await two.core.get_block("facts")).content == "fresh edit"
            assert journal_mode(path) == "wal"
    assert keys_in_file(path) == set(acknowledged)
    assert file_mode(path) == 0o600


async def test_a_workload_on_the_apps_file_leaves_the_apps_store_working(tmp_path):
    """The issue's path: the Simulation pane runs a workload on the file the app has open,
    then another process writes the block the person is editing."""
    path = tmp_path / "umi.db"
    url = f"sqlite:///{path}"
    async with open_store(url, agent="a") as app:
        seen = await app.core.set_block("facts", "the person's draft")
        result = await Simulation(SimulationConfig(3, 100, url=url)).run()
        assert result.ok
        await run_child(url)  # writes the facts block: now at version 2
        with pytest.raises(ConflictError):
            await app.core.set_block("facts", "the person's edit", if_version=seen.version)
        await app.working.set("after-workload", b"kept")
        assert "after-workload" in keys_in_file(path)
        assert (path.parent / "umi.db-wal").exists()


async def test_sigkill_mid_write_with_two_stores_open_in_this_process(tmp_path):
    path = tmp_path / "umi.db"
    url = f"sqlite:///{path}"
    acknowledged: list[str] = []
    async with open_store(url, agent="a") as one, open_store(url, agent="a") as two:
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", ENDLESS_WRITER, url,
                                                     stdout=asyncio.subprocess.PIPE)
        assert child.stdout is not None
        while len(acknowledged) < KILLED_WRITER_ACKS_COUNT:
            line = await asyncio.wait_for(child.stdout.readline(), HANG_GUARD_SECS)
            assert line, "the writer died before it was killed"
            acknowledged.append(line.decode().strip())
            step = len(acknowledged)
            await (one if step % 2 else two).working.set(f"here{step}", b"y")
            acknowledged.append(f"here{step}")
        child.send_signal(signal.SIGKILL)  # most likely inside a write transaction
        await child.wait()
        acknowledged += await run_child(url, "after-kill")
        await one.working.set("one-after", b"z")
        await two.working.set("two-after", b"z")
        acknowledged += ["one-after", "two-after"]
        assert keys_in_file(path) >= set(acknowledged)
        assert await one.working.get("after-kill") == b"child"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert keys_in_file(path) >= set(acknowledged)
    assert journal_mode(path) == "wal"


async def test_a_file_from_before_migration_7_migrates_and_finds_what_it_held(tmp_path, monkeypatch):
    """A file written before the trigram index lost its positions (migration 7) is
    re-indexed as it opens: every entity it held is found, and new ones too."""
    from umi_store.backends import sqlite as sqlite_backend
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = {v: s for v, s in sqlite_backend._MIGRATIONS.items() if v < 7}
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_backend, "_MIGRATIONS", old)
        async with open_store(url, agent="a", clock=SimClock()) as store:
            await store.archival.remember_many(
                [(f"Note {i} about Tea and ÉCLAIRS", "note") for i in range(30)])
            await store.archival.remember("The Straße café", "location")
    async with open_store(url, agent="a", clock=SimClock()) as store:
        await store.archival.remember("a new éclair", "note")
        assert [e.content for e in await store.archival.search("STRASSE")] == \
            ["The Straße café"]
        assert len(await store.archival.search("éclair", limit=100)) == 31
        assert [e.name for e in await store.archival.search("note 17")] == \
            ["Note 17 about Tea and ÉCLAIRS"]
    versions = sqlite3.connect(tmp_path / "old.db").execute(
        "SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions[-1] == (sqlite_backend.SCHEMA_VERSION,)


def schema_4_file(path) -> None:
    """A file as Umi's schema 4 left it: history in one table with a global seq, two
    indexes and a byte-totals row; versions of two agents interleaved."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY)")
        for version in range(1, 5):
            for statement in sqlite_backend._MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for step in range(6):
            agent, version = ("a", "b")[step % 2], step // 2 + 1
            conn.execute("INSERT INTO history (agent, tier, key, version, kind, at_ms, actor, "
                         "value, metadata, size_bytes) VALUES (?, 'working', 'k', ?, 'set', ?, "
                         "'old', ?, '{}', 5)", (agent, version, 1_000 + step, f"v{step}".encode()))


async def test_a_schema_4_file_keeps_its_history_and_goes_on_from_it(tmp_path):
    path = tmp_path / "umi.db"
    schema_4_file(path)
    clock = SimClock(start_ms=2_000)
    async with open_store(f"sqlite:///{path}", agent="a", clock=clock) as store:
        assert [(r.version, r.content) for r in await store.history("working", "k")] == \
            [(3, "v4"), (2, "v2"), (1, "v0")]
        await store.working.set("k", "new")
        assert [r.version for r in await store.history("working", "k")] == [4, 3, 2, 1]
        assert [r.content for r in await store.history_since(0)] == ["v0", "v2", "v4", "new"]
        other = store.for_agent("b")
        assert [r.content for r in await other.history_since(1_002)] == ["v3", "v5"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == \
            sqlite_backend.SCHEMA_VERSION


async def test_two_connections_prune_history_where_one_would(tmp_path, monkeypatch):
    # Each connection keeps the agent's history bytes; a write by the other must show.
    limits = (100, 300, 200)
    monkeypatch.setattr(history_module, "HISTORY_LIMITS", limits)
    monkeypatch.setattr(working_module, "HISTORY_LIMITS", limits)
    url = f"sqlite:///{tmp_path}/umi.db"
    clock = SimClock()
    async with open_store(url, agent="a", clock=clock) as one, \
            open_store(url, agent="a", clock=clock) as two, \
            open_store(f"sqlite:///{tmp_path}/alone.db", agent="a", clock=clock) as alone:
        for step in range(12):
            clock.advance(1)
            writer = (one, two)[step % 3 == 0]
            for store in (writer, alone):
                await store.working.set(f"k{step % 4}", "x" * 20)
        kept = [(r.key, r.version, r.size_bytes) for r in await one.history_since(0)]
        assert kept == [(r.key, r.version, r.size_bytes) for r in await alone.history_since(0)]
        assert sum(size for _, _, size in kept) <= 300
