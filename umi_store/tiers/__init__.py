"""The three tiers of memory: the rules of SPEC §2, written once over any backend."""

from .archival import ArchivalMemory
from .core import CoreMemory
from .working import WorkingMemory

__all__ = ["ArchivalMemory", "CoreMemory", "WorkingMemory"]
