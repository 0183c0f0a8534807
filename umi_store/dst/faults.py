"""FaultInjector: seeded, targeted fault decisions (SPEC §3)."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import InvalidInputError
from .rng import DeterministicRng

FAULT_TARGET_CACHE_COUNT_MAX = 256  # distinct (operation, kind) pairs remembered


class OpKind(enum.StrEnum):
    """What an operation does to storage; faults target kinds."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    COMMIT = "commit"  # the end of a transaction that changed something


class FaultType(enum.StrEnum):
    STORAGE_WRITE_FAIL = "storage_write_fail"
    STORAGE_READ_FAIL = "storage_read_fail"
    STORAGE_DELETE_FAIL = "storage_delete_fail"
    STORAGE_CORRUPTION = "storage_corruption"
    STORAGE_DISK_FULL = "storage_disk_full"
    STORAGE_LATENCY = "storage_latency"
    DB_CONNECTION_FAIL = "db_connection_fail"
    DB_QUERY_TIMEOUT = "db_query_timeout"
    DB_DEADLOCK = "db_deadlock"
    DB_SERIALIZATION_FAIL = "db_serialization_fail"
    DB_POOL_EXHAUSTED = "db_pool_exhausted"
    NETWORK_TIMEOUT = "network_timeout"
    NETWORK_CONNECTION_REFUSED = "network_connection_refused"
    NETWORK_DNS_FAIL = "network_dns_fail"
    NETWORK_PARTIAL_WRITE = "network_partial_write"
    NETWORK_RESET = "network_reset"
    CRASH_BEFORE_COMMIT = "crash_before_commit"
    CRASH_AFTER_COMMIT = "crash_after_commit"
    RESOURCE_OOM = "resource_oom"
    RESOURCE_FILE_LIMIT = "resource_file_limit"
    RESOURCE_CPU_THROTTLE = "resource_cpu_throttle"
    TIME_CLOCK_SKEW = "time_clock_skew"
    TIME_LEAP_SECOND = "time_leap_second"


_ALL_KINDS = frozenset({OpKind.READ, OpKind.WRITE, OpKind.DELETE})
_MUTATING_KINDS = frozenset({OpKind.WRITE, OpKind.DELETE})

FAULT_TARGET_KINDS: dict[FaultType, frozenset[OpKind]] = {
    FaultType.STORAGE_WRITE_FAIL: frozenset({OpKind.WRITE}),
    FaultType.STORAGE_READ_FAIL: frozenset({OpKind.READ}),
    FaultType.STORAGE_DELETE_FAIL: frozenset({OpKind.DELETE}),
    FaultType.STORAGE_CORRUPTION: frozenset({OpKind.WRITE}),
    FaultType.STORAGE_DISK_FULL: frozenset({OpKind.WRITE}),
    FaultType.STORAGE_LATENCY: _ALL_KINDS,
    FaultType.DB_CONNECTION_FAIL: _ALL_KINDS,
    FaultType.DB_QUERY_TIMEOUT: _ALL_KINDS,
    FaultType.DB_DEADLOCK: _MUTATING_KINDS,
    FaultType.DB_SERIALIZATION_FAIL: _MUTATING_KINDS,
    FaultType.DB_POOL_EXHAUSTED: _ALL_KINDS,
    FaultType.NETWORK_TIMEOUT: _ALL_KINDS,
    FaultType.NETWORK_CONNECTION_REFUSED: _ALL_KINDS,
    FaultType.NETWORK_DNS_FAIL: _ALL_KINDS,
    FaultType.NETWORK_PARTIAL_WRITE: frozenset({OpKind.WRITE}),
    FaultType.NETWORK_RESET: _ALL_KINDS,
    FaultType.CRASH_BEFORE_COMMIT: frozenset({OpKind.COMMIT}),
    FaultType.CRASH_AFTER_COMMIT: frozenset({OpKind.COMMIT}),
    FaultType.RESOURCE_OOM: _ALL_KINDS,
    FaultType.RESOURCE_FILE_LIMIT: _ALL_KINDS,
    FaultType.RESOURCE_CPU_THROTTLE: _ALL_KINDS,
    FaultType.TIME_CLOCK_SKEW: _ALL_KINDS,
    FaultType.TIME_LEAP_SECOND: _ALL_KINDS,
}
assert set(FAULT_TARGET_KINDS) == set(FaultType), "every fault type names its targets"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """One fault type, how often it fires, and optionally which operations it may hit."""

    fault_type: FaultType
    probability: float
    operation_filter: str | None = None
    max_injections: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "fault_type", FaultType(self.fault_type))
        except ValueError:
            known = ", ".join(FaultType)
            raise InvalidInputError(
                f"unknown fault {self.fault_type!r}; expected one of: {known}") from None
        if not 0.0 <= self.probability <= 1.0:
            raise InvalidInputError(
                f"fault probability must be between 0 and 1, got {self.probability}")
        if self.max_injections is not None and self.max_injections < 0:
            raise InvalidInputError(f"max_injections must be ≥ 0, got {self.max_injections}")

    def targets(self, operation: str, kind: OpKind) -> bool:
        if kind not in FAULT_TARGET_KINDS[self.fault_type]:
            return False
        return self.operation_filter is None or self.operation_filter in operation


