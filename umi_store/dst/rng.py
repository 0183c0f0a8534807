"""DeterministicRng: every random choice in a run flows from one seed (SPEC §3)."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable, Sequence
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
        """An int in [low, high], both ends included: random.Random.randint's draw, made
        without its argument checks (the simulator draws millions of them)."""
        width = high - low + 1
        bits = width.bit_length()
        getrandbits = self._random.getrandbits
        drawn = getrandbits(bits)
        while drawn >= width:
            drawn = getrandbits(bits)
        return low + drawn

    def randints(self, low: int, high: int, count: int) -> list[int]:
        """`count` draws of randint(low, high), in order."""
        width = high - low + 1
        bits = width.bit_length()
        getrandbits = self._random.getrandbits
        drawn = []
        for _ in range(count):
            value = getrandbits(bits)
            while value >= width:
                value = getrandbits(bits)
            drawn.append(low + value)
        return drawn

    def choice(self, items: Sequence[T]) -> T:
        assert items, "a choice needs something to choose from"
        return items[self.randint(0, len(items) - 1)]

    def weighted_choice(self, items: Sequence[T], weights: Sequence[float]) -> T:
        return self._random.choices(items, weights=weights, k=1)[0]

    def weighted_chooser(self, items: Sequence[T], weights: Sequence[float]) -> Callable[[], T]:
        """weighted_choice(items, weights) as a function, its table built once: the same
        draws, for a choice made at every step."""
        assert len(items) == len(weights) and items, "one weight per item"
        cumulative = list(itertools.accumulate(weights))
        total = cumulative[-1] + 0.0
        last = len(items) - 1
        random_ = self._random.random

        def choose() -> T:
            return items[bisect.bisect(cumulative, random_() * total, 0, last)]
        return choose

    def randbytes(self, count: int) -> bytes:
        return self._random.randbytes(count)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self._random.randbytes(16), version=4)
