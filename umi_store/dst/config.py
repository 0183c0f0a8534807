"""SimConfig: where a simulation's seed comes from (SPEC §3)."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass

from ..errors import InvalidInputError

SIM_SEED_MAX = 2**63 - 1


def parse_seed(text: str, source: str) -> int:
    """Parse a seed written by a person; a malformed one is InvalidInputError."""
    try:
        seed = int(text.strip(), 10)
    except ValueError:
        raise InvalidInputError(f"{source} must be a whole number, got {text!r}") from None
    if not 0 <= seed <= SIM_SEED_MAX:
        raise InvalidInputError(f"{source} must be between 0 and {SIM_SEED_MAX}, got {seed}")
    return seed


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int

    @classmethod
    def from_env(cls, seed: int | None = None, *, announce=None) -> SimConfig:
        """Seed from the argument, else UMI_SEED, else a fresh one that is announced."""
        if seed is not None:
            if not 0 <= seed <= SIM_SEED_MAX:
                raise InvalidInputError(f"seed must be between 0 and {SIM_SEED_MAX}, got {seed}")
            return cls(seed)
        text = os.environ.get("UMI_SEED")
        if text is not None:
            return cls(parse_seed(text, "UMI_SEED"))
        fresh = secrets.randbelow(2**32)
        (announce or _print_to_stderr)(f"seed {fresh}; replay with --seed {fresh}")
        return cls(fresh)


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