class FaultInjector:
    """Decides, from the rng, which fault (if any) hits an operation; counts what fired.

    `record`, when a list, also receives every fault as it fires (the simulation empties
    it each step to see what that step's operation met).
    """

    def __init__(self, rng: DeterministicRng, configs: list[FaultConfig] | None = None) -> None:
        self.rng = rng
        self._configs: list[FaultConfig] = list(configs or [])
        self._targeted: dict[tuple[str, OpKind], tuple[FaultConfig, ...]] = {}
        self.counts: Counter[FaultType] = Counter()
        self.record: list[FaultType] | None = None
        self._muted = False

    @contextmanager
    def muted(self) -> Iterator[None]:
        """No fault fires (and no draw is made) inside: for reads that only check."""
        muted, self._muted = self._muted, True
        try:
            yield
        finally:
            self._muted = muted

    @property
    def configs(self) -> list[FaultConfig]:
        return self._configs

    @configs.setter
    def configs(self, configs: list[FaultConfig]) -> None:
        self._configs = configs
        self._targeted = {}

    def set_config(self, config: FaultConfig) -> None:
        """Add or replace the config for its fault type; takes effect on the next operation."""
        self.configs = [c for c in self.configs if c.fault_type != config.fault_type] + [config]

    def remove(self, fault_type: FaultType | str) -> None:
        self.configs = [c for c in self.configs if c.fault_type != FaultType(fault_type)]

    def _configs_targeting(self, operation: str, kind: OpKind) -> tuple[FaultConfig, ...]:
        """The configs that may fire on this operation, in order (those that never fire
        draw nothing from the rng, so leaving them out keeps every draw the same)."""
        found = self._targeted.get((operation, kind))
        if found is None:
            if len(self._targeted) >= FAULT_TARGET_CACHE_COUNT_MAX:
                self._targeted = {}
            found = tuple(c for c in self._configs
                          if c.probability > 0 and c.targets(operation, kind))
            self._targeted[(operation, kind)] = found
        return found

    def decide(self, operation: str, kind: OpKind) -> FaultType | None:
        """Draw once per config that targets this operation; the first that fires wins."""
        if self._muted:
            return None
        for config in self._configs_targeting(operation, kind):
            if config.max_injections is not None and \
                    self.counts[config.fault_type] >= config.max_injections:
                continue
            if self.rng.chance(config.probability):
                self.count_fired(config.fault_type)
                return config.fault_type
        return None

    def count_fired(self, fault_type: FaultType) -> None:
        """Count a fault that fired (decide does; so does a test that plants one by hand)."""
        self.counts[fault_type] += 1
        if self.record is not None:
            self.record.append(fault_type)
