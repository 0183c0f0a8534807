"""A Backend wrapper that injects the fault catalogue of SPEC §3 into any backend.

Before each storage call the injector decides what fires; each type has its own effect:

- storage_write_fail, storage_read_fail, storage_delete_fail, storage_disk_full,
  resource_oom: a StorageError before the call, not transient (a retry would meet the
  same failure: a full disk or an exhausted heap does not clear in a backoff).
- db_connection_fail, db_query_timeout, db_deadlock, db_serialization_fail,
  db_pool_exhausted, network_timeout, network_connection_refused, network_dns_fail,
  network_reset, resource_file_limit: a transient StorageError before the call (file
  descriptors come back as other connections close, like a pool slot).
- network_partial_write: the statement runs, then the connection breaks (transient); the
  transaction rolls back, so nothing is applied.
- storage_corruption: the write lands, then its stored bytes are altered; the next read
  fails its checksum and raises CorruptionError.
- storage_latency, resource_cpu_throttle, time_leap_second, time_clock_skew: the store
  clock moves forward (a fixed amount, or a skew drawn from the injector's rng).
- crash_before_commit: decided when a transaction that changed something ends (the
  operation a filter sees is "commit:" and the changing calls, e.g.
  "commit:working_put"); raises and the transaction rolls back. crash_after_commit: the
  transaction commits (its events are published), then raises with `outcome_unknown`:
  never retried.

A raise inside a transaction aborts the whole transaction; retries happen a level up, in
TierContext, around the whole transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ..dst.clock import Clock
from ..dst.faults import FaultInjector, FaultType, OpKind
from ..errors import StorageError
from ..models import AgentSummary, HistoryRecord, Tier, WorkingEntry
from .base import Backend, Tx

T = TypeVar("T")

STORAGE_LATENCY_MS_INJECTED = 250
RESOURCE_CPU_THROTTLE_MS_INJECTED = 500
TIME_LEAP_SECOND_MS = 1_000
TIME_CLOCK_SKEW_MS_MAX = 30_000

_OP_KINDS: dict[str, OpKind] = {
    **dict.fromkeys(["core_get", "core_list", "working_get", "working_list", "working_usage",
                     "working_sizes", "entity_get", "entity_get_many", "entity_list",
                     "entity_count", "entity_search"], OpKind.READ),
    **dict.fromkeys(["core_put", "working_put", "working_put_many", "entity_put",
                     "entity_put_many"], OpKind.WRITE),
    **dict.fromkeys(["core_delete", "working_delete", "working_delete_expired", "working_clear",
                     "entity_delete"], OpKind.DELETE),
}
_FAILURES: dict[FaultType, str] = {
    FaultType.STORAGE_WRITE_FAIL: "write failed",
    FaultType.STORAGE_READ_FAIL: "read failed",
    FaultType.STORAGE_DELETE_FAIL: "delete failed",
    FaultType.STORAGE_DISK_FULL: "no space left on device",
    FaultType.RESOURCE_OOM: "out of memory",
}
_TRANSIENT_FAILURES: dict[FaultType, str] = {
    FaultType.DB_CONNECTION_FAIL: "connection to the database lost",
    FaultType.DB_QUERY_TIMEOUT: "statement timed out",
    FaultType.DB_DEADLOCK: "deadlock detected",
    FaultType.DB_SERIALIZATION_FAIL: "could not serialize access",
    FaultType.DB_POOL_EXHAUSTED: "no free connection in the pool",
    FaultType.NETWORK_TIMEOUT: "network timed out",
    FaultType.NETWORK_CONNECTION_REFUSED: "connection refused",
    FaultType.NETWORK_DNS_FAIL: "host name did not resolve",
    FaultType.NETWORK_RESET: "connection reset by peer",
    FaultType.RESOURCE_FILE_LIMIT: "too many open files",
}
_CLOCK_JUMPS_MS: dict[FaultType, int] = {
    FaultType.STORAGE_LATENCY: STORAGE_LATENCY_MS_INJECTED,
    FaultType.RESOURCE_CPU_THROTTLE: RESOURCE_CPU_THROTTLE_MS_INJECTED,
    FaultType.TIME_LEAP_SECOND: TIME_LEAP_SECOND_MS,
}


def _written_row(name: str, args: tuple) -> tuple[Tier, str] | None:
    """The row a write stored (the first, for a many-row write), which corruption damages."""
    row = args[0]
    if name.endswith("_many"):
        if not row:
            return None
        row = row[0]
    if name == "core_put":
        return Tier.CORE, row.block_type.value
    if name == "working_put":
        return Tier.WORKING, row.key
    return Tier.ARCHIVAL, row.id


def _injected(operation: str, fault: FaultType, what: str, *, transient: bool) -> StorageError:
    return StorageError(f"{operation}: {what} (injected {fault})", transient=transient)


class FaultyTx:
    """Passes every call to the real Tx, after asking the injector what fires."""

    def __init__(self, inner: Tx, injector: FaultInjector, clock: Clock,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._injector = injector
        self._clock = clock
        self._changed_by: list[str] = []
        self.agent = inner.agent
        self._loop = loop  # the clock's owner: a body may run on a storage thread

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `body` at once in the inner transaction, its calls still faulted here."""
        outer = self._inner

        async def faulted(inner: Tx) -> T:
            self._inner = inner
            try:
                return await body(self)
            finally:
                self._inner = outer
        return await outer.run(faulted)

    def emit(self, event: Any) -> None:
        self._inner.emit(event)

    async def corrupt(self, tier: Tier, key: str) -> bool:
        return await self._inner.corrupt(tier, key)

    def commit_fault(self) -> FaultType | None:
        """The crash (if any) that hits the end of this transaction."""
        if not self._changed_by:
            return None
        return self._injector.decide("commit:" + ",".join(self._changed_by), OpKind.COMMIT)

    def _move_clock(self, fault: FaultType) -> None:
        if fault is FaultType.TIME_CLOCK_SKEW:
            self._advance_on_loop(self._injector.rng.randint(1, TIME_CLOCK_SKEW_MS_MAX))
        else:
            self._advance_on_loop(_CLOCK_JUMPS_MS[fault])

    def _advance_on_loop(self, ms: int) -> None:
        """Advance the clock on the event loop's thread, which owns its sleepers, even when
        the body runs on a storage thread (SQLite); the body waits until it has moved."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._clock.advance(ms)
            return
        moved: concurrent.futures.Future[int] = concurrent.futures.Future()

        def advance() -> None:
            try:
                moved.set_result(self._clock.advance(ms))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting body
                moved.set_exception(exc)
        self._loop.call_soon_threadsafe(advance)
        moved.result()

    def _before_call(self, name: str, fault: FaultType) -> None:
        """What `fault` does before the call: raise, or move the clock."""
        if fault in _FAILURES:
            raise _injected(name, fault, _FAILURES[fault], transient=False)
        if fault in _TRANSIENT_FAILURES:
            raise _injected(name, fault, _TRANSIENT_FAILURES[fault], transient=True)
        if fault in _CLOCK_JUMPS_MS or fault is FaultType.TIME_CLOCK_SKEW:
            self._move_clock(fault)

    async def _after_call(self, name: str, fault: FaultType, args: tuple) -> None:
        """What `fault` does once the call ran: break the connection, or damage the row."""
        if fault is FaultType.NETWORK_PARTIAL_WRITE:
            raise _injected(name, fault, "connection broke mid-write", transient=True)
        written = _written_row(name, args) if fault is FaultType.STORAGE_CORRUPTION else None
        if written is not None:
            await self._inner.corrupt(*written)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{type(self).__name__} has no storage operation {name!r}")


def _faulted(name: str, kind: OpKind) -> Callable[..., Awaitable[Any]]:
    """FaultyTx's form of storage operation `name`: ask the injector, then call through.

    Made once per operation at import, not per call."""
    changes = kind is not OpKind.READ

    async def call(self: FaultyTx, *args: Any) -> Any:
        fault = self._injector.decide(name, kind)
        if fault is not None:
            self._before_call(name, fault)
        result = await getattr(self._inner, name)(*args)
        if changes and name not in self._changed_by:
            self._changed_by.append(name)
        if fault is not None:
            await self._after_call(name, fault, args)
        return result
    call.__name__ = call.__qualname__ = name
    return call


def _unfaulted(name: str) -> Callable[..., Awaitable[Any]]:
    """FaultyTx's form of history operation `name`: history rides on the change it records,
    with no fault of its own (so a seed's faults fall where they did before history
    existed). The inner call itself is handed back: no frame of its own to await."""
    def call(self: FaultyTx, *args: Any) -> Awaitable[Any]:
        return getattr(self._inner, name)(*args)
    call.__name__ = call.__qualname__ = name
    return call


for _name, _kind in _OP_KINDS.items():
    setattr(FaultyTx, _name, _faulted(_name, _kind))
for _name in ("history_append", "history_list", "history_get", "history_since",
              "history_newest"):
    setattr(FaultyTx, _name, _unfaulted(_name))


class FaultyBackend:
    """Any backend, with faults from `injector` injected into its transactions."""

    def __init__(self, inner: Backend, injector: FaultInjector, clock: Clock) -> None:
        self._inner = inner
        self._injector = injector
        self._clock = clock
        self.url = inner.url
        self.changes = inner.changes

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    @asynccontextmanager
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[Tx]:
        if self._injector.is_muted:  # as in run(): nothing can fire, so no wrapper
            async with self._inner.transaction(agent, write=write) as unfaulted:
                yield unfaulted
            return
        async with self._inner.transaction(agent, write=write) as inner:
            tx = FaultyTx(inner, self._injector, self._clock, asyncio.get_running_loop())
            yield tx
            crash = _crash_before_commit(tx)
        _crash_after_commit(crash)

    async def working_put_if_room(self, agent: str, entry: WorkingEntry, size_bytes_max: int,
                                  entries_max: int, record: HistoryRecord,
                                  history_limits: tuple[int, int, int]) -> int | None:
        return None  # faults are decided call by call: always the full rule

    async def run(self, agent: str, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        if self._injector.is_muted:  # nothing can fire and nothing is drawn: no wrapper
            return await self._inner.run(agent, body, write=write)
        crash: FaultType | None = None
        loop = asyncio.get_running_loop()

        async def faulted(inner: Tx) -> T:
            nonlocal crash
            tx = FaultyTx(inner, self._injector, self._clock, loop)
            result = await body(tx)
            crash = _crash_before_commit(tx)
            return result
        result = await self._inner.run(agent, faulted, write=write)
        _crash_after_commit(crash)
        return result

    async def agent_summaries(self, now_ms: int) -> list[AgentSummary]:
        """Agents across the store: a read of every agent, outside any agent's transaction."""
        return await self._inner.agent_summaries(now_ms)


def _crash_before_commit(tx: FaultyTx) -> FaultType | None:
    """Decide the crash that ends `tx`; raise at once if it comes before the commit."""
    crash = tx.commit_fault()
    if crash is FaultType.CRASH_BEFORE_COMMIT:
        raise StorageError(f"process crashed before commit (injected {crash})")
    return crash


def _crash_after_commit(crash: FaultType | None) -> None:
    if crash is FaultType.CRASH_AFTER_COMMIT:
        raise StorageError(f"process crashed after commit: the change may be applied "
                           f"(injected {crash})", outcome_unknown=True)
