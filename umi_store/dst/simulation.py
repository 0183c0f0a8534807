"""Simulation: a seeded workload against a store, checked against the model every step.

Each step draws an operation, runs it on the store (faults firing), and asks the model
which outcomes SPEC §2 allows at each time the store's clock told during the call. The
result must be one of them; then what the step could have changed is read back (faults
muted) and must equal an allowed state, and the change events the step published must
name exactly the rows it changed. Every DST_FULL_CHECK_INTERVAL_STEPS steps, and at the
end of a run, the whole agent is read back instead. An ambiguous failure
(`outcome_unknown`) may leave the state before or after the operation, never anything
else; when the read-back cannot tell which (an expired key is invisible), every state that
fits is kept until a later step decides. Every step makes one StepRecord (its event-log
line), and every violation found is a record too; both are made only when someone listens.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from ..constants import (CORE_MEMORY_BLOCK_SIZE_BYTES_MAX, CORE_MEMORY_SIZE_BYTES_MAX,
                         CORE_MEMORY_SIZE_BYTES_MIN, DST_FULL_CHECK_INTERVAL_STEPS,
                         DST_SIMULATION_STEPS_MAX, ENTITY_LIST_COUNT_MAX,
                         HISTORY_RECORDS_COUNT_MAX,
                         WORKING_MEMORY_ENTRIES_COUNT_MAX, WORKING_MEMORY_SIZE_BYTES_MAX)
from ..errors import CorruptionError, InvalidInputError, StorageError, UmiError
from ..models import (BlockType, ChangeEvent, ChangeKind, Entity, MemoryBlock, Tier,
                      WorkingEntry)
from ..store import Batch, Store, open_store, url_without_password
from ..backends.base import Tx
from ..tiers.context import OpenBatch, TierContext
from .clock import SimClock
from .config import SIM_SEED_MAX
from .faults import FaultConfig, FaultInjector, FaultType
from .model import TIER_CHANGED_BY, Alternative, ModelState, ReferenceModel, Refused, Row
from .rng import DeterministicRng
from .history_check import history_problem
from .workload import WORKING_KEYS, Op, Workload

T = TypeVar("T")

SWARM_FAULT_CHANCE = 0.35  # each fault type is on in a seed's swarm mix with this chance
SWARM_FAULT_PROBABILITIES = (0.001, 0.01, 0.03, 0.1)
SWARM_CORE_SIZES_BYTES = (CORE_MEMORY_SIZE_BYTES_MIN, 16 * 1024, CORE_MEMORY_SIZE_BYTES_MAX)
DST_MODEL_STATES_COUNT_MAX = 64  # states unresolved ambiguous outcomes may leave open
DST_MODEL_STATES_SETTLE_COUNT = 8  # past this many, a cleanup of expired keys settles them
SETTLE_OP = Op("working.cleanup_expired")
_NOTHING_FIRED: Counter[str] = Counter()  # never changed: the faults of a quiet step
_WORKING_KEY_SET = frozenset(WORKING_KEYS)
_BLOCK_TYPES = tuple(BlockType)  # iterating the enum itself costs a generator each time
_BLOCK_TYPE_SET = frozenset(BlockType)
_Candidate = tuple[ModelState, ModelState, bool]  # (the state before, after, applied)


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

    def line(self) -> str:
        """Its entry in the event log: the report."""
        return self.report()


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step as it ran: its number, the clock when it began, the operation, how it came
    out (`ok …`, `err …`), and the faults that fired (name, times), by name."""

    step: int
    clock_ms: int
    op: str
    outcome: str
    faults: tuple[tuple[str, int], ...] = ()

    def line(self, clock: str | None = None) -> str:
        """Its event-log line, byte for byte as the golden logs hold it; `clock` in place of
        the clock's ms (the console shows a date and time)."""
        faults = ",".join(f"{name}x{n}" if n > 1 else name for name, n in self.faults)
        return f"{self.step} {self.clock_ms if clock is None else clock} {self.op} -> " \
            f"{self.outcome}" + (f" faults={faults}" if faults else "")


