"""What only Postgres promises: errors that hide the password, writers serialised across
connections, a change feed across connections, migrations that race safely."""

import asyncio
import json
import logging
import struct
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from umi_store import (ChangeKind, SimClock, StorageError,
                       StoreUnavailableError, Tier, open_store)
from umi_store.backends.postgres import (CHANGE_FEED_PAYLOAD_BYTES_MAX, MIGRATION_VERSIONS,
                                         change_payloads, storage_error)
from umi_store.models import ChangeEvent

from .conftest import postgres_url, wipe_postgres

PASSWORD = "s3cr3t-Pa55word"
FEED_WAIT_SECS = 1.0


@pytest.fixture
async def pg_url():
    url = postgres_url()
    await wipe_postgres(url)
    return url


def _with(url: str, *, password: str | None = None, database: str | None = None,
          port: int | None = None, query: str | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@" if password else f"{user}@"
    netloc += f"{host}:{port or parts.port or 5432}"
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query if query is None else query, ""))


def _chain(exc: BaseException) -> list[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


async def _refusing_server() -> asyncio.Server:
    """A server that speaks just enough of the Postgres protocol to refuse a password."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if code == 80877103:  # SSLRequest: no TLS here, then the real startup message
            writer.write(b"N")
            length, _ = struct.unpack("!ii", await reader.readexactly(8))
        await reader.readexactly(length - 8)
        writer.write(b"R" + struct.pack("!ii", 8, 3))  # ask for a cleartext password
        await reader.readexactly(1)
        (length,) = struct.unpack("!i", await reader.readexactly(4))
        assert (await reader.readexactly(length - 4)).rstrip(b"\0") == PASSWORD.encode()
        fields = b"SFATAL\0C28P01\0Mpassword authentication failed for user \"postgres\"\0\0"
        writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _terminate_other_sessions(url: str) -> None:
    """What a server restart does to every open connection of the test database."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def _open_fails(url: str) -> StoreUnavailableError:
    with pytest.raises(StoreUnavailableError) as caught:
        async with open_store(url):
            pass
    return caught.value


async def _assert_password_hidden(url: str, expected_reason: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    error = await _open_fails(url)
    assert expected_reason in str(error)
    assert ":***@" in str(error)
    for exc in _chain(error):
        assert PASSWORD not in str(exc) and PASSWORD not in repr(exc)
    assert PASSWORD not in caplog.text


async def test_unreachable_server_hides_the_password(caplog):
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/umi"
    await _assert_password_hidden(url, "unreachable", caplog)


async def test_wrong_password_hides_the_password(caplog):
    server = await _refusing_server()
    port = server.sockets[0].getsockname()[1]
    async with server:
        await _assert_password_hidden(
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/umi", "authentication failed",
            caplog)


@pytest.mark.postgres
async def test_missing_database_hides_the_password(caplog):
    url = _with(postgres_url(), password=PASSWORD, database="umi_pg_no_such_database")
    await _assert_password_hidden(url, "does not exist", caplog)


@pytest.mark.postgres
async def test_a_write_through_one_connection_reaches_a_subscriber_of_another(pg_url):
    async with open_store(pg_url, agent="feed") as watcher, \
            open_store(pg_url, agent="feed") as writer:
        feed = watcher.changes()
        first = asyncio.ensure_future(anext(feed))
        await asyncio.sleep(0)  # the subscription is in place before anyone writes
        await watcher.working.set("mine", b"1")
        await writer.core.set_block("human", "likes tea")
        second = await asyncio.wait_for(anext(feed), FEED_WAIT_SECS)
        assert ((await first).key, second.key) == ("mine", "human")  # nothing arrives twice
        assert (second.tier, second.kind) == (Tier.CORE, ChangeKind.SET)
        await feed.aclose()


@pytest.mark.postgres
async def test_a_large_batch_of_events_crosses_connections_in_order(pg_url):
    keys = [f"{i:03}" + "k" * 250 for i in range(60)]
    async with open_store(pg_url, agent="feed", clock=SimClock()) as watcher, \
            open_store(pg_url, agent="feed", clock=SimClock()) as writer:
        feed = watcher.changes()
        first = asyncio.ensure_future(anext(feed))
        await asyncio.sleep(0)
        for key in keys:
            await writer.working.set(key, b"v")
        assert await writer.working.clear() == len(keys)  # one transaction, many payloads
        seen = [await asyncio.wait_for(first, FEED_WAIT_SECS)]
        while len(seen) < 2 * len(keys):
            seen.append(await asyncio.wait_for(anext(feed), FEED_WAIT_SECS))
        assert [(e.kind, e.key) for e in seen] == \
            [(ChangeKind.SET, k) for k in keys] + [(ChangeKind.DELETE, k) for k in keys]
        await feed.aclose()


def test_change_payloads_stay_under_the_notify_limit_and_keep_every_event():
    events = [ChangeEvent(Tier.WORKING, ChangeKind.EXPIRED, "\x01é" * 85 + str(i), i)
              for i in range(500)]
    payloads = change_payloads("1:2", "agent", events)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= CHANGE_FEED_PAYLOAD_BYTES_MAX for p in payloads)

    decoded = [tuple(e) for p in payloads for e in json.loads(p)["events"]]
    assert decoded == [(e.tier, e.kind, e.key, e.at_ms, e.actor, e.version) for e in events]


@pytest.mark.postgres
async def test_writers_of_one_agent_are_serialised_across_connections(pg_url):
    async with open_store(pg_url, agent="race") as one, open_store(pg_url, agent="race") as two:
        async def bump(store) -> None:
            for _ in range(25):
                await store.working.incr("n")
        await asyncio.gather(bump(one), bump(two))
        assert await one.working.get("n") == b"50"


@pytest.mark.postgres
async def test_concurrent_opens_migrate_a_fresh_schema_once(pg_url):
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS umi_pg_fresh CASCADE; CREATE SCHEMA umi_pg_fresh")
        url = _with(pg_url, query="search_path=umi_pg_fresh,public")

        async def open_once() -> None:
            async with open_store(url) as store:
                await store.core.set_block("human", "x")
        await asyncio.gather(*(open_once() for _ in range(4)))
        versions = await conn.fetch(
            "SELECT version FROM umi_pg_fresh.schema_version ORDER BY version")
        assert tuple(r["version"] for r in versions) == MIGRATION_VERSIONS
        assert await conn.fetchval("SELECT count(*) FROM umi_pg_fresh.core_blocks") == 1
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS umi_pg_fresh CASCADE")
        await conn.close()


@pytest.mark.postgres
async def test_a_connection_lost_mid_transaction_is_a_transient_storage_error(pg_url):
    async with open_store(pg_url, agent="lost") as store:
        await store.working.set("k", b"kept")
        with pytest.raises(StorageError) as caught:
            async with store.backend.transaction("lost", write=True) as tx:
                await _terminate_other_sessions(pg_url)
                await tx.working_delete("k")
        assert caught.value.transient
        assert await store.working.get("k") == b"kept"  # the pool reconnects


@pytest.mark.parametrize("error, transient", [
    (asyncpg.DeadlockDetectedError("deadlock detected"), True),
    (asyncpg.SerializationError("could not serialize access"), True),
    (asyncpg.TooManyConnectionsError("too many clients"), True),
    (asyncpg.QueryCanceledError("statement timeout"), True),
    (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
    (TimeoutError(), True),
    (asyncpg.InternalClientError("cannot switch to state 11"), True),
    (asyncpg.UniqueViolationError("duplicate key"), False),
])
def test_driver_errors_map_to_storage_errors(error, transient):
    mapped = storage_error(error)
    assert isinstance(mapped, StorageError) and mapped.transient is transient


@pytest.mark.postgres
async def test_the_change_feed_comes_back_after_the_server_drops_it(pg_url):
    async with open_store(pg_url, agent="feed") as watcher:
        feed = watcher.changes()
        waiting = asyncio.ensure_future(anext(feed))
        await asyncio.sleep(0)
        await _terminate_other_sessions(pg_url)
        async with open_store(pg_url, agent="feed") as writer:
            for attempt in range(20):  # changes made while the feed reconnects are lost
                await writer.working.set("k", str(attempt))
                done, _ = await asyncio.wait([waiting], timeout=FEED_WAIT_SECS / 4)
                if done:
                    break
            assert waiting.done() and waiting.result().key == "k"
        await feed.aclose()
