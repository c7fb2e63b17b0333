"""The contract of ``embeddings.index.base``, one suite for every backend: each
dense backend (FAISS flat and ivf, pgvector) and each keyword backend (tantivy)
must pass all of it, as django-modelsearch runs one suite against each search
backend. pgvector runs in a PostgreSQL of the tests' own with the extension
(``tests.servers.pgvector_bin``)."""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.index.base import DenseIndex, KeywordIndex
from embeddings.index.dense import FaissIndex
from embeddings.index.keywords import TantivyKeywords
from embeddings.index.pgvector import PgVectorIndex, ensure
from tests.servers import pgvector_bin, postgres

DIMENSION = 32


def unit(matrix: np.ndarray) -> np.ndarray:
    matrix = matrix.astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def topics(rows: int, seed: int = 1) -> np.ndarray:
    """Unit vectors around twenty centres, like embeddings of a few topics."""
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(20, DIMENSION))
    noise = rng.normal(scale=0.3, size=(rows, DIMENSION))
    return unit(middle[rng.integers(20, size=rows)] + noise)


def ids(*numbers: int) -> np.ndarray:
    return np.asarray(numbers, dtype=np.int64)


# --- dense ---------------------------------------------------------------------------

DENSE: dict[str, Callable[[], DenseIndex]] = {
    "faiss-flat": lambda: FaissIndex.trained(topics(1), kind="flat"),
    # Lists learnt from 800 vectors of the same topics; probing every list.
    "faiss-ivf": lambda: FaissIndex.trained(topics(800, seed=9), kind="ivf"),
}


@pytest.fixture(scope="module")
def pgvector_connection() -> Iterator[Any]:
    import psycopg

    with (
        postgres(bin=pgvector_bin()) as server,
        psycopg.connect(server.url, autocommit=True) as connection,
    ):
        ensure(connection, DIMENSION)
        yield connection


@pytest.fixture(params=[*sorted(DENSE), "pgvector"])
def dense(request, settings) -> DenseIndex:
    settings.INDEX_NPROBE = 1_000  # the contract is exact search; recall is bench's
    if request.param == "pgvector":  # a partition of its own in the one table
        connection = request.getfixturevalue("pgvector_connection")
        return PgVectorIndex(connection, f"t-{uuid.uuid4().hex[:12]}", DIMENSION)
    return DENSE[request.param]()


def test_dense_holds_what_was_added(dense):
    matrix = topics(50)
    dense.add(np.arange(100, 150, dtype=np.int64), matrix)
    assert (len(dense), dense.dimension) == (50, DIMENSION)
    assert sorted(dense.ids().tolist()) == list(range(100, 150))


def test_dense_search_ranks_by_cosine_best_first(dense):
    matrix = topics(60)
    dense.add(np.arange(1, 61, dtype=np.int64), matrix)
    queries = topics(5, seed=4)
    found = dense.search(queries, 10)
    for query, hits in zip(queries, found, strict=True):
        expected = np.argsort(-(matrix @ query))[:10] + 1
        assert [i for i, _ in hits] == expected.tolist()
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(
            float(matrix[expected[0] - 1] @ query), abs=1e-5
        )


def test_dense_finds_each_vector_as_its_own_nearest(dense):
    matrix = topics(40)
    dense.add(np.arange(7, 47, dtype=np.int64), matrix)
    found = dense.search(matrix, 1)
    assert [hits[0][0] for hits in found] == list(range(7, 47))
    assert all(hits[0][1] == pytest.approx(1.0, abs=1e-5) for hits in found)


def test_dense_gives_fewer_than_k_when_it_holds_fewer(dense):
    dense.add(ids(1, 2, 3), topics(3))
    assert [len(hits) for hits in dense.search(topics(2, seed=5), 10)] == [3, 3]


def test_dense_empty_answers_nothing(dense):
    assert len(dense) == 0
    assert dense.search(topics(2), 5) == [[], []]
    assert dense.vectors([1, 2]) == {}