RunRecord = StepRecord | Violation  # what a run tells its listener, in event-log order


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
        now = self._now_ms  # SimClock.now_ms, without a call: the store asks at every step
        self.told.add(now)
        return now


@dataclass(slots=True)
class _View:
    """What a read-back saw: rows by key (DAMAGED where a read refused), and totals."""

    core: dict[BlockType, object]
    working: dict[str, object]
    entities: dict[str, object]
    entity_order: list[str] | None
    entity_count: int | None
    working_bytes: int | None
    working_count: int | None
    scope: _Scope | None = None  # None: everything was read


async def _history_problem(store, view: _View, since_ms: int, now_ms: int) -> str | None:
    """How history disagrees with the rows `view` read back (history_check), or None."""
    scope = view.scope
    keys = None if scope is None else [
        *((Tier.CORE, b.value) for b in scope.core), *((Tier.WORKING, k) for k in scope.working),
        *((Tier.ARCHIVAL, i) for i in scope.entities)]
    return await history_problem(
        store, {Tier.CORE: view.core, Tier.WORKING: view.working, Tier.ARCHIVAL: view.entities},
        keys, since_ms, now_ms, lambda row: row is DAMAGED)


class _OneRead(OpenBatch):
    """The transaction a check's reads share. A read that refuses (a damaged row) leaves
    the others be: nothing is written, so there is nothing to roll back."""

    async def run(self, body: Callable[[Any], Awaitable[Any]]) -> Any:
        return await self.tx.run(body)


