"""Exact cosine similarity over entity embeddings (archival.similar), and rank fusion.

Each stored embedding has a sketch beside it: its direction in int8 (one byte a
dimension, a quarter of float32), 1/|x̃| and the chord error δ = |x̂ − x̃/|x̃||, where x̂
is the unit vector and x̃ the int8 values. A query scans the sketches (float32 dot
products, a block of rows at a time, the rows shared out to one thread a core), then
scores exactly, in float64, every entity that could be among the k best, and nothing
else decides the order.

Why that is exact: for a unit query q, the sketch score s = q·x̃/|x̃| is within
b = δ + SKETCH_SCORE_ROUNDING_MAX of the cosine q·x̂ (Cauchy-Schwarz bounds the first
term; the second bounds the float32 rounding of an n-term dot product, n·2⁻²⁴/(1 − n·2⁻²⁴),
with room to spare). Let τ be the k-th largest lower bound s − b: at least k entities
score ≥ τ, so every entity of the exact top k (ties included) has s + b ≥ τ. Those are
the candidates; ranking them exactly is ranking them all.
"""

from __future__ import annotations

import functools
import math
import os
import struct
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import EMBEDDING_DIMENSIONS_COUNT, SEARCH_FUSION_RANK_OFFSET
from .errors import InvalidInputError, MissingDependencyError
from .models import Entity

if TYPE_CHECKING:
    import numpy as np

SKETCH_TAIL = struct.Struct("<dd")  # 1/|x̃|, δ
SKETCH_BYTES = EMBEDDING_DIMENSIONS_COUNT + SKETCH_TAIL.size
SKETCH_SCORE_ROUNDING_MAX = 2 * (EMBEDDING_DIMENSIONS_COUNT + 4) * 2.0 ** -24
SKETCH_SCAN_BLOCK_ROWS = 256  # int8 rows widened to float32 at a time: they stay in cache
SKETCH_INT8_PEAK = 127.0
SKETCH_SCAN_THREADS_MAX = 4  # numpy releases the GIL: the scan's row ranges run in parallel
SKETCH_SCAN_THREAD_ROWS_MIN = 16 * SKETCH_SCAN_BLOCK_ROWS  # below this, one thread is faster

# (id, entity type, stored sketch or None, the embedding when there is no sketch)
SketchRow = tuple[str, str, "bytes | None", "Sequence[float] | None"]
Vector = Any  # a float64 numpy vector (numpy is optional, so not named in annotations)

# The sketch index of each (backend, agent), kept while its embeddings stay unchanged.
_INDEXES: weakref.WeakKeyDictionary[object, dict[str, SketchIndex]] = \
    weakref.WeakKeyDictionary()


def _scan_threads_count() -> int:
    """How many threads the sketch scan shares its rows out to: one a core, up to a limit."""
    return max(1, min(os.cpu_count() or 1, SKETCH_SCAN_THREADS_MAX))


@functools.cache
def _scan_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_scan_threads_count(), thread_name_prefix="umi-similarity-scan")


