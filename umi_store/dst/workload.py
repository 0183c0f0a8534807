"""The workload: seeded, weighted random operations over the three tiers (SPEC §3).

Sizes cluster at the limits, TTLs and clock steps at their boundaries, and a few inputs
are invalid on purpose, so the store's refusals are exercised as much as its successes.
Keys, names and ids come from small fixed sets, so operations keep meeting each other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..constants import (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX,
                         DST_TIME_ADVANCE_MS_MAX, EMBEDDING_DIMENSIONS_COUNT,
                         ENTITY_CONTENT_BYTES_MAX, SEARCH_QUERY_BYTES_MAX,
                         SEARCH_RESULTS_COUNT_MAX, WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX,
                         WORKING_MEMORY_KEY_BYTES_MAX, WORKING_MEMORY_TTL_SECS_DEFAULT,
                         WORKING_MEMORY_TTL_SECS_MAX)
from ..models import BlockType, Entity, EntityType
from ..tiers.archival import derive_name, entity_id
from .rng import DeterministicRng

_TTL_MS_DEFAULT = WORKING_MEMORY_TTL_SECS_DEFAULT * 1000
_TTL_MS_MAX = WORKING_MEMORY_TTL_SECS_MAX * 1000

WORKING_KEYS: tuple[str, ...] = tuple(f"k{i}" for i in range(16)) + (
    "cfg/a", "cfg/b", "cfg/ü", "cfg%", "n0", "n1", "n2", "k" * WORKING_MEMORY_KEY_BYTES_MAX)
KEY_TOO_LONG = "z" * (WORKING_MEMORY_KEY_BYTES_MAX + 1)
PREFIXES = ("", "k", "k1", "cfg/", "cfg%", "n", "zz")
# Values never hold whitespace, '+' or '_' (which int() would accept) so "is an integer"
# has one meaning; digits and a leading '-' still make integers.
_VALUE_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789-" + bytes(range(0x80, 0x100))
_VALUE_TABLE = bytes(_VALUE_BYTES[i % len(_VALUE_BYTES)] for i in range(256))

TTLS_MS = (None, 1, 2, 999, 1_000, 1_001, 60_000, _TTL_MS_DEFAULT, _TTL_MS_MAX, _TTL_MS_MAX + 1,
           0, -1)
TTL_WEIGHTS = (6, 2, 1, 1, 3, 1, 3, 2, 1, 1, 1, 1)
ADVANCES_MS = (1, 2, 999, 1_000, 1_001, 60_000, _TTL_MS_DEFAULT - 1, _TTL_MS_DEFAULT,
               _TTL_MS_DEFAULT + 1, DST_TIME_ADVANCE_MS_MAX)

VOCABULARY = ("alpha", "Beta", "GAMMA", "Émile", "émile", "straße", "STRASSE", "100%", "a_b",
              "back\\slash", "it's", "naïve", "日本語", "ﬁle", "Σίσυφος", "done")
NAMES = ("Alice", "Bob", "Émile", "straße", "Project X", "100% done", "a_b", "back\\slash",
         "it's", "日本語")
TITLES = ("Meeting notes", "Weekly plan for the whole team and the rest of the office crew",
          "ÉMILE's list", "   padded title   ")
QUERIES = ("alpha", "ALPHA", "émile", "ÉMILE", "strasse", "STRASSE", "100%", "%", "_", "a_b",
           "\\", "'", "it's", "日本", "file", "σίσυφος", "e", "xyz-none", "", "meeting",
           "Project", "ét")

WEIGHTS: Mapping[str, float] = MappingProxyType({
    "clock.advance": 10,
    "working.set": 14, "working.get": 8, "working.delete": 3, "working.expire": 3,
    "working.touch": 2, "working.incr": 4, "working.append": 4, "working.entries": 2,
    "working.ttl_ms": 2, "working.cleanup_expired": 1, "working.used_bytes": 1,
    "working.entry_count": 1, "working.clear": 0.2,
    "core.set_block": 8, "core.get_block": 3, "core.delete_block": 2, "core.set_importance": 2,
    "core.blocks": 1, "core.render": 1,
    "archival.remember": 6, "archival.store": 3, "archival.update": 2, "archival.get": 3,
    "archival.forget": 2, "archival.search": 6, "archival.list": 2, "archival.count": 1,
})
OP_NAMES: tuple[str, ...] = tuple(WEIGHTS)
_VALUE_KINDS = ("small", "integer", "medium", "large", "at_limit", "over")
_LABELS = (None, "", "profile", "l" * CORE_MEMORY_BLOCK_LABEL_BYTES_MAX,
           "l" * (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX + 1), "a \"quoted\" <tag>")
_IMPORTANCES = (None, 0.0, 0.25, 0.75, 1.0, 1.5)
_NEW_IMPORTANCES = (0.0, 0.5, 1.0, -0.1)
_BLOCK_TYPES = tuple(BlockType)
_ENTITY_TYPES = tuple(EntityType)


def _summary(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bytes):
        return f"{len(value)}B"
    if isinstance(value, str):
        return repr(value) if len(value) <= 24 else f"{len(value.encode())}B-text"
    if isinstance(value, Entity):
        extra = "" if value.embedding is None else f",emb{len(value.embedding)}"
        return (f"Entity({value.entity_type}:{_summary(value.name)},"
                f"{len(value.content.encode())}B{extra})")
    return repr(value)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: `tier.method` (or `clock.advance`) and its keyword arguments."""

    name: str
    kwargs: Mapping[str, object] = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return self.name.split(".", 1)[0]

    def summary(self) -> str:
        args = " ".join(f"{k}={_summary(v)}" for k, v in self.kwargs.items())
        return f"{self.name} {args}".rstrip()