class _Reader(Batch):
    """The store's tiers and history as one read transaction sees them: what a check reads
    back costs one transaction (one lock on sim://, one trip to SQLite's thread, one pooled
    connection on Postgres), not one per row. Made once per run, bound to each read."""

    def __init__(self, store: Store) -> None:
        self._one_read = _OneRead(cast(Tx, None))  # bound to each read's transaction
        super().__init__(TierContext(store.backend, store.agent, store.clock,
                                     store.core_size_bytes_max, store.actor, self._one_read))
        self.actor = store.actor
        self._backend, self._agent = store.backend, store.agent

    async def read(self, reads: Callable[[_Reader], Awaitable[T]]) -> T:
        """`reads` over this reader, run as one read transaction's body."""
        return await self._backend.run(self._agent, lambda tx: self._bound(tx, reads),
                                       write=False)

    def _bound(self, tx: Tx, reads: Callable[[_Reader], Awaitable[T]]) -> Awaitable[T]:
        self._one_read.tx = tx
        return reads(self)

    async def history(self, tier: Tier, key: str, limit: int) -> list:
        return await self._one_read.tx.history_list(tier, key, limit)

    async def history_since(self, at_ms: int) -> list:
        return await self._one_read.tx.history_since(at_ms, HISTORY_RECORDS_COUNT_MAX)


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
    """Runs one SimulationConfig; `records` receives a StepRecord per step and each
    Violation as found, `log` the same as event-log text (`record.line()`).

    Each step reads back only the rows it could have changed (the rows the operation
    names or wrote, the rows any allowed outcome changed, the keys whose deadline the
    clock just passed, and the totals those feed); every `full_check_every` steps, and at
    the end of `run`, the whole agent is read back instead. Change events are checked on
    every step: each row an outcome changed has one, and no row the step left alone has.
    """

    def __init__(self, config: SimulationConfig, *, log: Callable[[str], None] | None = None,
                 records: Callable[[RunRecord], None] | None = None,
                 progress: Callable[[int], None] | None = None,
                 full_check_every: int = DST_FULL_CHECK_INTERVAL_STEPS) -> None:
        assert full_check_every >= 1, "a full check happens at least every so many steps"
        assert log is None or records is None, "one listener: the text or the records"
        self.config = config
        # None: no record is ever made
        self._record = records if log is None else lambda record: log(record.line())
        self._progress = progress or (lambda step: None)
        self._full_check_every = full_check_every
        rng = DeterministicRng(config.seed)
        self.injector = FaultInjector(rng.fork("faults"), list(config.fault_mix()))
        self.injector.record = []
        self.workload = Workload(rng.fork("workload"), config.agent)
        self.clock = _RecordingClock()
        self.result = SimulationResult(config)
        self._core_size_bytes_max = config.core_size_bytes_max
        self._model = ReferenceModel(config.agent, self._core_size_bytes_max)
        self._states = [ModelState()]  # more than one while an ambiguous outcome is unresolved
        self._store: Store | None = None
        self._reader: _Reader | None = None  # the open store's, for every check
        self._events: asyncio.Queue[ChangeEvent] | None = None
        self._fully_checked_steps = 0  # steps_run when the whole agent last read back clean
        self._last_op: Op | None = None

    @property
    def store(self) -> Store | None:
        """The open store inside opened() (None outside)."""
        return self._store

    async def run(self) -> SimulationResult:
        """Open the store, run every step of the config (stopping at a violation), check
        the whole agent once more at the end, close."""
        async with self.opened():
            if await self.advance(self.config.steps) is None:
                await self.check_all()
        return self.result

    async def advance(self, steps: int) -> Violation | None:
        """Run up to `steps` more workload steps inside opened(); stop at a violation."""
        step, progress, next_op = self.step, self._progress, self.workload.next_op
        for _ in range(steps):
            violation = await step(next_op())
            progress(self.result.steps_run)
            if violation is not None:
                return violation
        return None

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Simulation]:
        """The store opened and its scratch agent emptied; `step` works inside."""
        config = self.config
        async with open_store(_scheme_url(config.url, config.seed), agent=config.agent,
                              clock=self.clock, faults=self.injector,
                              core_memory_size_bytes_max=self._core_size_bytes_max) as store:
            with self.injector.muted():
                await self._reset(store)
            async with store.backend.changes.subscribe(config.agent) as events:
                self._store, self._events, self._reader = store, events, _Reader(store)
                try:
                    yield self
                finally:
                    self._store, self._events, self._reader = None, None, None

    async def step(self, op: Op) -> Violation | None:
        """Run one operation and check the store; the violation, if any, is also recorded."""
        assert self._store is not None, "step() runs inside opened()"
        step = self.result.steps_run
        self.result.ops[op.name] += 1
        self._last_op = op
        full = (step + 1) % self._full_check_every == 0
        violation = await self._step(self._store, step, op, full)
        if violation is None and len(self._states) > DST_MODEL_STATES_SETTLE_COUNT:
            with self.injector.muted():  # expired keys are what the states disagree on
                violation = await self._step(self._store, step, SETTLE_OP, full)
        self.result.steps_run = step + 1
        if violation is None and full:
            self._fully_checked_steps = step + 1
        return self._recorded(violation)

    async def check_all(self) -> Violation | None:
        """Read the whole agent back and compare it with the model, as every
        `full_check_every`-th step does; the violation (at the last step) is recorded."""
        assert self._store is not None and self._reader is not None, \
            "check_all() runs inside opened()"
        if self._fully_checked_steps == self.result.steps_run or self._last_op is None:
            return None
        step, op = self.result.steps_run - 1, self._last_op
        with self.injector.muted():
            try:
                view = await self._reader.read(lambda reader: _read_back(reader, self.workload))
            except UmiError as raised:
                return self._recorded(self._violation(
                    step, op, "the store reads back at the end",
                    f"{type(raised).__name__}: {raised}"))
        now = self.clock.now_ms()
        core_max = self._core_size_bytes_max
        differences = [_difference(state, view, now, core_max) for state in self._states]
        if all(d is not None for d in differences):
            return self._recorded(self._violation(
                step, op, "the store to hold what the model holds (full check)",
                "; or ".join(dict.fromkeys(d for d in differences if d is not None))))
        self._states = [s for s, d in zip(self._states, differences) if d is None]
        self._fully_checked_steps = self.result.steps_run
        return None

    def _recorded(self, violation: Violation | None) -> Violation | None:
        if violation is not None:
            self.result.violations.append(violation)
            if self._record is not None:
                self._record(violation)
        return violation

    def _violation(self, step: int, op: Op, expected: str, actual: str) -> Violation:
        return Violation(self.config.seed, step, op.summary(), expected, actual,
                         self.config.replay_command(step + 1))

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

    def _drained_events(self) -> dict[Row, ChangeKind]:
        """The rows the step's committed changes named, each with its last kind."""
        events = self._events
        assert events is not None
        changed: dict[Row, ChangeKind] = {}
        while not events.empty():
            event = events.get_nowait()
            changed[(event.tier, event.key)] = event.kind
        return changed

    async def _step(self, store, step: int, op: Op, full: bool) -> Violation | None:
        clock, injector = self.clock, self.injector
        clock_before = clock.now_ms()
        record = injector.record
        assert record is not None
        record.clear()
        clock.told.clear()
        value: object = None
        error: Exception | None = None
        try:
            value = await execute_op(store, op)
        except UmiError as raised:
            error = raised
        except Exception as raised:  # noqa: BLE001 - an untyped error is what we report
            self._drained_events()
            untyped = f"untyped {type(raised).__name__}"
            self._log_step(step, clock_before, op, lambda: untyped, _NOTHING_FIRED)
            return self._violation(step, op, "a value or a typed UmiError",
                                   f"{type(raised).__name__}: {raised}")
        events = self._drained_events()
        fired: Counter[str] = Counter(map(str, record)) if record else _NOTHING_FIRED
        if fired:
            self.result.faults.update(fired)
        nows = sorted(clock.told) or [clock.now_ms()]
        model = self._model
        alternatives = [(origin, alt) for origin in self._states for now in nows
                        for alt in model.alternatives(origin, op, now)]
        if fired and fired[FaultType.STORAGE_CORRUPTION]:
            alternatives += [(origin, _with_damage(alt)) for origin, alt in alternatives
                             if alt.written is not None]

        def outcome() -> str:
            return f"ok {_summary(value)}" if error is None else f"err {type(error).__name__}"

        candidates, problem = _candidates(self._states, alternatives, value, error, fired)
        if problem is not None:
            self._log_step(step, clock_before, op, outcome, fired)
            return self._violation(step, op, problem(), outcome())
        now = clock.now_ms()
        tier = TIER_CHANGED_BY.get(op.name)
        changes = [_changed_rows(tier, origin, state) if tier is not None else {}
                   for origin, state, _ in candidates]
        named = _named_rows(op, tier, alternatives)
        scope = None if full else _scope(changes, named, self._states, now)
        differences: list[str | None] = [None] * len(candidates)
        history: str | None = None
        if scope is None or scope.core or scope.working or scope.entities:
            async def read(reader: _Reader) -> tuple[_View, str | None]:
                view = await _read_back(reader, self.workload) if scope is None else \
                    await _read_rows(reader, scope)
                return view, await _history_problem(reader, view, clock_before, now)
            with injector.muted():
                try:
                    assert self._reader is not None, "a step runs inside opened()"
                    view, history = await self._reader.read(read)
                except UmiError as raised:
                    self._log_step(step, clock_before, op, outcome, fired)
                    return self._violation(step, op, "the store reads back after the step",
                                           f"{type(raised).__name__}: {raised}")
            core_max = self._core_size_bytes_max
            differences = [_difference(state, view, now, core_max)
                           for _, state, _ in candidates]
        matching = [(candidate, change) for candidate, change, difference
                    in zip(candidates, changes, differences) if difference is None]

        def logged_outcome() -> str:
            text = outcome()
            if getattr(error, "outcome_unknown", False) and matching:
                applied = {applied for (_, _, applied), _ in matching}
                text += " (applied)" if applied == {True} else \
                    " (not applied)" if applied == {False} else " (undecided)"
            return text

        self._log_step(step, clock_before, op, logged_outcome, fired)
        if not matching:
            return self._violation(step, op, "the store to hold what the model holds",
                                   "; or ".join(dict.fromkeys(differences)))  # type: ignore[arg-type]
        if history is not None:
            return self._violation(step, op, "history to hold each change as the store holds it",
                                   history)
        event_problems = [_event_problem(change, events, named) for _, change in matching]
        if all(p is not None for p in event_problems):
            return self._violation(step, op, "a change event for each row the step changed, "
                                   "and none for the rows it left alone",
                                   "; or ".join(dict.fromkeys(event_problems)))  # type: ignore[arg-type]
        self._states = _distinct([state.without_dead_deadlines(now)
                                  for (_, state, _), _ in matching])
        return None

    def _log_step(self, step: int, clock_ms: int, op: Op, outcome: Callable[[], str],
                  fired: Counter) -> None:
        if self._record is not None:
            self._record(StepRecord(step, clock_ms, op.summary(), outcome(),
                                    tuple(sorted(fired.items()))))


