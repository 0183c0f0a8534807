"""A wrong-typed argument to any public method is an InvalidInputError naming the argument,
and changes nothing: never an AttributeError or TypeError from inside, on every backend."""

import inspect

import pytest

from umi_store import Entity, InvalidInputError, SimClock, open_store
from umi_store.store import Store
from umi_store.tiers import ArchivalMemory, CoreMemory, WorkingMemory

from .conftest import store_url

NOT_TEXT = [None, 5, b"bytes", ["x"]]
NOT_WHOLE_NUMBER = [None, "3", 2.5, True]
NOT_A_TYPE = [None, 5, b"note"]


def entity(**fields) -> Entity:
    return Entity(**{"entity_type": "note", "name": "n", "content": "c", **fields})


# For each public method with parameters: valid arguments, then the wrong values to try for
# each argument (one at a time, the others valid). None is left out where None is allowed.
METHODS = {
    "core.set_block": ({"block_type": "human", "content": "x"}, {
        "block_type": NOT_A_TYPE, "content": NOT_TEXT, "label": [5, b"l", ["l"]],
        "importance": ["0.5", True, [0.5]], "if_version": ["1", True, 1.0]}),
    "core.get_block": ({"block_type": "human"}, {"block_type": NOT_A_TYPE}),
    "core.delete_block": ({"block_type": "human"}, {"block_type": NOT_A_TYPE}),
    "core.set_importance": ({"block_type": "human", "importance": 0.5}, {
        "block_type": NOT_A_TYPE, "importance": [None, "0.5", True]}),
    "working.set": ({"key": "k", "value": b"v"}, {
        "key": NOT_TEXT, "value": [None, 5, {"v": 1}, ["v"]],
        "ttl_ms": ["1000", True, 1.5]}),
    **{f"working.{name}": ({"key": "k"}, {"key": NOT_TEXT})
       for name in ("get", "entry", "exists", "ttl_ms", "delete", "touch")},
    "working.set_many": ({"items": {"k": b"v"}}, {
        "items": [None, [("k", b"v")], "kv"], "ttl_ms": ["1000", True, 1.5]}),
    "working.expire": ({"key": "k", "ttl_ms": 1_000}, {
        "key": NOT_TEXT, "ttl_ms": NOT_WHOLE_NUMBER}),
    "working.incr": ({"key": "n"}, {"key": NOT_TEXT, "delta": NOT_WHOLE_NUMBER}),
    "working.append": ({"key": "k", "data": b"more"}, {
        "key": NOT_TEXT, "data": [None, 5, ["more"]]}),
    "working.entries": ({}, {"prefix": NOT_TEXT, "limit": NOT_WHOLE_NUMBER}),
    "working.cleanup_expired": ({}, {"limit": NOT_WHOLE_NUMBER}),
    "archival.remember": ({"content": "Ada", "entity_type": "person"}, {
        "content": NOT_TEXT, "entity_type": NOT_A_TYPE, "name": [5, b"n", ["n"]],
        "metadata": [5, "k=v", {"k": 1}, {1: "v"}, [("k", "v")]],
        "embedding": [5, "0.1", [None], ["x"], [0.5] * 3]}),
    "archival.similar": ({"vector_or_entity_id": [0.5] * 1536}, {
        "vector_or_entity_id": [None, 5, b"v", [None] * 1536, ["x"] * 1536, [0.5] * 3],
        "k": NOT_WHOLE_NUMBER, "entity_type": [5, b"note"]}),
    "archival.remember_many": ({"items": [("Ada", "person")]}, {
        "items": [None, "text", 5, ["not a tuple"], [("only content",)]]}),
    **{f"archival.{name}": ({"entity": entity()}, {
        "entity": [None, "n", {"entity_type": "note", "name": "n", "content": "c"},
                   entity(name=None), entity(name=5), entity(content=None),
                   entity(content=b"c"), entity(id=5), entity(entity_type=None),
                   entity(metadata={"k": 1})]})
       for name in ("store", "update")},
    "archival.get": ({"entity_id": "x"}, {"entity_id": NOT_TEXT}),
    "archival.forget": ({"entity_id": "x"}, {"entity_id": NOT_TEXT}),
    "archival.list": ({}, {"entity_type": [5, b"note"], "limit": NOT_WHOLE_NUMBER,
                           "offset": NOT_WHOLE_NUMBER}),
    "archival.count": ({}, {"entity_type": [5, b"note"]}),
    "archival.search": ({"query": "Ada"}, {
        "query": NOT_TEXT, "entity_type": [5, b"note"], "limit": NOT_WHOLE_NUMBER,
        "vector": [5, b"v", [None] * 1536, [0.5] * 3]}),
    "for_agent": ({"agent": "other"}, {"agent": NOT_TEXT}),
    "core.restore": ({"block_type": "human", "version": 1}, {
        "block_type": NOT_A_TYPE, "version": NOT_WHOLE_NUMBER, "if_version": ["1", True, 1.0]}),
    "archival.restore": ({"entity_id": "x", "version": 1}, {
        "entity_id": NOT_TEXT, "version": NOT_WHOLE_NUMBER, "if_version": ["1", True, 1.0]}),
    "archival.forgotten": ({}, {"limit": NOT_WHOLE_NUMBER}),
    "history": ({"tier": "working", "key": "k"}, {
        "tier": NOT_A_TYPE, "key": NOT_TEXT, "limit": NOT_WHOLE_NUMBER}),
    "history_since": ({"at_ms": 0}, {"at_ms": NOT_WHOLE_NUMBER, "limit": NOT_WHOLE_NUMBER}),
    "as_of": ({"at_ms": 0}, {"at_ms": NOT_WHOLE_NUMBER}),
    "as_actor": ({"actor": "person:ada"}, {"actor": NOT_TEXT}),
}


