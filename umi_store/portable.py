"""Export and import: agents' memory as JSON Lines, to back it up, move it between machines,
or move from the embedded SQLite file to Postgres.

The first line is a header; every other line is one record, a core block, a working key
or an archival entity, each naming its agent:

    {"type":"header","format":"umi-memory","version":1,"source":"sqlite:///umi.db","clock_ms":…,"agents":["default"]}
    {"type":"block","agent":"default","block_type":"human","content":"…","label":null,"importance":0.5,"version":1,"created_at":…,"updated_at":…}
    {"type":"key","agent":"default","key":"session:topic","value":"billing","ttl_ms":60000,"expires_in_ms":42000,"updated_at":…}
    {"type":"entity","agent":"default","id":"…","entity_type":"person","name":"Ada","content":"…","metadata":{},"embedding":null,"created_at":…,"updated_at":…}

Everything is kept as stored: versions, timestamps, ids. A key's TTL is kept relative to
the clock: `expires_in_ms` is what was left at the header's `clock_ms`, and the key gets
that much from the importing store's clock. A value that is not UTF-8 text is written as
`value_base64` instead of `value`. Expired keys are not exported. Writing the same
memory again gives the same record lines, byte for byte, on every backend.

An import reads and validates every line before it writes anything (a bad line is refused
with its line number and the reason), then writes each agent's records in one transaction
(on SQLite in one hop to its thread; each kind of row in one statement).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

from .backends.base import Tx
from .constants import (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX,
                        ENTITY_LIST_COUNT_MAX, WORKING_MEMORY_ENTRIES_COUNT_MAX,
                        WORKING_MEMORY_SIZE_BYTES_MAX)
from .errors import ConflictError, InvalidInputError, LimitExceededError
from .models import (BlockType, ChangeEvent, ChangeKind, Entity, MemoryBlock, Tier,
                     WorkingEntry, checked_text, parse_enum)
from .store import Store, _checked_agent, mask_url
from .tiers.archival import _checked as checked_entity
from .tiers.archival import entity_id
from .tiers.core import _checked_importance as checked_importance
from .tiers.working import _checked_key as checked_key
from .tiers.working import _checked_ttl as checked_ttl
from .tiers.working import _checked_value as checked_value

PORTABLE_FORMAT_NAME = "umi-memory"
PORTABLE_FORMAT_VERSION = 1
EXPORT_ENTITY_PAGE_COUNT = ENTITY_LIST_COUNT_MAX

# progress(done, total): records exported so far of those counted; or bytes read of a file.
Progress = Callable[[int, int], None]


class OnConflict(enum.StrEnum):
    """What an import does with a record whose block, key or entity id is already there."""

    SKIP = "skip"  # keep what is there
    REPLACE = "replace"  # overwrite it with the record
    FAIL = "fail"  # refuse the whole import


class ImportFileError(InvalidInputError):
    """A line of an import file is not a valid record; nothing was written."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExportSummary:
    agents: tuple[str, ...]
    blocks: int = 0
    keys: int = 0
    entities: int = 0

    @property
    def records(self) -> int:
        return self.blocks + self.keys + self.entities


@dataclass(slots=True)
class ImportSummary:
    agents: list[str] = field(default_factory=list)
    written: int = 0
    replaced: int = 0
    skipped: int = 0


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def block_record(agent: str, block: MemoryBlock) -> dict[str, Any]:
    return {"type": "block", "agent": agent, "block_type": block.block_type.value,
            "content": block.content, "label": block.label, "importance": block.importance,
            "version": block.version, "created_at": block.created_at,
            "updated_at": block.updated_at}


def key_record(agent: str, entry: WorkingEntry, now_ms: int) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "key", "agent": agent, "key": entry.key}
    try:
        record["value"] = entry.value.decode()
    except UnicodeDecodeError:
        record["value_base64"] = base64.b64encode(entry.value).decode()
    record.update(ttl_ms=entry.ttl_ms, expires_in_ms=entry.remaining_ms(now_ms),
                  updated_at=entry.updated_at)
    return record


def entity_record(agent: str, entity: Entity) -> dict[str, Any]:
    return {"type": "entity", "agent": agent, "id": entity.id,
            "entity_type": entity.entity_type.value, "name": entity.name,
            "content": entity.content, "metadata": dict(sorted(entity.metadata.items())),
            "embedding": None if entity.embedding is None else list(entity.embedding),
            "created_at": entity.created_at, "updated_at": entity.updated_at}


