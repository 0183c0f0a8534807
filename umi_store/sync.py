"""The store without `await`: for scripts, notebooks and code written against the seed's
synchronous API.

    from umi_store.sync import open_store

    with open_store("sqlite:///umi.db", agent="default") as store:
        store.core.set_block("human", "Prefers short answers.")
        print(store.core.render())

The async store runs on a private event loop in a thread of its own, so this works where
the calling thread already runs a loop (Jupyter). Every method of the sync tiers is made
from the async tier's method of the same name: the same parameters, documentation and
errors, the result returned instead of awaited.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from .dst.clock import Clock, SimClock
from .errors import InvalidInputError
from .models import ChangeEvent
from .store import Batch, Store
from .store import open_store as open_async_store
from .tiers import ArchivalMemory, CoreMemory, WorkingMemory

T = TypeVar("T")
SYNC_LOOP_THREAD_NAME = "umi-store-sync"


class LoopThread:
    """A private event loop running forever on a daemon thread, until `stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever,
                                        name=SYNC_LOOP_THREAD_NAME, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the private loop and wait for its result (or its error)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise InvalidInputError("the sync store was called from its own event loop "
                                    "thread; use the async store there")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop thread (the store's objects live there)."""
        async def on_loop() -> T:
            return function(*args, **kwargs)
        return self.run(on_loop())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _synced(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A method that runs `original` (a coroutine or plain method) on the loop thread."""
    if inspect.iscoroutinefunction(original):
        def method(self: Synced[Any], *args: Any, **kwargs: Any) -> Any:
            return self._loop.run(getattr(self._target, name)(*args, **kwargs))
    else:
        def method(self: Synced[Any], *args: Any, **kwargs: Any) -> Any:
            return self._loop.call(getattr(self._target, name), *args, **kwargs)
    functools.update_wrapper(method, original)  # name, docstring, signature (via __wrapped__)
    return method


class Synced(Generic[T]):
    """A synchronous view of one async object; subclasses name the class they mirror
    (`class SyncCoreMemory(Synced[CoreMemory], mirrors=CoreMemory)`) and get a method for
    each of its public methods."""

    mirrors: ClassVar[type]

    def __init_subclass__(cls, mirrors: type, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.mirrors = mirrors
        for name, member in inspect.getmembers(mirrors, inspect.isfunction):
            if not name.startswith("_") and name not in cls.__dict__ \
                    and not inspect.isasyncgenfunction(member):
                setattr(cls, name, _synced(name, member))

    def __init__(self, target: T, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __repr__(self) -> str:
        return f"<sync {self._target!r}>"

    if TYPE_CHECKING:  # the generated methods, seen by type checkers
        def __getattr__(self, name: str) -> Any: ...


class SyncCoreMemory(Synced[CoreMemory], mirrors=CoreMemory):
    """CoreMemory without await: set_block, get_block, blocks, render, ..."""


class SyncWorkingMemory(Synced[WorkingMemory], mirrors=WorkingMemory):
    """WorkingMemory without await: set, get, delete, ttl_ms, entries, ..."""


class SyncArchivalMemory(Synced[ArchivalMemory], mirrors=ArchivalMemory):
    """ArchivalMemory without await: remember, store, get, search, list, ..."""


class SyncClock(Synced[Clock], mirrors=SimClock):
    """The store's clock; `advance` runs on the store's loop, where its sleepers wait."""


class SyncBatch:
    """The tiers inside `store.batch()`, without await: each operation joins its transaction."""

    core: SyncCoreMemory
    working: SyncWorkingMemory
    archival: SyncArchivalMemory

    def __init__(self, batch: Batch, loop: LoopThread) -> None:
        self.core = SyncCoreMemory(batch.core, loop)
        self.working = SyncWorkingMemory(batch.working, loop)
        self.archival = SyncArchivalMemory(batch.archival, loop)


class SyncStore(Synced[Store], mirrors=Store):
    """An open store for one agent, without await: `core`, `working`, `archival`, `clock`."""

    agent: str
    url: str
    seed: int | None
    core: SyncCoreMemory
    working: SyncWorkingMemory
    archival: SyncArchivalMemory
    clock: SyncClock

    def __init__(self, target: Store, loop: LoopThread) -> None:
        super().__init__(target, loop)
        self.agent = target.agent
        self.url = target.url
        self.seed = target.seed
        self.core = SyncCoreMemory(target.core, loop)
        self.working = SyncWorkingMemory(target.working, loop)
        self.archival = SyncArchivalMemory(target.archival, loop)
        self.clock = SyncClock(target.clock, loop)

    def batch(self) -> AbstractContextManager[SyncBatch]:
        """Many operations in one transaction, committed once when the block ends; all or
        nothing (see umi_store.Store.batch)."""
        return _batch(self._loop, self._target)

    def for_agent(self, agent: str) -> SyncStore:
        """The same storage (and connection), seen as another agent."""
        return SyncStore(self._loop.call(self._target.for_agent, agent), self._loop)

    def as_actor(self, actor: str) -> SyncStore:
        """The same store, its writes attributed to `actor` in history and change events."""
        return SyncStore(self._loop.call(self._target.as_actor, actor), self._loop)

    def as_of(self, at_ms: int) -> SyncStore:
        """A read-only view of this agent's memory as it stood at `at_ms` (store-clock ms)."""
        return SyncStore(self._loop.call(self._target.as_of, at_ms), self._loop)

    def changes(self) -> Iterator[ChangeEvent]:
        """Committed changes to this agent's memory, as they happen, from any process;
        each `next` waits for the next one. Close it (`contextlib.closing`) to stop."""
        feed = cast(AsyncGenerator[ChangeEvent, None], self._target.changes())

        async def next_event() -> ChangeEvent:
            return await anext(feed)
        try:
            while True:
                try:
                    yield self._loop.run(next_event())
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(feed.aclose())


@contextmanager
def _entered(loop: LoopThread, context: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """An async context manager, entered and left on the loop thread: the sync block's
    error, if any, reaches its exit."""
    entered = loop.run(context.__aenter__())  # type: ignore[arg-type]
    try:
        yield entered
    except BaseException as exc:
        if not loop.run(context.__aexit__(type(exc), exc, exc.__traceback__)):  # type: ignore[arg-type]
            raise
    else:
        loop.run(context.__aexit__(None, None, None))  # type: ignore[arg-type]


@contextmanager
def _batch(loop: LoopThread, store: Store) -> Iterator[SyncBatch]:
    with _entered(loop, loop.call(store.batch)) as batch:
        yield SyncBatch(batch, loop)


@contextmanager
def open_store(url: str, **options: Any) -> Iterator[SyncStore]:
    """Open the store at `url` for `agent` (the keywords of umi_store.open_store); closed
    when the block ends."""
    loop = LoopThread()
    try:
        context: AbstractAsyncContextManager[Store] = loop.call(open_async_store, url,
                                                                **options)
        with _entered(loop, context) as store:
            yield SyncStore(store, loop)
    finally:
        loop.stop()


open_store.__signature__ = inspect.signature(open_async_store)  # type: ignore[attr-defined]


# The stub (sync.pyi) that type checkers read: generated from the classes above, so the
# sync API is typed with the async methods' own signatures. A test checks it is current;
# regenerate with `python -m umi_store.sync > umi_store/sync.pyi`.
_STUB_IMPORTS = {
    "collections.abc": ("Iterable", "Iterator", "Mapping", "Sequence"),
    "contextlib": ("AbstractContextManager",),
    ".dst.clock": ("Clock",),
    ".dst.faults": ("FaultInjector",),
    ".models": ("AgentSummary", "BlockType", "ChangeEvent", "Entity", "EntityType",
                "HistoryRecord", "MemoryBlock", "Tier", "WorkingEntry"),
    ".tiers.context": ("EmbedHook",),
}


def _stub_parameters(signature: inspect.Signature) -> str:
    parts, starred = [], False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not starred:
            parts.append("*")
            starred = True
        text = parameter.name if parameter.name == "self" else \
            f"{parameter.name}: {parameter.annotation}"
        parts.append(text if parameter.default is parameter.empty else f"{text} = ...")
    return ", ".join(parts)


def _stub_method(name: str, member: Callable[..., Any], indent: str = "    ") -> str:
    signature = inspect.signature(member, follow_wrapped=True)
    text = f"{indent}def {name}({_stub_parameters(signature)}) -> " \
           f"{signature.return_annotation}: ..."
    # In a stub a class's own list() shadows the builtin, as in the tiers themselves.
    return re.sub(r"(?<![\w.])list\[", "builtins.list[", text)


def stub_text() -> str:
    """The text of sync.pyi."""
    body: list[str] = []
    for cls in (SyncCoreMemory, SyncWorkingMemory, SyncArchivalMemory, SyncClock, SyncBatch,
                SyncStore):
        body += ["", "", f"class {cls.__name__}:", f'    """{cls.__doc__}"""', ""]
        fields = cls.__dict__.get("__annotations__", {})
        body += [f"    {name}: {annotation}" for name, annotation in fields.items()]
        body += [""] if fields else []
        body += [_stub_method(name, member) for name, member in sorted(vars(cls).items())
                 if inspect.isfunction(member) and not name.startswith("_")]
    signature = inspect.signature(open_async_store)
    body += ["", "", f"def open_store({_stub_parameters(signature)}) -> "
             "AbstractContextManager[SyncStore]: ..."]
    used = set(re.findall(r"\w+", "\n".join(body)))
    lines = ["# Generated from umi_store/sync.py by `python -m umi_store.sync`: do not edit.",
             "# ruff: noqa: E501",
             "from __future__ import annotations", "",
             "import builtins  # the tiers say builtins.list where they define list()"]
    for module, names in _STUB_IMPORTS.items():
        if wanted := [name for name in names if name in used]:
            lines.append(f"from {module} import {', '.join(wanted)}")
    lines += body
    return "\n".join(lines) + "\n"


__all__ = ["SyncArchivalMemory", "SyncBatch", "SyncClock", "SyncCoreMemory", "SyncStore",
           "SyncWorkingMemory", "open_store"]

if __name__ == "__main__":
    print(stub_text(), end="")