async def execute_op(store: Store, op: Op) -> object:
    """Run one workload operation on the store; what it returns."""
    if op.name == "clock.advance":
        ms = op.kwargs["ms"]
        assert isinstance(ms, int), "the workload advances the clock by whole ms"
        return store.clock.advance(ms)
    tier, method = op.name.split(".")
    return await getattr(getattr(store, tier), method)(**op.kwargs)


def _with_damage(alternative: Alternative) -> Alternative:
    assert alternative.written is not None, "only a written row can be damaged"
    damaged = alternative.state.copy()
    damaged.corrupted.add(alternative.written)
    return Alternative(alternative.result, damaged, alternative.written)


def _candidates(states: list[ModelState], alternatives: list[tuple[ModelState, Alternative]],
                value: object, error: Exception | None, fired: Counter
                ) -> tuple[list[_Candidate], Callable[[], str] | None]:
    """(the states the store may now hold, each with the state it came from and whether the
    op was applied in it; or else a description, made on demand, of what was expected)."""
    def allowed() -> str:
        expected = " or ".join(dict.fromkeys(_summary(a.result) for _, a in alternatives))
        texts = [a.result for _, a in alternatives if isinstance(a.result, str)]
        if texts and isinstance(value, str):
            expected += "; " + _first_difference(texts[0], value)
        return expected

    if error is None:
        found = [(origin, a.state, True) for origin, a in alternatives
                 if not isinstance(a.result, Refused) and _same(a.result, value)]
    elif isinstance(error, StorageError) and not isinstance(error, CorruptionError):
        if not fired:
            return [], lambda: "no StorageError: no fault fired on this step"
        unchanged = [(state, state, False) for state in states]
        if not error.outcome_unknown:
            return unchanged, None
        return unchanged + [(origin, a.state, True) for origin, a in alternatives
                            if not isinstance(a.result, Refused)], None
    else:
        found = [(origin, a.state, False) for origin, a in alternatives
                 if isinstance(a.result, Refused) and type(error) in a.result.errors]
    return found, None if found else allowed


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


