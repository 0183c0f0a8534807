"""Deterministic simulation testing: seeded rng, simulated clock, fault injection.

The clock, rng, seed config and fault injector are what the store itself uses, and load
with it. The harness (the reference model, the workload, the simulation) imports the
store, never the reverse, and loads only when asked for: `from umi_store.dst import
Simulation` (or `import umi_store.dst.simulation`) pulls it in, `import umi_store` does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .clock import Clock, SimClock, SystemClock
from .config import SimConfig, parse_seed
from .faults import FAULT_TARGET_KINDS, FaultConfig, FaultInjector, FaultType, OpKind
from .rng import DeterministicRng

if TYPE_CHECKING:
    from .model import ModelState, ReferenceModel
    from .simulation import (RunRecord, Simulation, SimulationConfig, SimulationResult,
                             StepRecord, Violation, swarm_faults)
    from .workload import Op, Workload

_HARNESS: dict[str, str] = {
    "ModelState": "model", "ReferenceModel": "model", "Op": "workload", "Workload": "workload",
    **dict.fromkeys(["RunRecord", "Simulation", "SimulationConfig", "SimulationResult",
                     "StepRecord", "Violation", "swarm_faults"], "simulation"),
}

__all__ = [
    "Clock", "SimClock", "SystemClock", "SimConfig", "parse_seed", "DeterministicRng",
    "FaultConfig", "FaultInjector", "FaultType", "OpKind", "FAULT_TARGET_KINDS",
    "Op", "Workload", "ModelState", "ReferenceModel", "RunRecord", "Simulation",
    "SimulationConfig", "SimulationResult", "StepRecord", "Violation", "swarm_faults",
]


def __getattr__(name: str) -> object:
    """The harness's names, imported on first use (PEP 562)."""
    module = _HARNESS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
