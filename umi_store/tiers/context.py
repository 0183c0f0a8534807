"""What every tier needs: the backend, the agent and the clock."""

from dataclasses import dataclass

from ..backends.base import Backend
from ..dst.clock import Clock


@dataclass(frozen=True, slots=True)
class TierContext:
    backend: Backend
    agent: str
    clock: Clock
    core_size_bytes_max: int