def _changed_rows(tier: Tier, before: ModelState, after: ModelState) -> dict[Row, bool]:
    """The rows of `tier` an outcome changed (the model reuses a row's object until it
    changes it), each with whether it is still stored after."""
    old: dict[Any, object]
    new: dict[Any, object]
    if tier is Tier.CORE:
        old, new = before.core, after.core  # type: ignore[assignment]
    elif tier is Tier.WORKING:
        old, new = before.working, after.working  # type: ignore[assignment]
    else:
        old, new = before.entities, after.entities  # type: ignore[assignment]
    if old is new:  # the outcome shares the tier's rows: it changed none of them
        return {}
    return {(tier, key): key in new for key in old.keys() | new.keys()
            if old.get(key) is not new.get(key)}


def _named_rows(op: Op, tier: Tier | None,
                alternatives: list[tuple[ModelState, Alternative]]) -> set[Row]:
    """The rows a changing operation names or an allowed outcome wrote: the step may touch
    them (and emit a change event for them) even where no outcome changes them. A read
    changes nothing, and what it returns is checked already."""
    if tier is None:
        return set()
    named = {a.written for _, a in alternatives if a.written is not None}
    kwargs = op.kwargs
    key = kwargs.get("key")
    block_type = kwargs.get("block_type")
    entity_id = kwargs.get("entity_id")
    if tier is Tier.WORKING and isinstance(key, str) and key in _WORKING_KEY_SET:
        named.add((Tier.WORKING, key))
    elif tier is Tier.CORE and isinstance(block_type, str) and block_type in _BLOCK_TYPE_SET:
        named.add((Tier.CORE, BlockType(block_type)))
    elif tier is Tier.ARCHIVAL and isinstance(entity_id, str):
        named.add((Tier.ARCHIVAL, entity_id))
    return named


