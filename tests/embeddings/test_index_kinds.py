"""The index writer switches a partition between exact and approximate by its size."""

import numpy as np
import pytest

from embeddings import selectors, services
from embeddings.encoders import encode_query, get_encoder
from embeddings.index.dense import nlist_for
from embeddings.index.reader import reader
from embeddings.index.store import read_manifest
from embeddings.models import Chunk

pytestmark = pytest.mark.django_db
PARTITION = "big"


def unit(rows: int, seed: int) -> np.ndarray:
    dim = get_encoder().dimension
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dim))
    matrix = centres[rng.integers(10, size=rows)] + rng.normal(size=(rows, dim))
    matrix = matrix.astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def store(matrix: np.ndarray) -> list[int]:
    """Embedded chunk rows holding ``matrix``; their ids in row order."""
    start = Chunk.objects.count()
    chunks = Chunk.objects.bulk_create(
        Chunk(
            source_type="test.item",
            source_id=start + i,
            partition=PARTITION,
            field="body",
            position=0,
            text=f"chunk number {start + i}",
            content_hash=f"{start + i:064d}",
            status=Chunk.Status.EMBEDDED,
            vector=row.tobytes(),
            model_name=get_encoder().name,
        )
        for i, row in enumerate(matrix)
    )
    return [chunk.pk for chunk in chunks]


def served() -> tuple[str, list[int]]:
    loaded = reader.get(PARTITION)
    assert loaded is not None
    return loaded.manifest.kind, sorted(loaded.vectors.ids().tolist())


@pytest.fixture
def threshold(settings) -> int:  # type: ignore[no-untyped-def]
    settings.INDEX_APPROXIMATE_ABOVE = 300
    return 300


def test_a_partition_turns_approximate_when_it_crosses_the_threshold(threshold):
    ids = store(unit(threshold, seed=1))
    services.index_sync(PARTITION)
    assert served() == ("flat", ids)
    ids += store(unit(100, seed=2))
    services.index_sync(PARTITION)
    assert served() == ("ivf", ids)
    assert reader.get(PARTITION).vectors.index.nlist == nlist_for(400)


def test_the_approximate_index_finds_each_stored_vector_as_exact_search_does(
    threshold,
):
    matrix = unit(600, seed=3)
    ids = store(matrix)
    services.index_sync(PARTITION)
    hits = [reader.search(row, partitions=[PARTITION], k=1)[0][0] for row in matrix]
    assert served()[0] == "ivf"
    assert hits == ids


def test_a_deleted_chunk_never_comes_back(threshold, settings):
    matrix = unit(600, seed=4)
    ids = store(matrix)
    services.index_sync(PARTITION)
    Chunk.objects.filter(pk__in=ids[:50]).delete()
    services.index_sync(PARTITION)
    settings.INDEX_NPROBE = 1000  # every list: nothing can hide
    found = {
        chunk_id
        for row in matrix[:50]
        for chunk_id, _ in reader.search(row, partitions=[PARTITION], k=20)
    }
    assert served() == ("ivf", ids[50:])
    assert not found & set(ids[:50])
    assert len(found) > 50


def test_a_partition_back_under_half_the_threshold_turns_exact_again(threshold):
    ids = store(unit(400, seed=5))
    services.index_sync(PARTITION)
    Chunk.objects.filter(pk__in=ids[:249]).delete()
    services.index_sync(PARTITION)
    assert served() == ("ivf", ids[249:])  # 151: above half, still correct as is
    Chunk.objects.filter(pk=ids[249]).delete()
    services.index_sync(PARTITION)
    assert served() == ("flat", ids[250:])


def test_an_index_that_outgrew_its_training_is_trained_again(threshold):
    ids = store(unit(400, seed=6))
    services.index_sync(PARTITION)
    trained = reader.get(PARTITION).vectors.index.nlist
    ids += store(unit(400, seed=7))
    services.index_sync(PARTITION)
    assert (trained, reader.get(PARTITION).vectors.index.nlist) == (10, 20)
    assert served() == ("ivf", ids)


def test_rebuild_returns_an_approximate_partition_to_the_database(threshold):
    ids = store(unit(500, seed=8))
    services.index_sync(PARTITION)
    Chunk.objects.filter(pk__in=ids[:10]).delete()  # rows gone behind its back
    manifest = services.index_rebuild(PARTITION)
    assert (manifest.kind, manifest.count) == ("ivf", 490)
    assert served() == ("ivf", ids[10:])


def test_neighbours_are_found_in_an_approximate_partition(threshold):
    matrix = unit(500, seed=9)
    twin = matrix[0] + 0.01 * unit(1, seed=10)[0]
    matrix = np.vstack([matrix, twin / np.linalg.norm(twin)])
    ids = store(matrix)
    services.index_sync(PARTITION)
    pairs = selectors.chunks_neighbours(
        [ids[0]], partition=PARTITION, k=5, min_score=0.99
    )
    assert served()[0] == "ivf"
    assert [(a, b) for a, b, _ in pairs] == [(ids[0], ids[-1])]


def test_batched_neighbours_probe_as_many_lists_as_a_search(threshold, settings):
    matrix = unit(600, seed=11)
    ids = np.array(store(matrix))
    services.index_sync(PARTITION)
    settings.INDEX_NPROBE = 1000  # every list: exact, if the setting is used
    found = reader.neighbours(matrix[:20], PARTITION, 10)
    exact = ids[np.argsort(-(matrix[:20] @ matrix.T), axis=1)[:, :10]]
    assert served()[0] == "ivf"
    assert [[i for i, _ in row] for row in found] == exact.tolist()


def test_keyword_only_hits_get_their_cosine_from_an_approximate_index(
    settings, make_faq, collection
):
    settings.INDEX_APPROXIMATE_ABOVE = 2
    make_faq("How do I reset my password?", "Use the forgot password link.")
    make_faq("Where are my invoices?", "Invoices are under Billing, then History.")
    partition = collection.partition
    query = "billing history"
    hits = selectors.chunks_search(
        query, partitions=[partition], k=10, legs=("keyword",)
    )["keyword"]
    stored = {
        pk: np.frombuffer(blob, dtype=np.float32)
        for pk, blob in Chunk.objects.values_list("pk", "vector")
    }
    vector = encode_query(query)
    assert read_manifest(partition).kind == "ivf"
    assert [h.chunk_id for h in hits] and all(
        h.cosine == pytest.approx(float(stored[h.chunk_id] @ vector), abs=1e-5)
        for h in hits
    )