def test_dense_adding_an_id_again_replaces_its_vector(dense):
    first, second = topics(2, seed=6)
    dense.add(ids(5), first[None])
    dense.add(ids(5), second[None])
    assert len(dense) == 1
    assert np.allclose(dense.vectors([5])[5], second)
    assert dense.search(second[None], 1)[0][0][0] == 5


def test_dense_removes_for_real_and_ignores_unknown_ids(dense):
    matrix = topics(30)
    dense.add(np.arange(1, 31, dtype=np.int64), matrix)
    dense.remove(ids(*range(1, 11), 999))
    assert len(dense) == 20
    found = {i for hits in dense.search(matrix, 30) for i, _ in hits}
    assert found == set(range(11, 31))
    dense.remove(ids())  # nothing: no error


def test_dense_gives_the_stored_vectors_of_the_ids_it_holds(dense):
    matrix = topics(10)
    dense.add(np.arange(1, 11, dtype=np.int64), matrix)
    stored = dense.vectors([3, 8, 42])
    assert sorted(stored) == [3, 8]
    assert np.allclose(stored[3], matrix[2]) and np.allclose(stored[8], matrix[7])


# --- keywords ------------------------------------------------------------------------

KEYWORDS: dict[str, Callable[[Path], KeywordIndex]] = {
    "tantivy": lambda directory: TantivyKeywords(directory),
}

TEXTS = {
    1: "How do I reset my password?",
    2: "Export contacts to a CSV file",
    3: "Share a calendar with my team",
    4: "Password rules for new accounts",
    5: "Reset the calendar to its defaults",
}


@pytest.fixture(params=sorted(KEYWORDS))
def keywords(request, tmp_path) -> KeywordIndex:
    return KEYWORDS[request.param](tmp_path / "keywords")


def test_keywords_find_chunks_by_their_terms(keywords):
    keywords.apply(added=list(TEXTS.items()))
    assert len(keywords) == 5
    assert {i for i, _, _ in keywords.search("password", k=10)} == {1, 4}
    assert keywords.search("exporting contact", k=10)[0][0] == 2  # stemmed


def test_keywords_rank_a_chunk_holding_more_of_the_query_first(keywords):
    keywords.apply(added=list(TEXTS.items()))
    hits = keywords.search("reset password", k=10)
    assert hits[0][0] == 1  # both terms
    coverages = [coverage for _, _, coverage in hits]
    assert coverages == sorted(coverages, reverse=True)
    assert 0 < coverages[-1] < coverages[0]
    assert all(bm25 > 0 for _, bm25, _ in hits)


def test_keywords_answer_nothing_for_no_terms_or_no_match(keywords):
    keywords.apply(added=list(TEXTS.items()))
    assert keywords.search("the and of", k=10) == []  # stop words only
    assert keywords.search("xylophone", k=10) == []
    assert keywords.search("password", k=0) == []


def test_keywords_applying_the_same_change_twice_keeps_one_per_chunk(keywords):
    keywords.apply(added=list(TEXTS.items()))
    keywords.apply(added=[(1, TEXTS[1]), (2, TEXTS[2])])
    assert len(keywords) == 5
    assert [i for i, _, _ in keywords.search("contacts", k=10)] == [2]


def test_keywords_remove_and_add_in_one_commit(keywords):
    keywords.apply(added=list(TEXTS.items()))
    keywords.apply(removed=[1, 4], added=[(6, "Forgotten password help")])
    assert len(keywords) == 4
    assert [i for i, _, _ in keywords.search("password", k=10)] == [6]
    keywords.apply(removed=[999])  # unknown ids: nothing
    assert len(keywords) == 4


def test_keywords_rebuild_starts_from_empty(keywords):
    keywords.apply(added=list(TEXTS.items()))
    keywords.apply(added=[(9, "Printer setup")], rebuild=True)
    assert len(keywords) == 1
    assert keywords.search("password", k=10) == []
    assert [i for i, _, _ in keywords.search("printer", k=10)] == [9]
