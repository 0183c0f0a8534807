"""Plain, typed, immutable values that cross the store's API (SPEC §2.5)."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from .errors import InvalidInputError


class BlockType(enum.StrEnum):
    """Core memory block types, declared in render order."""

    SYSTEM = "system"
    PERSONA = "persona"
    HUMAN = "human"
    FACTS = "facts"
    GOALS = "goals"
    SCRATCH = "scratch"


class EntityType(enum.StrEnum):
    """Kinds of archival entity."""

    SELF = "self"
    PERSON = "person"
    ORGANIZATION = "organization"
    PROJECT = "project"
    TOPIC = "topic"
    LOCATION = "location"
    EVENT = "event"
    NOTE = "note"
    TASK = "task"


class Tier(enum.StrEnum):
    CORE = "core"
    WORKING = "working"
    ARCHIVAL = "archival"


class ChangeKind(enum.StrEnum):
    SET = "set"
    DELETE = "delete"
    EXPIRED = "expired"


E = TypeVar("E", bound=enum.StrEnum)


def parse_enum(enum_type: type[E], value: E | str, what: str) -> E:
    """Accept an enum member or its string value; anything else is InvalidInputError."""
    try:
        return enum_type(value)
    except ValueError:
        known = ", ".join(member.value for member in enum_type)
        raise InvalidInputError(f"unknown {what} {value!r}; expected one of: {known}") from None


def checked_text(text: str, what: str) -> str:
    """Refuse text holding NUL (U+0000): Postgres text cannot store it, so no backend does."""
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains the NUL character (U+0000), which Umi does "
                                "not store")
    return text


@dataclass(frozen=True, slots=True)
class MemoryBlock:
    block_type: BlockType
    content: str
    label: str | None = None
    importance: float = 0.5
    version: int = 1
    created_at: int = 0
    updated_at: int = 0

    @property
    def size_bytes(self) -> int:
        return len(self.content.encode())


@dataclass(frozen=True, slots=True)
class WorkingEntry:
    key: str
    value: bytes
    ttl_ms: int
    expires_at_ms: int
    updated_at: int = 0

    @property
    def size_bytes(self) -> int:
        """Bytes this entry counts against the working-memory limit (key + value)."""
        return len(self.key.encode()) + len(self.value)

    def remaining_ms(self, now_ms: int) -> int:
        return max(0, self.expires_at_ms - now_ms)

    def is_live(self, now_ms: int) -> bool:
        return self.expires_at_ms > now_ms


def _frozen_metadata(metadata: Mapping[str, str] | None) -> Mapping[str, str]:
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidInputError(f"an entity's metadata must map text to text, got "
                                f"{type(metadata).__name__}")
    return MappingProxyType(dict(metadata or {}))


def _embedding_floats(embedding: Iterable[float]) -> tuple[float, ...]:
    """The embedding as floats; text, or anything but a sequence of numbers, is refused."""
    try:
        if not isinstance(embedding, (str, bytes)):
            return tuple(map(float, embedding))
    except (TypeError, ValueError):
        pass
    raise InvalidInputError("an entity's embedding must be a sequence of numbers, got "
                            f"{type(embedding).__name__}")


@dataclass(frozen=True, slots=True)
class Entity:
    entity_type: EntityType
    name: str
    content: str
    id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None
    created_at: int = 0
    updated_at: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_metadata(self.metadata))
        if self.embedding is not None:
            object.__setattr__(self, "embedding", _embedding_floats(self.embedding))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity):
            return NotImplemented
        return _entity_key(self) == _entity_key(other)

    def __hash__(self) -> int:
        return hash(_entity_key(self))


def _entity_key(entity: Entity) -> tuple:
    return (entity.id, entity.entity_type, entity.name, entity.content,
            tuple(sorted(entity.metadata.items())), entity.embedding,
            entity.created_at, entity.updated_at)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change: `actor` made it, and it is `version` in the key's history (both
    empty/0 when it came from a process that does not record them)."""

    tier: Tier
    kind: ChangeKind
    key: str
    at_ms: int
    actor: str = ""
    version: int = 0


class HistoryRecord(NamedTuple):
    """One version of a core block, working key or entity: what it held after a change.

    `value` is the content (core, archival: UTF-8 text) or value (working) after the
    change, None after a delete or expiry; `metadata` holds the rest of the state after
    it (core: label, importance; working: ttl_ms, expires_at_ms; archival: entity_type,
    name, metadata, created_at). A tuple: a long history is built fast.
    """

    tier: Tier
    key: str
    version: int
    kind: ChangeKind
    at_ms: int
    actor: str
    value: bytes | None
    metadata: Mapping[str, Any] = MappingProxyType({})

    @property
    def content(self) -> str | None:
        """The value as text (core and archival content); None after a delete."""
        return None if self.value is None else self.value.decode("utf-8", "replace")

    @property
    def size_bytes(self) -> int:
        """What the record counts against its agent's history budget."""
        return len(self.key.encode()) + len(self.value or b"") + len(metadata_json(self.metadata))


METADATA_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # one, not one a call


def metadata_json(metadata: Mapping[str, Any]) -> str:
    """The stored form of a history record's metadata: JSON with sorted keys."""
    if isinstance(metadata, StoredMetadata):
        return metadata.text
    return METADATA_ENCODER.encode(dict(metadata))


class StoredMetadata(Mapping[str, Any]):
    """A history record's metadata as read from storage: its JSON is decoded on first use,
    so listing a long history does not decode what nobody looks at. Read-only."""

    __slots__ = ("text", "_decoded")

    def __init__(self, text: str) -> None:
        self.text = text
        self._decoded: dict[str, Any] | None = None

    def _mapping(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = json.loads(self.text)
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        return self._mapping()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return repr(self._mapping())


@dataclass(frozen=True, slots=True)
class AgentSummary:
    """One agent in a store: how much each tier holds, and when it last changed."""

    agent: str
    blocks: int
    keys: int  # live working keys
    entities: int
    last_change_at: int  # the newest updated_at of its rows (ms, store clock)