async def export_memory(store: Store, out: IO[str], agents: Sequence[str],
                        progress: Progress | None = None) -> ExportSummary:
    """Write the memory of `agents` to `out` as JSON Lines, one page of entities at a time."""
    now = store.clock.now_ms()
    out.write(_line({"type": "header", "format": PORTABLE_FORMAT_NAME,
                     "version": PORTABLE_FORMAT_VERSION, "source": mask_url(store.url),
                     "clock_ms": now, "agents": list(agents)}))
    blocks = keys = entities = total = 0
    for agent in agents:
        async with store.backend.transaction(agent, write=False) as tx:
            agent_blocks = await tx.core_list()
            agent_keys = await tx.working_list("", now, WORKING_MEMORY_ENTRIES_COUNT_MAX)
            total += len(agent_blocks) + len(agent_keys) + await tx.entity_count(None)
            out.writelines(_line(block_record(agent, b)) for b in agent_blocks)
            out.writelines(_line(key_record(agent, e, now)) for e in agent_keys)
            blocks, keys = blocks + len(agent_blocks), keys + len(agent_keys)
            offset = 0
            while page := await tx.entity_list(None, EXPORT_ENTITY_PAGE_COUNT, offset):
                out.writelines(_line(entity_record(agent, e)) for e in page)
                offset += len(page)
                if progress is not None:
                    progress(blocks + keys + entities + offset, total)
            entities += offset
        if progress is not None:
            progress(blocks + keys + entities, total)
    return ExportSummary(tuple(agents), blocks, keys, entities)


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One validated record: the row to store, for the agent it is imported into."""

    line_number: int
    agent: str
    row: MemoryBlock | WorkingEntry | Entity  # a key's expires_at_ms holds expires_in_ms


class _Bad(Exception):
    """A record is not valid; the reason, without its line number."""


def _field(record: dict[str, Any], name: str, kind: type | tuple[type, ...],
           *, nullable: bool = False) -> Any:
    if name not in record:
        raise _Bad(f"no {name!r} field")
    value = record[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Bad(f"{name!r} must be {_JSON_NAMES.get(names, names)}, got {value!r:.40}")
    return value


_JSON_NAMES = {"str": "text", "int": "a whole number", "int or float": "a number",
               "dict": "an object", "list": "a list"}


def _timestamps(record: dict[str, Any]) -> tuple[int, int]:
    created, updated = _field(record, "created_at", int), _field(record, "updated_at", int)
    if not 0 <= created <= updated:
        raise _Bad(f"created_at {created} must be ≥ 0 and ≤ updated_at {updated}")
    return created, updated


def _parse_block(record: dict[str, Any]) -> MemoryBlock:
    block_type = parse_enum(BlockType, _field(record, "block_type", str), "block type")
    content = checked_text(_field(record, "content", str), f"{block_type} block content")
    label = _field(record, "label", str, nullable=True)
    if len(content.encode()) > CORE_MEMORY_BLOCK_SIZE_BYTES_MAX:
        raise LimitExceededError(f"{block_type} block is {len(content.encode())} bytes; the "
                                 f"limit is {CORE_MEMORY_BLOCK_SIZE_BYTES_MAX}")
    if label is not None and len(checked_text(label, "a block label").encode()) > \
            CORE_MEMORY_BLOCK_LABEL_BYTES_MAX:
        raise LimitExceededError(f"label is {len(label.encode())} bytes; the limit is "
                                 f"{CORE_MEMORY_BLOCK_LABEL_BYTES_MAX}")
    version = _field(record, "version", int)
    if version < 1:
        raise _Bad(f"version must be ≥ 1, got {version}")
    created, updated = _timestamps(record)
    return MemoryBlock(block_type, content, label or None,
                       checked_importance(_field(record, "importance", (int, float))),
                       version, created, updated)


def _parse_key(record: dict[str, Any]) -> WorkingEntry:
    key = checked_key(_field(record, "key", str))
    if ("value" in record) == ("value_base64" in record):
        raise _Bad("a key record holds one of 'value' or 'value_base64'")
    if "value" in record:
        value = checked_value(_field(record, "value", str))
    else:
        try:
            value = checked_value(base64.b64decode(_field(record, "value_base64", str),
                                                   validate=True))
        except binascii.Error as exc:
            raise _Bad(f"'value_base64' is not base64: {exc}") from None
    ttl_ms = checked_ttl(_field(record, "ttl_ms", int))
    expires_in_ms = _field(record, "expires_in_ms", int)
    if not 0 < expires_in_ms <= ttl_ms:
        raise _Bad(f"expires_in_ms must be 1–ttl_ms ({ttl_ms}), got {expires_in_ms}")
    updated = _field(record, "updated_at", int)
    if updated < 0:
        raise _Bad(f"updated_at must be ≥ 0, got {updated}")
    return WorkingEntry(key, value, ttl_ms, expires_in_ms, updated)


def _parse_entity(record: dict[str, Any], source_agent: str, agent: str) -> Entity:
    embedding = _field(record, "embedding", list, nullable=True)
    if embedding is not None and not all(isinstance(x, (int, float)) and not
                                         isinstance(x, bool) for x in embedding):
        raise _Bad("'embedding' must be a list of numbers")
    created, updated = _timestamps(record)
    entity = checked_entity(Entity(
        _field(record, "entity_type", str), _field(record, "name", str),
        _field(record, "content", str), _field(record, "id", str),
        _field(record, "metadata", dict), embedding, created, updated))
    if not entity.id:
        raise _Bad("an entity needs its id")
    if agent != source_agent and entity.id == entity_id(source_agent, entity.entity_type,
                                                        entity.name):
        # A derived id follows its agent, so remembering (type, name) again finds it.
        entity = replace(entity, id=entity_id(agent, entity.entity_type, entity.name))
    return entity


def _parse_header(line: str) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header" \
            or header.get("format") != PORTABLE_FORMAT_NAME:
        raise ImportFileError(1, f"not a Umi export: the first line is not a "
                                 f"{PORTABLE_FORMAT_NAME!r} header")
    if header.get("version") != PORTABLE_FORMAT_VERSION:
        raise ImportFileError(1, f"format version {header.get('version')!r} is not one this "
                                 f"Umi reads (it reads version {PORTABLE_FORMAT_VERSION})")
    return header


def _parse(line_number: int, line: str, into_agent: str | None,
           agents: dict[str, str]) -> _Parsed:
    """One record; `agents` remembers the agent names already checked."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise _Bad("a record is a JSON object")
        name = _field(record, "agent", str)
        source_agent = agents.get(name) or agents.setdefault(name, _checked_agent(name))
        agent = source_agent if into_agent is None else into_agent
        kind = _field(record, "type", str)
        row: MemoryBlock | WorkingEntry | Entity
        if kind == "block":
            row = _parse_block(record)
        elif kind == "key":
            row = _parse_key(record)
        elif kind == "entity":
            row = _parse_entity(record, source_agent, agent)
        else:
            raise _Bad(f"unknown record type {kind!r}; expected block, key or entity")
    except json.JSONDecodeError as exc:
        raise ImportFileError(line_number, f"not JSON: {exc}") from None
    except (_Bad, InvalidInputError) as exc:
        raise ImportFileError(line_number, str(exc)) from None
    return _Parsed(line_number, agent, row)


