"""A Backend wrapper that injects the storage_* faults of SPEC §3 into any backend.

Failures raise before the operation touches storage; storage_corruption lets the write
land and then alters its stored bytes, so the next read fails its checksum;
storage_latency moves the store clock. The other catalogue types come with the fault
wrapper's own issue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..dst.clock import Clock, SimClock
from ..dst.faults import FaultInjector, FaultType, OpKind
from ..errors import StorageError
from ..models import Tier
from .base import Backend, Tx

STORAGE_LATENCY_MS_INJECTED = 250

_OP_KINDS: dict[str, OpKind] = {
    **dict.fromkeys(["core_get", "core_list", "working_get", "working_list", "working_usage",
                     "entity_get", "entity_list", "entity_count", "entity_search"], OpKind.READ),
    **dict.fromkeys(["core_put", "working_put", "entity_put"], OpKind.WRITE),
    **dict.fromkeys(["core_delete", "working_delete", "working_delete_expired", "working_clear",
                     "entity_delete"], OpKind.DELETE),
}
_FAILURES = {FaultType.STORAGE_WRITE_FAIL: "write failed", FaultType.STORAGE_READ_FAIL:
             "read failed", FaultType.STORAGE_DELETE_FAIL: "delete failed",
             FaultType.STORAGE_DISK_FULL: "disk full"}


def _written_row(name: str, args: tuple) -> tuple[Tier, str]:
    row = args[0]
    if name == "core_put":
        return Tier.CORE, row.block_type.value
    if name == "working_put":
        return Tier.WORKING, row.key
    return Tier.ARCHIVAL, row.id


class FaultyTx:
    """Passes every call to the real Tx, after asking the injector what fires."""

    def __init__(self, inner: Tx, injector: FaultInjector, clock: Clock) -> None:
        self._inner = inner
        self._injector = injector
        self._clock = clock
        self.agent = inner.agent

    def emit(self, event) -> None:
        self._inner.emit(event)

    async def corrupt(self, tier: Tier, key: str) -> bool:
        return await self._inner.corrupt(tier, key)

    def __getattr__(self, name: str):
        kind = _OP_KINDS[name]
        operation = getattr(self._inner, name)

        async def call(*args):
            fault = self._injector.decide(name, kind)
            if fault in _FAILURES:
                raise StorageError(f"{name}: {_FAILURES[fault]} (injected {fault})")
            if fault is FaultType.STORAGE_LATENCY and isinstance(self._clock, SimClock):
                self._clock.advance(STORAGE_LATENCY_MS_INJECTED)
            result = await operation(*args)
            if fault is FaultType.STORAGE_CORRUPTION:
                await self._inner.corrupt(*_written_row(name, args))
            return result
        return call


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
    async def transaction(self, agent: str, *, write: bool) -> AsyncIterator[FaultyTx]:
        async with self._inner.transaction(agent, write=write) as tx:
            yield FaultyTx(tx, self._injector, self._clock)