@functools.cache
def _numpy() -> Any:
    """numpy, imported on first use (it costs a store's import ~100 ms); None when the
    `similarity` extra is not installed."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def numpy_or_error() -> Any:
    """numpy, or a MissingDependencyError that says how to install it."""
    np = _numpy()
    if np is None:
        raise MissingDependencyError("similarity search needs numpy, which is not installed: "
                                     "pip install 'umi[similarity]'")
    return np


def checked_embedding(embedding: Sequence[float], what: str) -> None:
    """Refuse an embedding of the wrong dimension or with a value that is not finite."""
    if len(embedding) != EMBEDDING_DIMENSIONS_COUNT:
        raise InvalidInputError(f"{what} has {EMBEDDING_DIMENSIONS_COUNT} dimensions, "
                                f"got {len(embedding)}")
    if not all(map(math.isfinite, embedding)):
        raise InvalidInputError(f"{what} holds a value that is not a finite number")


def sketch(embedding: Sequence[float] | None) -> bytes | None:
    """The sketch stored beside `embedding` (None without numpy: it is made when read)."""
    np = _numpy()
    if embedding is None or np is None:
        return None
    vector = np.asarray(embedding, dtype=np.float64)
    norm = math.sqrt(float(np.dot(vector, vector)))
    if norm == 0.0:  # no direction: the sketch scores 0, as the exact cosine does
        return bytes(EMBEDDING_DIMENSIONS_COUNT) + SKETCH_TAIL.pack(0.0, 0.0)
    unit = vector / norm
    values = np.rint(unit * (SKETCH_INT8_PEAK / float(np.abs(unit).max()))).astype(np.int8)
    widened = values.astype(np.float64)
    values_norm = math.sqrt(float(np.dot(widened, widened)))  # ≥ 127: the peak is ±127
    error = float(np.linalg.norm(unit - widened / values_norm))
    return values.tobytes() + SKETCH_TAIL.pack(1.0 / values_norm, error)


def exact_bytes(embedding: Sequence[float] | None) -> bytes | None:
    """The embedding as little-endian float64, stored beside it: what the exact rescoring
    reads (parsing the JSON text SQLite keeps costs ~0.5 ms an entity)."""
    return None if embedding is None else struct.pack(f"<{len(embedding)}d", *embedding)


def unit_query(vector: Sequence[float], what: str) -> Vector:
    """The query as a float64 unit vector; a wrong dimension or a zero vector is refused
    (the error names the argument, `what`)."""
    np = numpy_or_error()
    wrong = InvalidInputError(f"{what} must be a sequence of numbers (a query vector)")
    if isinstance(vector, (str, bytes)):
        raise wrong
    try:
        floats = [float(x) for x in vector]
    except (TypeError, ValueError):
        raise wrong from None
    checked_embedding(floats, f"the query vector ({what})")
    query = np.asarray(floats, dtype=np.float64)
    norm = math.sqrt(float(np.dot(query, query)))
    if norm == 0.0:
        raise InvalidInputError(f"the query vector ({what}) is all zeros: it has no direction")
    return query / norm


def cosine(unit: Vector, embedding: bytes | Sequence[float]) -> float:
    """The exact score: cosine of the unit query and `embedding` (or its exact_bytes), 0
    for a zero vector. One row at a time: every backend computes the same bits for it."""
    np = numpy_or_error()
    vector = np.frombuffer(embedding, dtype="<f8") if isinstance(embedding, bytes) else \
        np.asarray(embedding, dtype=np.float64)
    norm = math.sqrt(float(np.dot(vector, vector)))
    return 0.0 if norm == 0.0 else float(np.dot(unit, vector)) / norm


def best(unit: Vector, embeddings: Mapping[str, bytes | Sequence[float]],
         k: int) -> list[tuple[str, float]]:
    """The k best (id, exact cosine) of `embeddings`, ties by id."""
    scored = [(entity_id, cosine(unit, embedding)) for entity_id, embedding in embeddings.items()]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:k]


@dataclass(frozen=True, slots=True)
class SketchIndex:
    """One agent's sketches as matrices, as of a version of its embeddings."""

    version: int
    ids: list[str]
    rows: dict[str, int]
    types: np.ndarray
    values: np.ndarray  # int8, one row an entity
    inverse_norms: np.ndarray
    errors: np.ndarray

    @classmethod
    def build(cls, version: int, found: list[SketchRow]) -> SketchIndex:
        np = numpy_or_error()
        blobs = [stored if stored is not None else sketch(embedding)
                 for _, _, stored, embedding in found]
        packed = np.frombuffer(b"".join(b for b in blobs if b is not None),
                               dtype=np.uint8).reshape(len(found), SKETCH_BYTES)
        tail = np.ascontiguousarray(packed[:, EMBEDDING_DIMENSIONS_COUNT:]).view("<f8")
        ids = [entity_id for entity_id, _, _, _ in found]
        return cls(version, ids, {entity_id: row for row, entity_id in enumerate(ids)},
                   np.array([entity_type for _, entity_type, _, _ in found], dtype=str),
                   packed[:, :EMBEDDING_DIMENSIONS_COUNT].view(np.int8),
                   tail[:, 0].copy(), tail[:, 1].copy())

    def candidates(self, unit: Vector, k: int, entity_type: str | None,
                   exclude_id: str | None) -> list[str]:
        """Every entity that could be among the k most similar to `unit` (module doc)."""
        np = numpy_or_error()
        count = len(self.ids)
        eligible = np.ones(count, dtype=bool) if entity_type is None else \
            self.types == entity_type
        if exclude_id in self.rows:
            eligible[self.rows[exclude_id]] = False
        if int(eligible.sum()) <= k:
            return [self.ids[row] for row in np.flatnonzero(eligible)]
        approx = self._sketch_scores(unit.astype(np.float32)) * self.inverse_norms
        bound = self.errors + SKETCH_SCORE_ROUNDING_MAX
        lower = np.where(eligible, approx - bound, -np.inf)
        kth_lower = np.partition(lower, count - k)[count - k]
        return [self.ids[row] for row in np.flatnonzero(eligible & (approx + bound >= kth_lower))]

    def _sketch_scores(self, query: np.ndarray) -> np.ndarray:
        """q·x̃ of every row, the row ranges shared out to the scan threads."""
        np = numpy_or_error()
        count = len(self.ids)
        scores = np.empty(count, dtype=np.float32)
        parts = min(_scan_threads_count(), max(1, count // SKETCH_SCAN_THREAD_ROWS_MIN))
        step = -(-count // (parts * SKETCH_SCAN_BLOCK_ROWS)) * SKETCH_SCAN_BLOCK_ROWS
        starts = range(0, count, step)
        if len(starts) == 1:
            self._scan_rows(query, 0, count, scores)
        else:
            for done in [_scan_pool().submit(self._scan_rows, query, start, min(start + step, count),
                                     scores) for start in starts]:
                done.result()
        return scores.astype(np.float64)

    def _scan_rows(self, query: np.ndarray, start: int, stop: int, scores: np.ndarray) -> None:
        """Rows start..stop of the scan, widened to float32 a block at a time."""
        np = numpy_or_error()
        block = np.empty((SKETCH_SCAN_BLOCK_ROWS, EMBEDDING_DIMENSIONS_COUNT), dtype=np.float32)
        for first in range(start, stop, SKETCH_SCAN_BLOCK_ROWS):
            rows = self.values[first:min(first + SKETCH_SCAN_BLOCK_ROWS, stop)]
            widened = block[:len(rows)]
            widened[...] = rows
            np.matmul(widened, query, out=scores[first:first + len(rows)])


def cached_index(backend: object, agent: str) -> SketchIndex | None:
    return _INDEXES.get(backend, {}).get(agent)


def cache_index(backend: object, agent: str, index: SketchIndex) -> None:
    _INDEXES.setdefault(backend, {})[agent] = index


def fused(rankings: Iterable[Sequence[Entity]], limit: int) -> list[Entity]:
    """Reciprocal rank fusion: each entity scores Σ 1/(SEARCH_FUSION_RANK_OFFSET + rank)
    over the rankings it is in (rank 1-based); best first, ties by id."""
    scores: dict[str, float] = {}
    entities: dict[str, Entity] = {}
    for ranking in rankings:
        for rank, entity in enumerate(ranking, start=1):
            scores[entity.id] = scores.get(entity.id, 0.0) + 1.0 / (SEARCH_FUSION_RANK_OFFSET
                                                                    + rank)
            entities[entity.id] = entity
    best = sorted(scores, key=lambda entity_id: (-scores[entity_id], entity_id))
    return [entities[entity_id] for entity_id in best[:limit]]