def read_import(lines: Iterable[str], agent: str | None = None) -> dict[str, list[_Parsed]]:
    """Validate every line of an export (header first); the records by target agent."""
    into_agent = None if agent is None else _checked_agent(agent)
    by_agent: dict[str, list[_Parsed]] = {}
    checked_agents: dict[str, str] = {}
    line_number = 0
    for line_number, line in enumerate(lines, 1):
        if line_number == 1:
            _parse_header(line)
        elif line.strip():
            parsed = _parse(line_number, line, into_agent, checked_agents)
            by_agent.setdefault(parsed.agent, []).append(parsed)
    if line_number == 0:
        raise ImportFileError(1, "the file is empty; a Umi export starts with its header")
    return by_agent


async def import_memory(store: Store, lines: Iterable[str], *, agent: str | None = None,
                        on_conflict: OnConflict | str = OnConflict.FAIL,
                        progress: Progress | None = None) -> ImportSummary:
    """Import an export: every line is validated first, then each agent's records are
    written in one transaction (all of them or, on any error, none).

    `agent` imports every record into that agent instead of the one it names.
    """
    on_conflict = parse_enum(OnConflict, on_conflict, "on-conflict choice")
    by_agent = read_import(lines, agent)
    summary = ImportSummary()
    total = sum(len(records) for records in by_agent.values())
    for target, records in by_agent.items():
        async def write_all(tx: Tx, records: list[_Parsed] = records) -> None:
            await _write(tx, records, on_conflict, summary, store)
            await _check_totals(tx, store)
        await store.backend.run(target, write_all, write=True)  # SQLite: in one thread hop
        summary.agents.append(target)
        if progress is not None:
            progress(summary.written + summary.replaced + summary.skipped, total)
    return summary


