"""archival.similar and search(vector=), run on every backend: the same ids, order and
scores from each for the same data (umi_store.similarity)."""

import io
import math

import numpy as np
import pytest

from tests.conftest import postgres_url, wipe_postgres
from umi_store import Entity, InvalidInputError, NotFoundError, SimClock, open_store, similarity
from umi_store.constants import EMBEDDING_DIMENSIONS_COUNT as DIMS
from umi_store.constants import SEARCH_FUSION_RANK_OFFSET, SIMILAR_RESULTS_COUNT_MAX
from umi_store.errors import MissingDependencyError
from umi_store.portable import export_memory, import_memory


def vectors(count: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, DIMS))


def brute_force(query, entities, k):
    """What `similar` must answer, by a formula of its own: every cosine in float64."""
    q = np.asarray(query, dtype=np.float64)
    scored = [(e.id, float(np.dot(q, e.embedding) / (np.linalg.norm(q)
                                                     * np.linalg.norm(e.embedding))))
              for e in entities]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))[:k]


def ids_and_scores(found):
    return [(entity.id, score) for entity, score in found]


async def _fill(store, matrix, entity_type="note"):
    return [await store.archival.remember(f"text {i}", entity_type, name=f"n{i:03}",
                                          embedding=list(row)) for i, row in enumerate(matrix)]


def _assert_matches(found, expected):
    assert [entity_id for entity_id, _ in found] == [entity_id for entity_id, _ in expected]
    for (_, got), (_, want) in zip(found, expected):
        assert got == pytest.approx(want, abs=1e-12)


async def test_similar_to_a_vector_is_exact_cosine_best_first(store):
    entities = await _fill(store, vectors(60))
    query = vectors(1, seed=99)[0]
    found = await store.archival.similar(list(query), k=10)
    assert len(found) == 10 and all(isinstance(e, Entity) for e, _ in found)
    _assert_matches(ids_and_scores(found), brute_force(query, entities, 10))


async def test_a_scan_shared_out_to_threads_gives_the_same_exact_answer(store, monkeypatch):
    # Big stores split the sketch scan into row ranges, one a thread; make this one split
    # into ranges of a block each, so each range's rows must land in the right place.
    monkeypatch.setattr(similarity, "SKETCH_SCAN_BLOCK_ROWS", 8)
    monkeypatch.setattr(similarity, "SKETCH_SCAN_THREAD_ROWS_MIN", 8)
    monkeypatch.setattr(similarity, "_scan_threads_count", lambda: 4)
    entities = await _fill(store, vectors(61))
    query = vectors(1, seed=99)[0]
    for k in (1, 10):
        found = await store.archival.similar(list(query), k=k)
        _assert_matches(ids_and_scores(found), brute_force(query, entities, k))


async def test_near_ties_below_the_sketch_precision_are_still_ranked_exactly(store):
    # Differences of 1e-6 are far below the int8 sketch's resolution: every one of these
    # is a candidate, and the float64 rescoring alone orders them.
    base = vectors(1)[0]
    noise = vectors(40, seed=3) * 1e-6
    entities = await _fill(store, base + noise)
    found = await store.archival.similar(list(base), k=15)
    _assert_matches(ids_and_scores(found), brute_force(base, entities, 15))


async def test_equal_scores_are_ordered_by_id(store):
    row = list(vectors(1)[0])
    for name in ("c", "a", "b"):
        await store.archival.store(Entity("note", name, "same", id=f"id-{name}", embedding=row))
    found = await store.archival.similar(row, k=3)
    assert [entity.id for entity, _ in found] == ["id-a", "id-b", "id-c"]
    assert len({score for _, score in found}) == 1


async def test_similar_to_an_entity_leaves_it_out(store):
    entities = await _fill(store, vectors(20))
    found = await store.archival.similar(entities[4].id, k=5)
    others = [e for e in entities if e.id != entities[4].id]
    _assert_matches(ids_and_scores(found), brute_force(entities[4].embedding, others, 5))


async def test_an_unknown_entity_or_one_without_embedding_is_refused(store):
    plain = await store.archival.remember("no vector", "note")
    with pytest.raises(NotFoundError):
        await store.archival.similar("no-such-id")
    with pytest.raises(InvalidInputError, match="no embedding"):
        await store.archival.similar(plain.id)


