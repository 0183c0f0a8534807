"""Working memory: a session key-value store whose keys expire by TTL (SPEC §2.2).

A key is live while expires_at_ms > now. Expired keys are never returned (lazy expiry)
and are removed by cleanup_expired, or by a write that needs their room (active expiry),
which emits an `expired` event. set() resets the TTL; incr() and append() keep it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from ..backends.base import Backend, Tx
from ..backends.shortcuts import WorkingDelete, WorkingPutMany, WorkingRemove, WorkingRenew
from ..constants import (WORKING_MEMORY_ENTRIES_COUNT_MAX, WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                         WORKING_MEMORY_KEY_BYTES_MAX, WORKING_MEMORY_SIZE_BYTES_MAX,
                         WORKING_MEMORY_TTL_SECS_DEFAULT, WORKING_MEMORY_TTL_SECS_MAX)
from ..errors import InvalidInputError, LimitExceededError
from ..models import ChangeKind, Tier, WorkingEntry, checked_text
from ..validation import bytes_argument, text_argument, whole_number_argument
from .context import TierContext
from .history import (EXPIRY_ACTOR, HISTORY_LIMITS, entry_record, record_change, record_entries,
                      record_entry, stamp)

WORKING_MEMORY_TTL_MS_DEFAULT = WORKING_MEMORY_TTL_SECS_DEFAULT * 1000
WORKING_MEMORY_TTL_MS_MAX = WORKING_MEMORY_TTL_SECS_MAX * 1000


# What incr accepts, as Redis does: an optional minus and ASCII digits, nothing else
# (no spaces, plus sign or underscores, which Python's int() would let through).
_DECIMAL_INTEGER = re.compile(rb"-?[0-9]+")


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError("a working-memory key must be non-empty text")
    if len(key.encode()) > WORKING_MEMORY_KEY_BYTES_MAX:
        raise LimitExceededError(f"key is {len(key.encode())} bytes; the limit is "
                                 f"{WORKING_MEMORY_KEY_BYTES_MAX}")
    return checked_text(key, "a working-memory key")


def _checked_value(value: bytes | str, name: str = "value") -> bytes:
    value = bytes_argument(value, name)
    if len(value) > WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX:
        raise LimitExceededError(f"value is {len(value)} bytes; the limit is "
                                 f"{WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX}")
    return value


def _checked_ttl(ttl_ms: int) -> int:
    ttl_ms = whole_number_argument(ttl_ms, "ttl_ms")
    if ttl_ms > WORKING_MEMORY_TTL_MS_MAX:
        raise LimitExceededError(f"ttl is {ttl_ms} ms; the limit is {WORKING_MEMORY_TTL_MS_MAX} "
                                 "(7 days)")
    return ttl_ms


class _Room:
    """Working-memory totals as a sequence of puts sees them: bytes and keys stored, and
    the recorded size of the keys about to be written (a put replaces its key's bytes)."""

    def __init__(self, used_bytes: int, count: int, sizes: dict[str, int]) -> None:
        self.used_bytes = used_bytes
        self.count = count
        self.sizes = sizes

    def refusal(self, entries: list[WorkingEntry]) -> str | None:
        """Why putting `entries` one by one would break a limit, or None if it would not."""
        used, count, sizes = self.used_bytes, self.count, dict(self.sizes)
        for entry in entries:
            replaced = sizes.get(entry.key)
            size = entry.size_bytes
            used += size - (replaced or 0)
            count += replaced is None
            if used > WORKING_MEMORY_SIZE_BYTES_MAX:
                return (f"working memory would hold {used} bytes; the limit is "
                        f"{WORKING_MEMORY_SIZE_BYTES_MAX}")
            if count > WORKING_MEMORY_ENTRIES_COUNT_MAX:
                return (f"working memory holds {count - 1} keys; the limit is "
                        f"{WORKING_MEMORY_ENTRIES_COUNT_MAX}")
            sizes[entry.key] = size
        return None


async def _make_room(tx: Tx, ctx: TierContext, room: Callable[[], Awaitable[_Room]],
                     entries: list[WorkingEntry], now: int) -> None:
    """Make sure `entries` fit, reclaiming expired keys first if they would not otherwise
    (each an `expired` event); LimitExceededError if they still do not fit."""
    if (await room()).refusal(entries) is None:
        return
    for key in await tx.working_delete_expired(now, WORKING_MEMORY_ENTRIES_COUNT_MAX):
        await record_change(tx, ctx, Tier.WORKING, ChangeKind.EXPIRED, key, now)
    refusal = (await room()).refusal(entries)
    if refusal is not None:
        raise LimitExceededError(refusal)


class WorkingMemory:
    def __init__(self, context: TierContext) -> None:
        self._context = context

    def _now(self) -> int:
        return self._context.clock.now_ms()

    async def _put(self, tx: Tx, entry: WorkingEntry, now: int) -> WorkingEntry:
        """Store `entry`, reclaiming expired keys first if it would not fit otherwise."""
        async def room() -> _Room:
            return _Room(*await tx.working_usage(None, entry.key), {})
        await _make_room(tx, self._context, room, [entry], now)
        await tx.working_put(entry)
        await record_entry(tx, self._context, entry)
        assert entry.expires_at_ms > now, "a stored entry is live"
        return entry

    async def _live(self, tx: Tx, key: str, now: int) -> WorkingEntry | None:
        entry = await tx.working_get(key)
        return entry if entry is not None and entry.is_live(now) else None

    async def set(self, key: str, value: bytes | str, ttl_ms: int | None = None) -> WorkingEntry:
        """Store `value` under `key` for `ttl_ms` (default 1 h); overwriting resets the TTL."""
        key, value = _checked_key(key), _checked_value(value)
        ttl_ms = WORKING_MEMORY_TTL_MS_DEFAULT if ttl_ms is None else _checked_ttl(ttl_ms)
        if ttl_ms <= 0:
            raise InvalidInputError(f"ttl_ms must be positive, got {ttl_ms}")

        async def body(tx: Tx) -> WorkingEntry:
            now = self._now()
            return await self._put(tx, WorkingEntry(key, value, ttl_ms, now + ttl_ms, now), now)

        async def shortcut(backend: Backend) -> WorkingEntry | None:
            now = self._now()
            entry = WorkingEntry(key, value, ttl_ms, now + ttl_ms, now)
            stored = await backend.working_put_if_room(
                self._context.agent, entry, WORKING_MEMORY_SIZE_BYTES_MAX,
                WORKING_MEMORY_ENTRIES_COUNT_MAX, entry_record(self._context, entry),
                HISTORY_LIMITS)
            return entry if stored else None
        return await self._context.write(body, shortcut)

    async def set_many(self, items: Mapping[str, bytes | str],
                       ttl_ms: int | None = None) -> list[WorkingEntry]:
        """Store every key of `items` for `ttl_ms` (default 1 h), in one transaction: all of
        them or, when any breaks a limit (counted as if set one by one), none."""
        if not isinstance(items, Mapping):
            raise InvalidInputError("items must be a mapping of keys to values")
        checked = [(_checked_key(key), _checked_value(value)) for key, value in items.items()]
        ttl_ms = WORKING_MEMORY_TTL_MS_DEFAULT if ttl_ms is None else _checked_ttl(ttl_ms)
        if ttl_ms <= 0:
            raise InvalidInputError(f"ttl_ms must be positive, got {ttl_ms}")

        if not checked:
            return []

        async def body(tx: Tx) -> list[WorkingEntry]:
            now = self._now()
            entries = [WorkingEntry(key, value, ttl_ms, now + ttl_ms, now)
                       for key, value in checked]

            async def room() -> _Room:
                used, count = await tx.working_usage(None, None)
                return _Room(used, count, await tx.working_sizes(key for key, _ in checked))
            await _make_room(tx, self._context, room, entries, now)
            await tx.working_put_many(entries)
            await record_entries(tx, self._context, entries)
            return entries

        async def shortcut(backend: Backend) -> list[WorkingEntry] | None:
            basis = stamp(self._context)
            now = basis["now_ms"]
            return await backend.shortcut(self._context.agent, WorkingPutMany(
                **basis, entries=[WorkingEntry(key, value, ttl_ms, now + ttl_ms, now)
                                  for key, value in checked],
                size_bytes_max=WORKING_MEMORY_SIZE_BYTES_MAX,
                entries_max=WORKING_MEMORY_ENTRIES_COUNT_MAX))
        return await self._context.write(body, shortcut)

    async def get(self, key: str) -> bytes | None:
        entry = await self.entry(key)
        return None if entry is None else entry.value

    async def entry(self, key: str) -> WorkingEntry | None:
        """The live entry for `key`, with its TTL, or None."""
        key = _checked_key(key)
        return await self._context.read(lambda tx: self._live(tx, key, self._now()))

    async def exists(self, key: str) -> bool:
        return await self.entry(key) is not None

    async def ttl_ms(self, key: str) -> int | None:
        """Milliseconds left, or None for a missing or expired key."""
        key = _checked_key(key)

        async def body(tx: Tx) -> int | None:
            now = self._now()  # one reading: a key live at `now` has at least 1 ms left
            entry = await self._live(tx, key, now)
            return None if entry is None else entry.remaining_ms(now)
        return await self._context.read(body)

    async def delete(self, key: str) -> bool:
        """Remove `key`; whether a live key was there."""
        key = _checked_key(key)

        async def body(tx: Tx) -> bool:
            now = self._now()
            live = await self._live(tx, key, now)
            if await tx.working_delete(key):
                await record_change(tx, self._context, Tier.WORKING,
                                    ChangeKind.DELETE if live else ChangeKind.EXPIRED, key, now)
            return live is not None
        ctx = self._context
        return await ctx.write(body, lambda backend: backend.shortcut(ctx.agent, WorkingDelete(
            **stamp(ctx), key=key, expiry_actor=EXPIRY_ACTOR)))

    async def expire(self, key: str, ttl_ms: int) -> bool:
        """Give a live key a new TTL; zero or less deletes it at once. Whether it was live."""
        key, ttl_ms = _checked_key(key), _checked_ttl(ttl_ms)

        async def body(tx: Tx) -> bool:
            now = self._now()
            entry = await self._live(tx, key, now)
            if entry is None:
                return False
            if ttl_ms <= 0:
                await tx.working_delete(key)
                await record_change(tx, self._context, Tier.WORKING, ChangeKind.DELETE, key, now)
            else:
                renewed = WorkingEntry(key, entry.value, ttl_ms, now + ttl_ms, now)
                await tx.working_put(renewed)
                await record_entry(tx, self._context, renewed)
            return True
        return await self._context.write(body, self._renewal(key, ttl_ms))

    async def touch(self, key: str) -> bool:
        """Restart a live key's TTL from now; whether it was live."""
        key = _checked_key(key)

        async def body(tx: Tx) -> bool:
            now = self._now()
            entry = await self._live(tx, key, now)
            if entry is None:
                return False
            touched = WorkingEntry(key, entry.value, entry.ttl_ms, now + entry.ttl_ms, now)
            await tx.working_put(touched)
            await record_entry(tx, self._context, touched)
            return True
        return await self._context.write(body, self._renewal(key, None))

    def _renewal(self, key: str, ttl_ms: int | None) -> Callable[[Backend],
                                                                 Awaitable[bool | None]]:
        """expire's and touch's shortcut: the key's new TTL (None: its own again)."""
        ctx = self._context
        return lambda backend: backend.shortcut(ctx.agent, WorkingRenew(
            **stamp(ctx), key=key, ttl_ms=ttl_ms))

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add `delta` to a decimal integer value (a missing key counts as 0); keeps the TTL."""
        key, delta = _checked_key(key), whole_number_argument(delta, "delta")

        async def body(tx: Tx) -> int:
            now = self._now()
            entry = await self._live(tx, key, now)
            current = 0
            if entry is not None:
                if not _DECIMAL_INTEGER.fullmatch(entry.value):
                    raise InvalidInputError(f"{key!r} does not hold an integer")
                current = int(entry.value)
            result = current + delta
            await self._put(tx, self._successor(entry, key, str(result).encode(), now), now)
            return result
        return await self._context.write(body)

    async def append(self, key: str, data: bytes | str) -> int:
        """Append to a value (a missing key starts empty); keeps the TTL. Returns the length."""
        key, data = _checked_key(key), _checked_value(data, "data")

        async def body(tx: Tx) -> int:
            now = self._now()
            entry = await self._live(tx, key, now)
            value = _checked_value((entry.value if entry else b"") + data)
            await self._put(tx, self._successor(entry, key, value, now), now)
            return len(value)
        return await self._context.write(body)

    @staticmethod
    def _successor(entry: WorkingEntry | None, key: str, value: bytes, now: int) -> WorkingEntry:
        if entry is None:
            return WorkingEntry(key, value, WORKING_MEMORY_TTL_MS_DEFAULT,
                                now + WORKING_MEMORY_TTL_MS_DEFAULT, now)
        return WorkingEntry(key, value, entry.ttl_ms, entry.expires_at_ms, now)

    async def entries(self, prefix: str = "", limit: int = WORKING_MEMORY_ENTRIES_COUNT_MAX
                      ) -> list[WorkingEntry]:
        """Live entries whose key starts with `prefix` (literal text), in key order."""
        prefix = text_argument(prefix, "prefix")
        if whole_number_argument(limit, "limit") < 0:
            raise InvalidInputError(f"limit must be a whole number ≥ 0, got {limit!r}")
        if "\x00" in prefix:
            return []  # no stored key holds NUL
        return await self._context.read(lambda tx: tx.working_list(prefix, self._now(), limit))

    async def cleanup_expired(self, limit: int = WORKING_MEMORY_ENTRIES_COUNT_MAX) -> int:
        """Remove expired keys (up to `limit`, earliest deadline first), emitting `expired`
        for each; how many were removed."""
        if whole_number_argument(limit, "limit") < 1:
            raise InvalidInputError(f"limit must be a whole number ≥ 1, got {limit!r}")

        async def body(tx: Tx) -> int:
            now = self._now()
            keys = await tx.working_delete_expired(now, limit)
            for key in keys:
                await record_change(tx, self._context, Tier.WORKING, ChangeKind.EXPIRED, key, now)
            return len(keys)
        return await self._context.write(body, self._removal(expired_only=True, limit=limit))

    async def used_bytes(self) -> int:
        return (await self.usage())[0]

    async def entry_count(self) -> int:
        return (await self.usage())[1]

    async def usage(self) -> tuple[int, int]:
        """(bytes, keys) of live working memory, read together in one transaction."""
        return await self._context.read(lambda tx: tx.working_usage(self._now(), None))

    async def clear(self) -> int:
        """Remove every key; how many were removed."""

        async def body(tx: Tx) -> int:
            now = self._now()
            keys = await tx.working_clear()
            for key in keys:
                await record_change(tx, self._context, Tier.WORKING, ChangeKind.DELETE, key, now)
            return len(keys)
        return await self._context.write(body, self._removal(expired_only=False, limit=None))

    def _removal(self, *, expired_only: bool, limit: int | None) -> Callable[
            [Backend], Awaitable[int | None]]:
        """cleanup_expired's and clear's shortcut."""
        ctx = self._context

        def request() -> WorkingRemove:
            basis = stamp(ctx)  # at each attempt: a retry happens later on the clock
            if expired_only:  # every record is an expiry, attributed to the clock
                basis["actor"] = EXPIRY_ACTOR
            return WorkingRemove(**basis, expired_only=expired_only, limit=limit)
        return lambda backend: backend.shortcut(ctx.agent, request())
