"""Differential property test: the same operations into every backend and the model.

Hypothesis picks the operations and shrinks a failure to the shortest sequence that
shows it. One event loop per state machine; rules run their coroutines on it.
"""

import asyncio
import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from umi_store.dst import Op, Simulation, SimulationConfig
from umi_store.dst.workload import ADVANCES_MS, NAMES, QUERIES, TTLS_MS, VOCABULARY, WORKING_KEYS
from umi_store.constants import EMBEDDING_DIMENSIONS_COUNT
from umi_store.models import BlockType, Entity, EntityType
from umi_store.tiers.archival import entity_id

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
EXAMPLES_COUNT = int(os.environ.get("UMI_DIFFERENTIAL_EXAMPLES", "40"))
AGENT = SimulationConfig(0, 0).agent


def _backend_urls() -> list[str]:
    urls = ["sim://?seed=0", "sqlite:///:memory:"]
    if os.environ.get("UMI_TEST_POSTGRES_URL"):
        urls.append(os.environ["UMI_TEST_POSTGRES_URL"])
    return urls


keys = st.sampled_from(WORKING_KEYS[:5] + ("cfg/a", "cfg/ü"))
# No whitespace, '+' or '_' in values: int() would read " 5" or "1_0" as integers.
values = st.one_of(st.integers(-10**6, 10**6).map(lambda n: str(n).encode()),
                   st.binary(min_size=1, max_size=40).map(
                       lambda b: bytes(c for c in b if c > 0x20 and c not in b"+_") or b"x"))
ttls = st.sampled_from(TTLS_MS)
# Text a backend may mishandle: NUL (Postgres text refuses it), case folds that change
# length (ß, ﬁ), and anything hypothesis draws.
text = st.one_of(st.sampled_from(VOCABULARY + ("nul\x00", "ǅ", "İ")), st.text(max_size=12))
contents = st.lists(text, min_size=1, max_size=4).map(" ".join)
entity_types = st.sampled_from(list(EntityType))
names = st.sampled_from(NAMES)


class BackendsAgreeWithTheModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        urls = _backend_urls()
        self.lines: list[list[str]] = [[] for _ in urls]
        self.simulations = [Simulation(SimulationConfig(0, 0, url=url), log=lines.append)
                            for url, lines in zip(urls, self.lines)]
        self.openings = [s.opened() for s in self.simulations]
        for opening in self.openings:
            self.loop.run_until_complete(opening.__aenter__())

    def teardown(self) -> None:
        for opening in self.openings:
            self.loop.run_until_complete(opening.__aexit__(None, None, None))
        self.loop.close()

    def _run(self, op_name: str, **kwargs) -> None:
        op = Op(op_name, kwargs)
        for simulation in self.simulations:
            violation = self.loop.run_until_complete(simulation.step(op))
            assert violation is None, f"{simulation.config.url}: {violation.report()}"

    @invariant()
    def every_backend_logged_the_same_outcome(self) -> None:
        assert all(lines == self.lines[0] for lines in self.lines)

    @rule(ms=st.one_of(st.sampled_from(ADVANCES_MS), st.integers(1, 10_000)))
    def advance(self, ms):
        self._run("clock.advance", ms=ms)

    @rule(key=keys, value=values, ttl_ms=ttls)
    def working_set(self, key, value, ttl_ms):
        self._run("working.set", key=key, value=value, ttl_ms=ttl_ms)

    @rule(key=keys, method=st.sampled_from(["get", "delete", "touch", "ttl_ms"]))
    def working_key(self, key, method):
        self._run(f"working.{method}", key=key)

    @rule(key=keys, ttl_ms=st.sampled_from([t for t in TTLS_MS if t is not None]))
    def working_expire(self, key, ttl_ms):
        self._run("working.expire", key=key, ttl_ms=ttl_ms)

    @rule(key=keys, delta=st.integers(-5, 5))
    def working_incr(self, key, delta):
        self._run("working.incr", key=key, delta=delta)

    @rule(key=keys, data=values)
    def working_append(self, key, data):
        self._run("working.append", key=key, data=data)

    @rule(prefix=st.sampled_from(["", "k", "k1", "cfg/", "c"]), limit=st.integers(0, 4))
    def working_entries(self, prefix, limit):
        self._run("working.entries", prefix=prefix, limit=limit)

    @rule()
    def working_cleanup(self):
        self._run("working.cleanup_expired")

    @rule(block_type=st.sampled_from(list(BlockType)), content=contents,
          label=st.one_of(st.none(), text), importance=st.sampled_from([None, 0.0, 0.3, 1.0]),
          if_version=st.one_of(st.none(), st.integers(0, 3)))
    def core_set(self, block_type, content, label, importance, if_version):
        self._run("core.set_block", block_type=block_type, content=content, label=label,
                  importance=importance, if_version=if_version)

    @rule(block_type=st.sampled_from(list(BlockType)))
    def core_delete(self, block_type):
        self._run("core.delete_block", block_type=block_type)

    @rule(block_type=st.sampled_from(list(BlockType)), importance=st.floats(0, 1))
    def core_importance(self, block_type, importance):
        self._run("core.set_importance", block_type=block_type, importance=importance)

    @rule(content=contents, entity_type=entity_types, name=st.one_of(st.none(), names))
    def archival_remember(self, content, entity_type, name):
        self._run("archival.remember", content=content, entity_type=entity_type, name=name)

    @rule(method=st.sampled_from(["store", "update"]), entity_type=entity_types, name=names,
          content=contents, metadata=st.dictionaries(st.sampled_from(["a", "ü"]), text, max_size=2),
          embedding=st.sampled_from([None, (0.1,) * EMBEDDING_DIMENSIONS_COUNT, (1.0,)]))
    def archival_store(self, method, entity_type, name, content, metadata, embedding):
        self._run(f"archival.{method}",
                  entity=Entity(entity_type, name, content, "", metadata, embedding))

    @rule(method=st.sampled_from(["core.render", "core.blocks", "working.clear"]))
    def whole_tier(self, method):
        self._run(method)

    @rule(entity_type=entity_types, name=names)
    def archival_forget(self, entity_type, name):
        self._run("archival.forget", entity_id=entity_id(AGENT, entity_type, name))

    @rule(query=st.one_of(st.sampled_from(QUERIES), text),
          entity_type=st.one_of(st.none(), entity_types), limit=st.integers(1, 5))
    def archival_search(self, query, entity_type, limit):
        self._run("archival.search", query=query, entity_type=entity_type, limit=limit)

    @rule(entity_type=st.one_of(st.none(), entity_types), offset=st.integers(0, 3))
    def archival_list(self, entity_type, offset):
        self._run("archival.list", entity_type=entity_type, limit=3, offset=offset)


TestBackendsAgreeWithTheModel = BackendsAgreeWithTheModel.TestCase
TestBackendsAgreeWithTheModel.settings = settings(
    settings.get_profile("ci"), max_examples=EXAMPLES_COUNT, stateful_step_count=30)
