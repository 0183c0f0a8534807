"""Deterministic simulation testing: seeded rng, simulated clock, fault injection."""

from .clock import Clock, SimClock, SystemClock
from .config import SimConfig, parse_seed
from .faults import FAULT_TARGET_KINDS, FaultConfig, FaultInjector, FaultType, OpKind
from .model import ModelState, ReferenceModel
from .rng import DeterministicRng
from .simulation import (Simulation, SimulationConfig, SimulationResult, Violation,
                         swarm_faults)
from .workload import Op, Workload

__all__ = [
    "Clock", "SimClock", "SystemClock", "SimConfig", "parse_seed", "DeterministicRng",
    "FaultConfig", "FaultInjector", "FaultType", "OpKind", "FAULT_TARGET_KINDS",
    "Op", "Workload", "ModelState", "ReferenceModel", "Simulation", "SimulationConfig",
    "SimulationResult", "Violation", "swarm_faults",
]
