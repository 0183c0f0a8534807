"""What the simulation checks of history after each step.

Each key a step reads back (or, on a full check, each key changed since the step began)
must have, as its newest version, the state the store now holds, the one the reference
model agreed with: a `set` holding the block's content, the key's value and deadline, the
entity's name and content; a `delete` or `expired` where the row is gone; attributed to
the store's actor (an expiry to the clock). History is written in the same transaction
as the change, so a rolled-back or half-applied write shows here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..models import (
    BlockType,
    ChangeKind,
    Entity,
    HistoryRecord,
    MemoryBlock,
    Tier,
    WorkingEntry,
)
from ..tiers.history import EXPIRY_ACTOR


def _row_problem(record: HistoryRecord, row: object, now_ms: int) -> str | None:
    """How the stored row disagrees with the key's newest version, or None."""
    meta = record.metadata
    if record.kind is not ChangeKind.SET:
        return None if row is None else f"the row is still stored after its {record.kind}"
    if record.tier is Tier.WORKING and meta["expires_at_ms"] <= now_ms:
        return None if row is None else "a lapsed key is still listed"
    if isinstance(row, MemoryBlock):
        same = (row.content, row.version) == (record.content, meta["block_version"])
    elif isinstance(row, WorkingEntry):
        same = (row.value, row.expires_at_ms) == (record.value, meta["expires_at_ms"])
    elif isinstance(row, Entity):
        same = (row.content, row.name) == (record.content, meta["name"])
    else:
        return "the row is gone but its newest version is a set"
    return None if same else f"the row differs from version {record.version}"


async def history_problem(store: Any, rows: Mapping[Tier, Mapping[Any, object]],
                          keys: Iterable[tuple[Tier, str]] | None, since_ms: int, now_ms: int,
                          is_damaged: Callable[[object], bool]) -> str | None:
    """The first way history disagrees with `rows` (what the store holds, by tier) for
    `keys` (those read back), or, when None, for every key changed at or after `since_ms`;
    None when it agrees."""
    if keys is None:
        keys = dict.fromkeys((r.tier, r.key) for r in await store.history_since(since_ms - 1))
    for tier, key in keys:
        newest = await store.history(tier, key, limit=1)
        row = rows[tier].get(BlockType(key) if tier is Tier.CORE else key)
        if not newest:
            if row is None:
                continue
            return f"{tier} {key!r} is stored but has no history"
        record = newest[0]
        wanted = EXPIRY_ACTOR if record.kind is ChangeKind.EXPIRED else store.actor
        if record.actor != wanted:
            return f"{tier} {key!r} v{record.version}: actor {record.actor!r}, not {wanted!r}"
        problem = None if is_damaged(row) else _row_problem(record, row, now_ms)
        if problem is not None:
            return f"{tier} {key!r} v{record.version} ({record.kind}): {problem}"
    return None
