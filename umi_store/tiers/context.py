"""What every tier needs: the backend, the agent, the clock, and one way to run a transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..backends.base import Backend, Tx
from ..constants import STORAGE_RETRY_COUNT_MAX, STORAGE_RETRY_DELAY_MS_BASE, STORAGE_RETRY_DELAY_MS_MAX
from ..dst.clock import Clock
from ..errors import InvalidInputError, StorageError

T = TypeVar("T")
# Text → embedding (EMBEDDING_DIMENSIONS_COUNT numbers), plain or awaitable.
EmbedHook = Callable[[str], "Sequence[float] | Awaitable[Sequence[float]]"]


def retry_delay_ms(retry: int) -> int:
    """The backoff before retry number `retry` (0-based): exponential, capped."""
    return min(STORAGE_RETRY_DELAY_MS_MAX, STORAGE_RETRY_DELAY_MS_BASE * 2 ** retry)


class OpenBatch:
    """The one transaction of a `store.batch()`: every operation of the batch runs in it.

    An operation that fails may have done part of its work, so the first failure poisons
    the batch: later operations refuse, and the batch rolls back as a whole.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.failure: BaseException | None = None

    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        if self.failure is not None:
            raise InvalidInputError("this batch already failed and will be rolled back; "
                                    f"its first failure: {self.failure}")
        try:
            return await self.tx.run(body)
        except BaseException as exc:
            self.failure = exc
            raise


@dataclass(frozen=True, slots=True)
class TierContext:
    backend: Backend
    agent: str
    clock: Clock
    core_size_bytes_max: int
    actor: str  # who this context's writes are attributed to in history
    batch: OpenBatch | None = None  # inside store.batch(): the transaction every body joins
    embed: EmbedHook | None = None  # open_store(embed=): the embedding of an entity without one

    async def read(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `body` in a read transaction, retried whole on a transient storage error."""
        return await self._run(body, write=False)

    async def write(self, body: Callable[[Tx], Awaitable[T]],
                    shortcut: Callable[[Backend], Awaitable[T | None]] | None = None) -> T:
        """Run `body` in a write transaction, retried whole on a transient storage error.

        Only the whole transaction is retried (a failed statement poisons a Postgres
        transaction), and never an ambiguous outcome: a retry could apply it twice.
        `shortcut`, outside a batch, is tried first: a backend's one-round-trip form of the
        same rule for the common case; None from it means "run the body".
        """
        if shortcut is not None and self.batch is None:
            done = await self._retried(lambda: shortcut(self.backend))
            if done is not None:
                return done
        return await self._run(body, write=True)

    async def _run(self, body: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        if self.batch is not None:  # no retry: the batch's earlier work is in this transaction
            return await self.batch.run(body)
        return await self._retried(lambda: self.backend.run(self.agent, body, write=write))

    async def _retried(self, attempt: Callable[[], Awaitable[T]]) -> T:
        retry = 0
        while True:
            try:
                return await attempt()
            except StorageError as exc:
                if not exc.transient or exc.outcome_unknown or retry >= STORAGE_RETRY_COUNT_MAX:
                    raise
            await self.clock.elapse(retry_delay_ms(retry))
            retry += 1