@dataclass(frozen=True, slots=True)
class _Scope:
    """The rows an incremental check reads back, and whether working usage is read (when
    an outcome changed working memory or a key's deadline passed)."""

    core: tuple[BlockType, ...]
    working: tuple[str, ...]
    entities: tuple[str, ...]
    working_usage: bool


def _scope(changes: list[dict[Row, bool]], named: set[Row], origins: list[ModelState],
           now_ms: int) -> _Scope:
    """What a step could have changed: the rows named or changed by some outcome, and the
    keys whose deadline passed since the last check (time only moves forward, and the
    last check zeroed the deadlines already past, so those are the ones not yet zero)."""
    rows = set(named)
    for change in changes:
        rows.update(change)
    changed_working = any(tier is Tier.WORKING for change in changes for tier, _ in change)
    for origin in origins:
        lapsed = origin.lapsed(now_ms)
        if lapsed:
            rows.update((Tier.WORKING, e.key) for e in lapsed)
            changed_working = True
    if not rows:
        return _NOTHING_TO_READ
    core = tuple(t for t in _BLOCK_TYPES if (Tier.CORE, t) in rows)
    working = tuple(sorted(k for tier, k in rows if tier is Tier.WORKING))
    entities = tuple(sorted(k for tier, k in rows if tier is Tier.ARCHIVAL))
    return _Scope(core, working, entities, changed_working)


_NOTHING_TO_READ = _Scope((), (), (), False)


async def _one_by_one(keys, read) -> dict:
    """The rows `read` returns for `keys`; a row that refuses to read shows as DAMAGED."""
    rows = {}
    for key in keys:
        try:
            row = await read(key)
        except CorruptionError:
            row = DAMAGED
        if row is not None:
            rows[key] = row
    return rows


async def _read_rows(store, scope: _Scope) -> _View:
    """The rows in `scope` and the totals they feed (working usage, the entity count)."""
    core = await _one_by_one(scope.core, store.core.get_block) if scope.core else {}
    working_bytes = working_count = entity_count = None
    working: dict = {}
    if scope.working:
        working = await _one_by_one(scope.working, store.working.entry)
    if scope.working_usage:
        working_bytes, working_count = await store.working.usage()
    entities: dict = {}
    if scope.entities:
        entities = await _one_by_one(scope.entities, store.archival.get)
        entity_count = await store.archival.count()
    return _View(core, working, entities, None, entity_count, working_bytes, working_count,
                 scope)