async def test_entity_type_narrows_the_answer(store):
    notes = await _fill(store, vectors(10), "note")
    people = await _fill(store, vectors(10, seed=8), "person")
    query = vectors(1, seed=5)[0]
    found = await store.archival.similar(list(query), k=4, entity_type="person")
    _assert_matches(ids_and_scores(found), brute_force(query, people, 4))
    assert not {e.id for e in notes} & {e.id for e, _ in found}


async def test_fewer_entities_than_k_returns_them_all(store):
    entities = await _fill(store, vectors(3))
    await store.archival.remember("no vector", "note")
    found = await store.archival.similar(list(vectors(1, seed=2)[0]), k=10)
    assert sorted(e.id for e, _ in found) == sorted(e.id for e in entities)


async def test_wrong_dimensions_are_refused_on_write_and_query_and_nothing_is_stored(store):
    with pytest.raises(InvalidInputError, match=f"{DIMS} dimensions, got 3"):
        await store.archival.remember("x", "note", embedding=[1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="finite"):
        await store.archival.remember("x", "note", embedding=[math.nan] * DIMS)
    assert await store.archival.count() == 0
    with pytest.raises(InvalidInputError, match=f"{DIMS} dimensions, got 2"):
        await store.archival.similar([1.0, 0.0])
    with pytest.raises(InvalidInputError, match="all zeros"):
        await store.archival.similar([0.0] * DIMS)
    with pytest.raises(InvalidInputError, match="sequence of numbers"):
        await store.archival.similar([None] * DIMS)
    for k in (0, SIMILAR_RESULTS_COUNT_MAX + 1):
        with pytest.raises(InvalidInputError, match="k must be"):
            await store.archival.similar([1.0] * DIMS, k=k)


async def test_a_zero_embedding_scores_zero(store):
    await store.archival.remember("zero", "note", name="zero", embedding=[0.0] * DIMS)
    [(entity, score)] = await store.archival.similar([1.0] * DIMS, k=1)
    assert entity.name == "zero" and score == 0.0


async def test_changes_show_in_the_next_answer(store):
    entities = await _fill(store, vectors(10))
    query = list(entities[0].embedding)
    assert (await store.archival.similar(query, k=1))[0][0].id == entities[0].id
    await store.archival.forget(entities[0].id)
    assert (await store.archival.similar(query, k=1))[0][0].id != entities[0].id
    moved = await store.archival.update(Entity("note", "n005", "moved", id=entities[5].id,
                                               embedding=query))
    assert (await store.archival.similar(query, k=1))[0][0].id == moved.id
    await store.archival.update(Entity("person", "n005", "moved", id=entities[5].id,
                                       embedding=query))
    assert await store.archival.similar(query, k=1, entity_type="note") != \
        [(moved, pytest.approx(1.0))]


async def test_a_batch_sees_its_own_embeddings_and_a_rollback_leaves_none(store):
    query = list(vectors(1)[0])
    await store.archival.remember("kept", "note", name="kept", embedding=list(vectors(1, 4)[0]))
    await store.archival.similar(query, k=1)  # the sketches are cached now
    with pytest.raises(RuntimeError):
        async with store.batch() as batch:
            await batch.archival.remember("rolled back", "note", name="gone", embedding=query)
            assert (await batch.archival.similar(query, k=1))[0][0].name == "gone"
            raise RuntimeError("roll back")
    assert [e.name for e, _ in await store.archival.similar(query, k=5)] == ["kept"]


async def test_rows_of_schema_4_without_sketch_or_exact_bytes_are_read_right(store,
                                                                             monkeypatch):
    with monkeypatch.context() as patched:  # rows as an older Umi (or one without numpy) left
        patched.setattr(similarity, "sketch", lambda embedding: None)
        patched.setattr(similarity, "exact_bytes", lambda embedding: None)
        entities = await _fill(store, vectors(12))
    query = vectors(1, seed=11)[0]
    _assert_matches(ids_and_scores(await store.archival.similar(list(query), k=5)),
                    brute_force(query, entities, 5))


async def test_without_numpy_similar_says_what_to_install_and_writes_still_work(store,
                                                                                 monkeypatch):
    monkeypatch.setattr(similarity, "_numpy", lambda: None)
    stored = await store.archival.remember("x", "note", embedding=[0.5] * DIMS)
    assert (await store.archival.get(stored.id)).embedding == (0.5,) * DIMS
    with pytest.raises(MissingDependencyError, match=r"pip install 'umi\[similarity\]'"):
        await store.archival.similar([0.5] * DIMS)
    with pytest.raises(MissingDependencyError):
        await store.archival.search("x", vector=[0.5] * DIMS)


async def test_search_with_a_vector_fuses_text_and_vector_ranks(store):
    rows = vectors(3)
    query = rows[0]
    await store.archival.remember("alpha far", "note", name="near", embedding=list(query))
    store.clock.advance(1)
    await store.archival.remember("alpha close", "note", name="both",
                                  embedding=list(query + rows[1] * 0.3))
    store.clock.advance(1)
    text = await store.archival.remember("alpha only", "note", name="text")
    found = await store.archival.search("alpha", vector=list(query), limit=10)
    # Text ranks (newest first): text 1, both 2, near 3; vector ranks: near 1, both 2.
    offset = SEARCH_FUSION_RANK_OFFSET
    assert 1 / (offset + 1) + 1 / (offset + 3) > 2 / (offset + 2) > 1 / (offset + 1)
    assert [e.name for e in found] == ["near", "both", "text"]
    assert [e.name for e in await store.archival.search("", vector=list(query))] == \
        ["near", "both"]
    assert [e.name for e in await store.archival.search("alpha")] == ["text", "both", "near"]
    assert text.embedding is None


async def test_the_embed_hook_fills_in_missing_embeddings(backend_name, tmp_path):
    from tests.conftest import store_url
    seen = []

    async def embed(text: str):
        seen.append(text)
        return [float(len(text))] + [1.0] * (DIMS - 1)

    async with open_store(store_url(backend_name, tmp_path), clock=SimClock(),
                          embed=embed) as store:
        plain = await store.archival.remember("four", "note")
        given = await store.archival.remember("kept", "note", name="k", embedding=[2.0] * DIMS)
        [batch] = await store.archival.remember_many([("in a batch", "note")])
        assert seen == ["four", "in a batch"]
        assert plain.embedding[0] == 4.0 and given.embedding == (2.0,) * DIMS
        assert (await store.archival.get(batch.id)).embedding[0] == 10.0
    async with open_store(store_url(backend_name, tmp_path), clock=SimClock(),
                          embed=lambda text: [1.0]) as store:
        with pytest.raises(InvalidInputError, match="dimensions"):
            await store.archival.remember("short vector", "note", name="bad")


async def test_an_as_of_view_has_no_embeddings_to_compare(store):
    await _fill(store, vectors(3))
    past = store.as_of(store.clock.now_ms())
    assert await past.archival.similar([1.0] * DIMS) == []


@pytest.mark.postgres
async def test_every_backend_gives_the_same_ids_order_and_scores(tmp_path):
    url = postgres_url()
    await wipe_postgres(url)
    matrix = np.vstack([vectors(150), vectors(1)[0] + vectors(20, seed=9) * 1e-5])
    queries = [list(vectors(1, seed=s)[0]) for s in (21, 22)] + [list(matrix[3])]
    answers = []
    for store_at in ("sim://?seed=3", f"sqlite:///{tmp_path}/same.db", url):
        async with open_store(store_at, clock=SimClock()) as store:
            await _fill(store, matrix[:100], "note")
            await _fill(store, matrix[100:], "person")
            answers.append([ids_and_scores(await store.archival.similar(q, k=25, entity_type=t))
                            for q in queries for t in (None, "person")])
    assert answers[0] == answers[1] == answers[2]


async def test_embeddings_survive_export_and_import_and_stay_searchable(store, tmp_path):
    entities = await _fill(store, vectors(8))
    out = io.StringIO()
    await export_memory(store, out, [store.agent])
    async with open_store(f"sqlite:///{tmp_path}/copy.db", agent=store.agent,
                          clock=SimClock()) as copy:
        await import_memory(copy, io.StringIO(out.getvalue()))
        query = list(entities[2].embedding)
        assert ids_and_scores(await copy.archival.similar(query, k=8)) == \
            ids_and_scores(await store.archival.similar(query, k=8))