@pytest.mark.parametrize("field, value", [
    ("metadata", 5), ("metadata", "k=v"), ("embedding", "0.1"), ("embedding", 5),
    ("embedding", [None]), ("embedding", ["x"]),
])
def test_an_entity_with_wrong_typed_metadata_or_embedding_is_invalid_input(field, value):
    with pytest.raises(InvalidInputError, match=field):
        entity(**{field: value})


def public_methods_with_parameters() -> set[str]:
    found = set()
    for prefix, cls in (("core.", CoreMemory), ("working.", WorkingMemory),
                        ("archival.", ArchivalMemory), ("", Store)):
        for name, method in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") and len(inspect.signature(method).parameters) > 1:
                found.add(prefix + name)
    return found


def test_the_table_covers_every_public_method_with_parameters():
    assert set(METHODS) == public_methods_with_parameters()


def names(argument: str, error: Exception) -> bool:
    """Whether the message names the argument, as written or in words ("block type")."""
    message = str(error).lower()
    return argument in message or argument.replace("_", " ") in message


def bound(store, path: str):
    target = store
    for part in path.split("."):
        target = getattr(target, part)
    return target


async def contents(store) -> tuple:
    """Everything the tests' agent holds, to see that a refused call changed nothing."""
    return (await store.core.blocks(), await store.working.entries(),
            await store.archival.list(limit=1000))


@pytest.mark.parametrize("path", sorted(METHODS))
async def test_a_wrong_typed_argument_is_invalid_input_naming_it(store, path):
    await store.core.set_block("human", "kept", label="profile")
    await store.working.set("k", b"v")
    await store.working.set("n", b"41")
    await store.archival.store(entity())
    before = await contents(store)
    valid, wrong_values = METHODS[path]
    problems = []
    for argument, values in wrong_values.items():
        for value in values:
            call = f"{path}({argument}={value!r})"
            try:
                await bound(store, path)(**{**valid, argument: value})
            except InvalidInputError as error:
                if not names(argument, error):
                    problems.append(f"{call}: the message does not name {argument}: {error}")
            except Exception as error:  # noqa: BLE001 - the point is to catch the wrong kind
                problems.append(f"{call} raised {type(error).__name__}: {error}")
            else:
                problems.append(f"{call} was accepted")
    assert problems == []
    assert await contents(store) == before


@pytest.mark.parametrize("argument, value", [
    ("url", None), ("url", 5), ("agent", None), ("agent", 5), ("clock", "now"), ("clock", 5),
    ("core_memory_size_bytes_max", "8192"), ("core_memory_size_bytes_max", None),
    ("core_memory_size_bytes_max", True), ("faults", "storage_write_fail"), ("faults", 5),
])
async def test_open_store_refuses_a_wrong_typed_argument_naming_it(backend_name, tmp_path,
                                                                  argument, value):
    options = {"url": store_url(backend_name, tmp_path), "agent": "tester",
               "clock": SimClock(), argument: value}
    with pytest.raises(InvalidInputError) as refused:
        async with open_store(**options):
            pass
    assert names(argument, refused.value), refused.value
