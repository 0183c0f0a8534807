"""DeterministicRng: every random choice in a run flows from one seed (SPEC §3)."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class DeterministicRng:
    """A seeded random stream; `fork(name)` gives an independent, named sub-stream."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._random = random.Random(seed)

    def fork(self, name: str) -> DeterministicRng:
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return DeterministicRng(int.from_bytes(digest[:8], "big"))

    def random(self) -> float:
        return self._random.random()

    def chance(self, probability: float) -> bool:
        return self._random.random() < probability

    def randint(self, low: int, high: int) -> int:
        """An int in [low, high], both ends included."""
        return self._random.randint(low, high)

    def choice(self, items: Sequence[T]) -> T:
        return self._random.choice(items)

    def weighted_choice(self, items: Sequence[T], weights: Sequence[float]) -> T:
        return self._random.choices(items, weights=weights, k=1)[0]

    def randbytes(self, count: int) -> bytes:
        return self._random.randbytes(count)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self._random.randbytes(16), version=4)