async def _stored_names(tx: Tx, now: int) -> set[tuple[type, str]]:
    """What the agent already holds, as (row class, block type / key / entity id): every
    block, every live key, every entity, read a page at a time."""
    names: set[tuple[type, str]] = {(MemoryBlock, b.block_type.value)
                                    for b in await tx.core_list()}
    names.update((WorkingEntry, e.key)
                 for e in await tx.working_list("", now, WORKING_MEMORY_ENTRIES_COUNT_MAX))
    offset = 0
    while page := await tx.entity_list(None, EXPORT_ENTITY_PAGE_COUNT, offset):
        names.update((Entity, entity.id) for entity in page)
        offset += len(page)
    return names


def _name(row: MemoryBlock | WorkingEntry | Entity) -> tuple[type, str]:
    if isinstance(row, MemoryBlock):
        return MemoryBlock, row.block_type.value
    if isinstance(row, WorkingEntry):
        return WorkingEntry, row.key
    return Entity, row.id


async def _write(tx: Tx, records: list[_Parsed], on_conflict: OnConflict,
                 summary: ImportSummary, store: Store) -> None:
    now = store.clock.now_ms()
    stored = await _stored_names(tx, now)
    blocks: list[MemoryBlock] = []
    entries: list[WorkingEntry] = []
    entities: list[Entity] = []
    for parsed in records:
        row, name = parsed.row, _name(parsed.row)
        if name in stored:
            if on_conflict is OnConflict.SKIP:
                summary.skipped += 1
                continue
            if on_conflict is OnConflict.FAIL:
                raise ConflictError(f"line {parsed.line_number}: {_described(row)} of agent "
                                    f"{parsed.agent!r} is already there (--on-conflict skip "
                                    "or replace); nothing was imported")
            summary.replaced += 1
        else:
            summary.written += 1
        stored.add(name)
        if isinstance(row, MemoryBlock):
            blocks.append(row)
        elif isinstance(row, WorkingEntry):
            entries.append(replace(row, expires_at_ms=now + row.expires_at_ms))
        else:
            entities.append(row)
        tx.emit(ChangeEvent(_TIERS[name[0]], ChangeKind.SET, name[1], now))
    for block in blocks:
        await tx.core_put(block)
    await tx.working_put_many(entries)  # each kind of row in one statement
    await tx.entity_put_many(entities)


_TIERS: dict[type, Tier] = {MemoryBlock: Tier.CORE, WorkingEntry: Tier.WORKING,
                            Entity: Tier.ARCHIVAL}


def _described(row: MemoryBlock | WorkingEntry | Entity) -> str:
    if isinstance(row, MemoryBlock):
        return f"the {row.block_type} block"
    if isinstance(row, WorkingEntry):
        return f"key {row.key!r}"
    return f"entity {row.id}"


async def _check_totals(tx: Tx, store: Store) -> None:
    """The tiers' total limits hold after the import, or it is refused whole."""
    core_bytes = sum(block.size_bytes for block in await tx.core_list())
    core_max = store.core_size_bytes_max
    if core_bytes > core_max:
        raise LimitExceededError(f"agent {tx.agent!r}: core memory would hold {core_bytes} "
                                 f"bytes; the limit is {core_max}; nothing was imported")
    now = store.clock.now_ms()
    used, count = await tx.working_usage(None, None)
    if used > WORKING_MEMORY_SIZE_BYTES_MAX or count > WORKING_MEMORY_ENTRIES_COUNT_MAX:
        for key in await tx.working_delete_expired(now, WORKING_MEMORY_ENTRIES_COUNT_MAX):
            tx.emit(ChangeEvent(Tier.WORKING, ChangeKind.EXPIRED, key, now))
        used, count = await tx.working_usage(None, None)
    if used > WORKING_MEMORY_SIZE_BYTES_MAX or count > WORKING_MEMORY_ENTRIES_COUNT_MAX:
        raise LimitExceededError(
            f"agent {tx.agent!r}: working memory would hold {used} bytes in {count} keys; "
            f"the limits are {WORKING_MEMORY_SIZE_BYTES_MAX} bytes and "
            f"{WORKING_MEMORY_ENTRIES_COUNT_MAX} keys; nothing was imported")


__all__ = ["ExportSummary", "ImportFileError", "ImportSummary", "OnConflict", "export_memory",
           "import_memory", "read_import", "PORTABLE_FORMAT_NAME", "PORTABLE_FORMAT_VERSION"]