async def _read_back(store, workload: Workload) -> _View:
    """Everything the scratch agent holds; a row that refuses to read shows as DAMAGED."""
    try:
        core: dict = {b.block_type: b for b in await store.core.blocks()}
    except CorruptionError:
        core = await _one_by_one(BlockType, store.core.get_block)
    try:
        working: dict = {e.key: e for e in
                         await store.working.entries(limit=WORKING_MEMORY_ENTRIES_COUNT_MAX)}
    except CorruptionError:
        working = await _one_by_one(WORKING_KEYS, store.working.entry)
    order = None
    try:
        listed = await store.archival.list(limit=ENTITY_LIST_COUNT_MAX)
        entities: dict = {e.id: e for e in listed}
        order = [e.id for e in listed]
    except CorruptionError:
        entities = await _one_by_one(workload.entity_ids(), store.archival.get)
    entity_count = await store.archival.count()
    working_bytes, working_count = await store.working.usage()
    return _View(core, working, entities, order, entity_count, working_bytes, working_count)


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
    """The first way the store differs from `state` in what `view` read, or None; also
    checks the limits."""
    scope = view.scope
    core_types = BlockType if scope is None else scope.core
    for block_type in core_types:
        block = state.core.get(block_type)
        damaged = block is not None and state.is_corrupted(Tier.CORE, block_type.value)
        if found := _row_difference(f"core {block_type}", block, damaged, False,
                                    view.core.get(block_type)):
            return found
    working = state.working
    keys = sorted(set(working) | set(view.working)) if scope is None else scope.working
    for key in keys:
        entry = working.get(key)
        live = entry if entry is not None and entry.expires_at_ms > now_ms else None
        damaged = entry is not None and state.is_corrupted(Tier.WORKING, key)
        if found := _row_difference(f"working {key[:24]!r}", live, damaged, live is None,
                                    view.working.get(key)):
            return found
    ids = sorted(set(state.entities) | set(view.entities)) if scope is None else scope.entities
    for entity_id in ids:
        entity = state.entities.get(entity_id)
        damaged = entity is not None and state.is_corrupted(Tier.ARCHIVAL, entity_id)
        if found := _row_difference(f"entity {entity_id[:8]}", entity, damaged, False,
                                    view.entities.get(entity_id)):
            return found
    if view.entity_order is not None:
        expected_order = [e.id for e in state.entities_in_order()]
        if view.entity_order != expected_order:
            return f"archival order: expected {expected_order}, listed {view.entity_order}"
    if view.entity_count is not None and view.entity_count != len(state.entities):
        return f"archival count: expected {len(state.entities)}, counted {view.entity_count}"
    if view.working_bytes is not None:
        live_entries = state.live_working(now_ms)
        used = sum(len(k.encode()) + len(e.value) for k, e in live_entries.items())
        if (view.working_bytes, view.working_count) != (used, len(live_entries)):
            return f"working usage: expected {used}B in {len(live_entries)} keys, store says " \
                   f"{view.working_bytes}B in {view.working_count} keys"
    return _limit_broken(view, state, core_max)


def _limit_broken(view: _View, state: ModelState, core_max: int) -> str | None:
    """Limits hold in what the store reports, whatever the model believes (for rows an
    incremental check did not read, the store held what the model holds when last read)."""
    if view.working_bytes is not None and view.working_count is not None and (
            view.working_bytes > WORKING_MEMORY_SIZE_BYTES_MAX or
            view.working_count > WORKING_MEMORY_ENTRIES_COUNT_MAX):
        return f"working memory over its limits: {view.working_bytes}B, {view.working_count} keys"
    if view.scope is not None and not view.scope.core:
        return None  # no core row was read: they held what the model holds when last read
    blocks = view.core if view.scope is None else \
        {**{t: b for t, b in state.core.items() if t not in view.scope.core}, **view.core}
    sizes = [b.size_bytes for b in blocks.values() if isinstance(b, MemoryBlock)]
    if sum(sizes) > core_max or any(s > CORE_MEMORY_BLOCK_SIZE_BYTES_MAX for s in sizes):
        return f"core memory over its limits: blocks of {sizes} bytes, limit {core_max}"
    return None


def _event_problem(changed: dict[Row, bool], events: dict[Row, ChangeKind],
                   named: set[Row]) -> str | None:
    """How the step's change events differ from what an outcome changed, or None: each
    changed row has an event (set if it is still stored, delete or expired if not), and
    an event on an unchanged row is only for a row the step named or wrote."""
    for row, stored in changed.items():
        kind = events.get(row)
        if kind is None:
            return f"no change event for {row[0]} {str(row[1])[:24]!r}"
        if stored != (kind is ChangeKind.SET):
            return f"a {kind} event for {row[0]} {str(row[1])[:24]!r}, which is " + \
                ("still stored" if stored else "gone")
    for row, kind in events.items():
        if row not in changed and row not in named:
            return f"a {kind} event for {row[0]} {str(row[1])[:24]!r}, which the step left alone"
    return None
