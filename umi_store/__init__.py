"""Umi: a memory store for AI agents. Core blocks, working memory, archival entities."""

from .dst import DeterministicRng, FaultConfig, FaultInjector, FaultType, SimClock, SimConfig, SystemClock
from .errors import (ConflictError, CorruptionError, InvalidInputError, LimitExceededError,
                     NotFoundError, ReadOnlyError, StorageError, StoreUnavailableError, UmiError)
from .models import (AgentSummary, BlockType, ChangeEvent, ChangeKind, Entity, EntityType,
                     HistoryRecord, MemoryBlock, Tier, WorkingEntry)
from .store import Store, mask_url, open_store, url_without_password

__version__ = "0.1.0"

__all__ = [
    "open_store", "Store", "mask_url", "url_without_password", "AgentSummary", "BlockType",
    "EntityType", "Tier", "ChangeKind",
    "MemoryBlock", "WorkingEntry", "Entity", "ChangeEvent", "HistoryRecord", "ReadOnlyError",
    "UmiError", "InvalidInputError",
    "LimitExceededError", "NotFoundError", "ConflictError", "StorageError", "CorruptionError",
    "StoreUnavailableError", "SimClock", "SystemClock", "SimConfig", "DeterministicRng",
    "FaultConfig", "FaultInjector", "FaultType",
]
