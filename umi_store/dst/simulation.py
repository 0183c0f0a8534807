"""Simulation: a seeded workload against a store, checked against the model every step.

Each step draws an operation, runs it on the store (faults firing), and asks the model
which outcomes SPEC §2 allows at each time the store's clock told during the call. The
result must be one of them; then the whole agent is read back (faults muted) and must
equal an allowed state. An ambiguous failure (`outcome_unknown`) may leave the state
before or after the operation, never anything else; when the read-back cannot tell
which (an expired key is invisible), every state that fits is kept until a later step
decides. Every step writes one event-log line.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..constants import (CORE_MEMORY_BLOCK_SIZE_BYTES_MAX, CORE_MEMORY_SIZE_BYTES_MAX,
                         CORE_MEMORY_SIZE_BYTES_MIN,
                         DST_SIMULATION_STEPS_MAX, ENTITY_LIST_COUNT_MAX,
                         WORKING_MEMORY_ENTRIES_COUNT_MAX, WORKING_MEMORY_SIZE_BYTES_MAX)
from ..errors import CorruptionError, InvalidInputError, StorageError, UmiError
from ..models import BlockType, Entity, MemoryBlock, Tier, WorkingEntry
from .clock import SimClock
from .config import SIM_SEED_MAX
from .faults import FaultConfig, FaultInjector, FaultType
from .model import Alternative, ModelState, ReferenceModel, Refused
from .rng import DeterministicRng
from .workload import WORKING_KEYS, Op, Workload

SWARM_FAULT_CHANCE = 0.35  # each fault type is on in a seed's swarm mix with this chance
SWARM_FAULT_PROBABILITIES = (0.001, 0.01, 0.03, 0.1)
SWARM_CORE_SIZES_BYTES = (CORE_MEMORY_SIZE_BYTES_MIN, 16 * 1024, CORE_MEMORY_SIZE_BYTES_MAX)
DST_MODEL_STATES_COUNT_MAX = 64  # states unresolved ambiguous outcomes may leave open
DST_MODEL_STATES_SETTLE_COUNT = 8  # past this many, a cleanup of expired keys settles them
SETTLE_OP = Op("working.cleanup_expired")


class _Damaged:
    def __repr__(self) -> str:
        return "<corrupted>"


DAMAGED = _Damaged()  # what a read-back shows for a row whose read raised CorruptionError


def swarm_faults(seed: int) -> tuple[FaultConfig, ...]:
    """The fault mix a seed draws for itself in swarm mode: which types, how often."""
    rng = DeterministicRng(seed).fork("swarm")
    return tuple(FaultConfig(fault, rng.choice(SWARM_FAULT_PROBABILITIES))
                 for fault in FaultType if rng.chance(SWARM_FAULT_CHANCE))


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What a run is, entirely: the same config replays the same event log."""

    seed: int
    steps: int
    faults: tuple[FaultConfig, ...] = ()
    url: str = "sim://"
    swarm: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or not 0 <= self.seed <= SIM_SEED_MAX:
            raise InvalidInputError(f"seed must be between 0 and {SIM_SEED_MAX}, got {self.seed!r}")
        if not isinstance(self.steps, int) or not 0 <= self.steps <= DST_SIMULATION_STEPS_MAX:
            raise InvalidInputError(
                f"steps must be between 0 and {DST_SIMULATION_STEPS_MAX}, got {self.steps!r}")

    @property
    def agent(self) -> str:
        """The scratch agent a run uses; no other agent's rows are touched."""
        return f"sim-{self.seed}"

    @property
    def core_size_bytes_max(self) -> int:
        """The core-memory limit the store is opened with: in swarm mode, the seed's draw."""
        if not self.swarm:
            return CORE_MEMORY_SIZE_BYTES_MAX
        return DeterministicRng(self.seed).fork("swarm-core").choice(SWARM_CORE_SIZES_BYTES)

    def fault_mix(self) -> tuple[FaultConfig, ...]:
        """The faults in force: the swarm's draw (if on), then the explicit ones over it."""
        chosen = {c.fault_type: c for c in (swarm_faults(self.seed) if self.swarm else ())}
        chosen.update({c.fault_type: c for c in self.faults})
        return tuple(chosen[t] for t in FaultType if t in chosen)

    def replay_command(self, steps: int | None = None) -> str:
        parts = ["umi-tui", "sim", "--seed", str(self.seed), "--steps",
                 str(self.steps if steps is None else steps)]
        for config in self.faults:
            parts += ["--fault", f"{config.fault_type}={config.probability!r}"]
        if self.swarm:
            parts.append("--swarm")
        if self.url != "sim://":
            from ..store import url_without_password
            parts.append(url_without_password(self.url))
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken promise: where, what was allowed, what happened, and how to replay it."""

    seed: int
    step: int
    op: str
    expected: str
    actual: str
    replay: str

    def report(self) -> str:
        return (f"VIOLATION at step {self.step} (seed {self.seed}): {self.op}\n"
                f"  expected: {self.expected}\n  actual:   {self.actual}\n"
                f"  replay:   {self.replay}")


@dataclass(slots=True)
class SimulationResult:
    config: SimulationConfig
    steps_run: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


class _RecordingClock(SimClock):
    """A SimClock that remembers every time it told, so the model can try each one."""

    def __init__(self) -> None:
        super().__init__()
        self.told: set[int] = set()

    def now_ms(self) -> int:
        now = super().now_ms()
        self.told.add(now)
        return now


@contextmanager
def _faults_muted(injector: FaultInjector) -> Iterator[None]:
    configs, injector.configs = injector.configs, []
    try:
        yield
    finally:
        injector.configs = configs


@dataclass(slots=True)
class _View:
    """What a read-back saw: rows by key (DAMAGED where a read refused), and totals."""

    core: dict[BlockType, object]
    working: dict[str, object]
    entities: dict[str, object]
    entity_order: list[str] | None
    entity_count: int
    working_bytes: int
    working_count: int


def _summary(value: object) -> str:
    """A short, backend-independent description of a returned value."""
    if isinstance(value, bytes):
        return f"{len(value)}B:{zlib.crc32(value):08x}"
    if isinstance(value, WorkingEntry):
        return f"entry({value.key[:24]!r},{_summary(value.value)},exp={value.expires_at_ms})"
    if isinstance(value, MemoryBlock):
        return f"block({value.block_type},v{value.version},{value.size_bytes}B)"
    if isinstance(value, Entity):
        return f"entity({value.id[:8]},{value.entity_type},upd={value.updated_at})"
    if isinstance(value, list):
        return "[" + ",".join(_summary(v) for v in value[:3]) + (",…" if len(value) > 3 else "") \
            + f"]#{len(value)}"
    if isinstance(value, str) and len(value) > 80:
        return f"text({len(value)}ch:{zlib.crc32(value.encode()):08x})"
    if isinstance(value, Refused):
        return "refused " + "|".join(sorted(e.__name__ for e in value.errors))
    return repr(value)


def _scheme_url(url: str, seed: int) -> str:
    """sim:// without a seed gets the run's seed, so opening it announces nothing."""
    if url.split(":", 1)[0].lower() == "sim" and "seed=" not in urlsplit(url).query:
        return f"sim://?seed={seed}"
    return url