class Workload:
    """Draws the next operation from a seeded rng stream."""

    def __init__(self, rng: DeterministicRng, agent: str) -> None:
        self._rng = rng
        self.agent = agent
        names = sorted(set(NAMES) | {derive_name(t) for t in TITLES})
        self._entity_ids = [entity_id(agent, t, n) for t in EntityType for n in names]
        chooser = rng.weighted_chooser
        self._op_name = chooser(OP_NAMES, [WEIGHTS[name] for name in OP_NAMES])
        self._draws = {name: getattr(self, "_" + name.replace(".", "_")) for name in OP_NAMES}
        self._value_kind = chooser(_VALUE_KINDS, (40, 15, 20, 10, 4, 1))
        self._ttl = chooser(TTLS_MS, TTL_WEIGHTS)
        self._block_size_index = chooser(range(4), (50, 35, 10, 5))
        self._label = chooser(_LABELS, (40, 5, 20, 5, 2, 5))
        self._importance = chooser(_IMPORTANCES, (40, 5, 10, 10, 5, 2))
        self._new_importance = chooser(_NEW_IMPORTANCES, (3, 5, 3, 1))
        self._content_kind_index = chooser(range(4), (900, 90, 3, 2))

    def next_op(self) -> Op:
        name = self._op_name()
        return Op(name, self._draws[name]())

    def entity_ids(self) -> list[str]:
        """Every id the workload can create, for reading a store back one row at a time."""
        return list(self._entity_ids)

    # ---- building blocks
    def _pick(self, items):
        return self._rng.choice(items)

    def _key(self) -> str:
        return KEY_TOO_LONG if self._rng.chance(0.01) else self._pick(WORKING_KEYS)

    def _bytes(self, size: int) -> bytes:
        return self._rng.randbytes(size).translate(_VALUE_TABLE)

    def _value(self) -> bytes:
        limit = WORKING_MEMORY_ENTRY_SIZE_BYTES_MAX
        kind = self._value_kind()
        if kind == "integer":
            return str(self._rng.randint(-1000, 1000)).encode()
        if kind == "small":
            size = self._rng.randint(1, 32)
        elif kind == "medium":
            size = self._rng.randint(1_000, 8_000)
        elif kind == "large":
            size = self._rng.randint(limit // 2, limit - 1)
        else:
            size = limit if kind == "at_limit" else limit + 1
        return self._bytes(size)

    def _text(self, size_bytes: int) -> str:
        """Text of exactly `size_bytes` UTF-8 bytes, with searchable words up front."""
        words = " ".join(self._pick(VOCABULARY) for _ in range(self._rng.randint(1, 6)))
        head = words.encode()[:size_bytes].decode(errors="ignore")
        return head + "." * (size_bytes - len(head.encode()))

    def _block_type(self):
        return "bogus" if self._rng.chance(0.01) else self._pick(_BLOCK_TYPES)

    def _entity_type(self):
        return self._pick(_ENTITY_TYPES)

    def _optional_type(self):
        return None if self._rng.chance(0.6) else self._entity_type()

    # ---- clock
    def _clock_advance(self) -> dict:
        if self._rng.chance(0.1):
            return {"ms": self._rng.randint(1, DST_TIME_ADVANCE_MS_MAX)}
        return {"ms": self._pick(ADVANCES_MS)}

    # ---- working memory
    def _working_set(self) -> dict:
        return {"key": self._key(), "value": self._value(), "ttl_ms": self._ttl()}

    def _working_get(self) -> dict:
        return {"key": self._key()}

    _working_delete = _working_touch = _working_ttl_ms = _working_get

    def _working_expire(self) -> dict:
        ttl = self._ttl()
        return {"key": self._key(), "ttl_ms": _TTL_MS_DEFAULT if ttl is None else ttl}

    def _working_incr(self) -> dict:
        return {"key": self._key(), "delta": self._pick((1, -1, 7, 10**12))}

    def _working_append(self) -> dict:
        return {"key": self._key(), "data": self._value()}

    def _working_entries(self) -> dict:
        return {"prefix": self._pick(PREFIXES), "limit": self._pick((0, 1, 3, 10_000))}

    def _no_args(self) -> dict:
        return {}

    _working_cleanup_expired = _working_used_bytes = _working_entry_count = _no_args
    _working_clear = _core_blocks = _core_render = _no_args

    # ---- core memory
    def _core_set_block(self) -> dict:
        block_max = CORE_MEMORY_BLOCK_SIZE_BYTES_MAX
        sizes = (self._rng.randint(0, 200), self._rng.randint(4_000, 9_000), block_max,
                 block_max + 1)  # both sizes are drawn whichever is chosen
        size = sizes[self._block_size_index()]
        label = self._label()
        importance = self._importance()
        if_version = None if self._rng.chance(0.8) else self._rng.randint(0, 3)
        return {"block_type": self._block_type(), "content": self._text(size), "label": label,
                "importance": importance, "if_version": if_version}

    def _core_get_block(self) -> dict:
        return {"block_type": self._pick(_BLOCK_TYPES)}

    _core_delete_block = _core_get_block

    def _core_set_importance(self) -> dict:
        return {"block_type": self._pick(_BLOCK_TYPES), "importance": self._new_importance()}

    # ---- archival memory
    def _content(self) -> str:
        index = self._content_kind_index()
        sizes = (self._rng.randint(1, 200), self._rng.randint(2_000, 20_000),
                 ENTITY_CONTENT_BYTES_MAX, ENTITY_CONTENT_BYTES_MAX + 1)  # both drawn
        return self._text(sizes[index])

    def _archival_remember(self) -> dict:
        if self._rng.chance(0.4):
            content = self._pick(TITLES) + "\n" + self._content()
            return {"content": content, "entity_type": self._entity_type(), "name": None}
        name = "n" * 257 if self._rng.chance(0.02) else self._pick(NAMES)
        return {"content": self._content(), "entity_type": self._entity_type(), "name": name}

    def _entity(self) -> Entity:
        embedding = None
        if self._rng.chance(0.05):
            count = EMBEDDING_DIMENSIONS_COUNT if self._rng.chance(0.7) else 3
            embedding = tuple(n / 1000 for n in self._rng.randints(-1000, 1000, count))
        metadata = {} if self._rng.chance(0.5) else {"source": self._pick(NAMES),
                                                     "n": str(self._rng.randint(0, 9))}
        return Entity(self._entity_type(), self._pick(NAMES), self._content(), "", metadata,
                      embedding)

    def _archival_store(self) -> dict:
        return {"entity": self._entity()}

    _archival_update = _archival_store

    def _archival_get(self) -> dict:
        return {"entity_id": self._pick(self._entity_ids)}

    _archival_forget = _archival_get

    def _archival_search(self) -> dict:
        query = "q" * (SEARCH_QUERY_BYTES_MAX + 1) if self._rng.chance(0.01) \
            else self._pick(QUERIES)
        return {"query": query, "entity_type": self._optional_type(),
                "limit": self._pick((1, 3, SEARCH_RESULTS_COUNT_MAX))}

    def _archival_list(self) -> dict:
        return {"entity_type": self._optional_type(), "limit": self._pick((1, 5, 100)),
                "offset": self._pick((0, 0, 2, 50))}

    def _archival_count(self) -> dict:
        return {"entity_type": self._optional_type()}