class Simulation:
    """Runs one SimulationConfig; `log` receives one line per step."""

    def __init__(self, config: SimulationConfig, *, log: Callable[[str], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.config = config
        self._log = log or (lambda line: None)
        self._progress = progress or (lambda step: None)
        rng = DeterministicRng(config.seed)
        self.injector = FaultInjector(rng.fork("faults"), list(config.fault_mix()))
        self.workload = Workload(rng.fork("workload"), config.agent)
        self.clock = _RecordingClock()
        self.result = SimulationResult(config)
        self._model = ReferenceModel(config.agent, config.core_size_bytes_max)
        self._states = [ModelState()]  # more than one while an ambiguous outcome is unresolved
        self._store = None

    async def run(self) -> SimulationResult:
        """Open the store, run every step of the config (stopping at a violation), close."""
        async with self.opened():
            for _ in range(self.config.steps):
                violation = await self.step(self.workload.next_op())
                self._progress(self.result.steps_run)
                if violation is not None:
                    break
        return self.result

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Simulation]:
        """The store opened and its scratch agent emptied; `step` works inside."""
        from ..store import open_store
        config = self.config
        async with open_store(_scheme_url(config.url, config.seed), agent=config.agent,
                              clock=self.clock, faults=self.injector,
                              core_memory_size_bytes_max=config.core_size_bytes_max) as store:
            with _faults_muted(self.injector):
                await self._reset(store)
            self._store = store
            try:
                yield self
            finally:
                self._store = None

    async def step(self, op: Op) -> Violation | None:
        """Run one operation and check the store; the violation, if any, is also recorded."""
        assert self._store is not None, "step() runs inside opened()"
        step = self.result.steps_run
        self.result.ops[op.name] += 1
        violation = await self._step(self._store, step, op)
        if violation is None and len(self._states) > DST_MODEL_STATES_SETTLE_COUNT:
            with _faults_muted(self.injector):  # expired keys are what the states disagree on
                violation = await self._step(self._store, step, SETTLE_OP)
        self.result.steps_run = step + 1
        if violation is not None:
            self.result.violations.append(violation)
            self._log(violation.report())
        return violation

    async def _reset(self, store) -> None:
        """Empty the scratch agent, left over from an earlier run on the same store."""
        await store.working.clear()
        for block_type in BlockType:
            await store.core.delete_block(block_type)
        for entity_id in self.workload.entity_ids():  # forgets even corrupted rows
            await store.archival.forget(entity_id)
        while leftovers := await store.archival.list(limit=ENTITY_LIST_COUNT_MAX):
            for entity in leftovers:
                await store.archival.forget(entity.id)

    async def _step(self, store, step: int, op: Op) -> Violation | None:
        def violation(expected: str, actual: str) -> Violation:
            return Violation(self.config.seed, step, op.summary(), expected, actual,
                             self.config.replay_command(step + 1))

        clock_before = self.clock.now_ms()
        counts_before = Counter(self.injector.counts)
        self.clock.told.clear()
        value: object = None
        error: Exception | None = None
        try:
            value = await _execute(store, op)
        except UmiError as raised:
            error = raised
        except Exception as raised:  # noqa: BLE001 - an untyped error is what we report
            self._log_step(step, clock_before, op, f"untyped {type(raised).__name__}", Counter())
            return violation("a value or a typed UmiError", f"{type(raised).__name__}: {raised}")
        fired = Counter({str(t): n for t, n in (self.injector.counts - counts_before).items()})
        self.result.faults.update(fired)
        nows = sorted(self.clock.told) or [self.clock.now_ms()]
        alternatives = [alt for state in self._states for now in nows
                        for alt in self._model.alternatives(state, op, now)]
        if fired[FaultType.STORAGE_CORRUPTION]:
            alternatives += [_with_damage(alt) for alt in alternatives if alt.written is not None]

        outcome, candidates, problem = _candidates(self._states, alternatives, value, error, fired)
        if problem is not None:
            self._log_step(step, clock_before, op, outcome, fired)
            return violation(problem, outcome)
        with _faults_muted(self.injector):
            try:
                view = await _read_back(store, self.workload)
            except UmiError as raised:
                self._log_step(step, clock_before, op, outcome, fired)
                return violation("the store reads back after the step",
                                 f"{type(raised).__name__}: {raised}")
        now = self.clock.now_ms()
        core_max = self.config.core_size_bytes_max
        differences = [_difference(state, view, now, core_max) for state, _ in candidates]
        matching = [(state, applied) for (state, applied), difference
                    in zip(candidates, differences) if difference is None]
        if getattr(error, "outcome_unknown", False) and matching:
            applied = {applied for _, applied in matching}
            outcome += " (applied)" if applied == {True} else \
                " (not applied)" if applied == {False} else " (undecided)"
        self._log_step(step, clock_before, op, outcome, fired)
        if not matching:
            return violation("the store to hold what the model holds",
                             "; or ".join(dict.fromkeys(differences)))
        self._states = _distinct([state.without_dead_deadlines(now) for state, _ in matching])
        return None

    def _log_step(self, step: int, clock_ms: int, op: Op, outcome: str, fired: Counter) -> None:
        faults = ",".join(f"{name}x{n}" if n > 1 else name for name, n in sorted(fired.items()))
        self._log(f"{step} {clock_ms} {op.summary()} -> {outcome}"
                  + (f" faults={faults}" if faults else ""))


async def _execute(store, op: Op) -> object:
    if op.name == "clock.advance":
        return store.clock.advance(op.kwargs["ms"])
    tier, method = op.name.split(".")
    return await getattr(getattr(store, tier), method)(**op.kwargs)


def _with_damage(alternative: Alternative) -> Alternative:
    damaged = alternative.state.copy()
    damaged.corrupted.add(alternative.written)
    return Alternative(alternative.result, damaged, alternative.written)


def _candidates(states: list[ModelState], alternatives: list[Alternative], value: object,
                error: Exception | None, fired: Counter
                ) -> tuple[str, list[tuple[ModelState, bool]], str | None]:
    """(the outcome as logged, the states the store may now hold with whether the op was
    applied in each, or else what was expected instead of this outcome)."""
    allowed = " or ".join(dict.fromkeys(_summary(a.result) for a in alternatives))
    texts = [a.result for a in alternatives if isinstance(a.result, str)]
    if texts and isinstance(value, str):
        allowed += "; " + _first_difference(texts[0], value)
    applied = [(a.state, True) for a in alternatives if not isinstance(a.result, Refused)]
    outcome = f"ok {_summary(value)}" if error is None else f"err {type(error).__name__}"
    if error is None:
        found = [(a.state, True) for a in alternatives
                 if not isinstance(a.result, Refused) and _same(a.result, value)]
    elif isinstance(error, StorageError) and not isinstance(error, CorruptionError):
        if not fired:
            return outcome, [], "no StorageError: no fault fired on this step"
        unchanged = [(state, False) for state in states]
        return outcome, unchanged + (applied if error.outcome_unknown else []), None
    else:
        found = [(a.state, False) for a in alternatives
                 if isinstance(a.result, Refused) and type(error) in a.result.errors]
    return outcome, found, None if found else allowed


def _first_difference(expected: str, actual: str) -> str:
    at = next((i for i, (e, a) in enumerate(zip(expected, actual)) if e != a),
              min(len(expected), len(actual)))
    return f"first difference at char {at}: expected {expected[max(0, at - 30):at + 30]!r}, " \
           f"got {actual[max(0, at - 30):at + 30]!r}"


def _distinct(states: list[ModelState]) -> list[ModelState]:
    """The states without repeats; never more than DST_MODEL_STATES_COUNT_MAX of them, since
    the step after DST_MODEL_STATES_SETTLE_COUNT is passed removes what sets them apart."""
    kept: list[ModelState] = []
    for state in states:
        if state not in kept:
            kept.append(state)
    assert len(kept) <= DST_MODEL_STATES_COUNT_MAX, \
        f"{len(kept)} states stay possible: the read-back no longer tells them apart"
    return kept


def _same(expected: object, actual: object) -> bool:
    return type(expected) is type(actual) and expected == actual


async def _read_back(store, workload: Workload) -> _View:
    """Everything the scratch agent holds; a row that refuses to read shows as DAMAGED."""
    async def one_by_one(keys, read) -> dict:
        rows = {}
        for key in keys:
            try:
                row = await read(key)
            except CorruptionError:
                row = DAMAGED
            if row is not None:
                rows[key] = row
        return rows

    try:
        core: dict = {b.block_type: b for b in await store.core.blocks()}
    except CorruptionError:
        core = await one_by_one(BlockType, store.core.get_block)
    try:
        working: dict = {e.key: e for e in
                         await store.working.entries(limit=WORKING_MEMORY_ENTRIES_COUNT_MAX)}
    except CorruptionError:
        working = await one_by_one(WORKING_KEYS, store.working.entry)
    order = None
    try:
        listed = await store.archival.list(limit=ENTITY_LIST_COUNT_MAX)
        entities: dict = {e.id: e for e in listed}
        order = [e.id for e in listed]
    except CorruptionError:
        entities = await one_by_one(workload.entity_ids(), store.archival.get)
    return _View(core, working, entities, order, await store.archival.count(),
                 await store.working.used_bytes(), await store.working.entry_count())


def _row_difference(what: str, expected: object, damaged: bool, may_be_gone: bool,
                    actual: object) -> str | None:
    if damaged:
        if actual is DAMAGED or (may_be_gone and actual is None):
            return None
        return f"{what}: expected a CorruptionError (its bytes were damaged), read " \
               f"{_summary(actual)}"
    if actual is DAMAGED:
        return f"{what}: expected {_summary(expected)}, read a CorruptionError"
    if not _same(expected, actual) and not (expected is None and actual is None):
        return f"{what}: expected {_summary(expected)}, read {_summary(actual)}"
    return None


def _difference(state: ModelState, view: _View, now_ms: int, core_max: int) -> str | None:
    """The first way the store differs from `state`, or None; also checks the limits."""
    for block_type in BlockType:
        block = state.core.get(block_type)
        damaged = block is not None and state.is_corrupted(Tier.CORE, block_type.value)
        if found := _row_difference(f"core {block_type}", block, damaged, False,
                                    view.core.get(block_type)):
            return found
    live = state.live_working(now_ms)
    for key in sorted(set(live) | set(view.working) | set(state.working)):
        damaged = key in state.working and state.is_corrupted(Tier.WORKING, key)
        if found := _row_difference(f"working {key[:24]!r}", live.get(key), damaged,
                                    key not in live, view.working.get(key)):
            return found
    for entity_id in sorted(set(state.entities) | set(view.entities)):
        entity = state.entities.get(entity_id)
        damaged = entity is not None and state.is_corrupted(Tier.ARCHIVAL, entity_id)
        if found := _row_difference(f"entity {entity_id[:8]}", entity, damaged, False,
                                    view.entities.get(entity_id)):
            return found
    if view.entity_order is not None:
        expected_order = [e.id for e in state.entities_in_order()]
        if view.entity_order != expected_order:
            return f"archival order: expected {expected_order}, listed {view.entity_order}"
    if view.entity_count != len(state.entities):
        return f"archival count: expected {len(state.entities)}, counted {view.entity_count}"
    used = sum(len(k.encode()) + len(e.value) for k, e in live.items())
    if (view.working_bytes, view.working_count) != (used, len(live)):
        return f"working usage: expected {used}B in {len(live)} keys, store says " \
               f"{view.working_bytes}B in {view.working_count} keys"
    return _limit_broken(view, core_max)


def _limit_broken(view: _View, core_max: int) -> str | None:
    """Limits hold in what the store reports, whatever the model believes."""
    if view.working_bytes > WORKING_MEMORY_SIZE_BYTES_MAX or \
            view.working_count > WORKING_MEMORY_ENTRIES_COUNT_MAX:
        return f"working memory over its limits: {view.working_bytes}B, {view.working_count} keys"
    sizes = [b.size_bytes for b in view.core.values() if isinstance(b, MemoryBlock)]
    if sum(sizes) > core_max or any(s > CORE_MEMORY_BLOCK_SIZE_BYTES_MAX for s in sizes):
        return f"core memory over its limits: blocks of {sizes} bytes, limit {core_max}"
    return None
