import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.index import store
from embeddings.index.base import IndexCorrupt
from embeddings.index.dense import FaissIndex, nlist_for
from embeddings.index.reader import reader


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def publish(ids: list[int], matrix: np.ndarray, previous: int = 0) -> store.Manifest:
    """Publish chunks ``ids``; chunk n belongs to source ("t.item", 10 * n)."""
    index = FaissIndex.build(matrix, np.array(ids, dtype=np.int64), kind="flat")
    sources = store.Sources.of((i, "t.item", 10 * i) for i in ids)
    with store.writer_lock("p"):
        return store.publish("p", index, model="m", previous=previous, sources=sources)


def test_publish_writes_a_manifest_that_names_and_checks_its_file(index_dir):
    manifest = publish([10, 11, 12], unit(3))
    on_disk = json.loads((index_dir / "p" / "manifest.json").read_text())
    data = (index_dir / "p" / on_disk["file"]).read_bytes()
    assert on_disk == {
        "model": "m",
        "dimension": 8,
        "count": 3,
        "checksum": hashlib.sha256(data).hexdigest(),
        "version": 1,
        "file": "vectors-00000001.faiss",
        "created": manifest.created,
        "kind": "flat",
        "sources": "sources-00000001.npz",
        "sources_checksum": hashlib.sha256(
            (index_dir / "p" / "sources-00000001.npz").read_bytes()
        ).hexdigest(),
        "keywords_checksum": "",
    }
    # The version keeps its own copy: the fallback if manifest.json is damaged.
    assert json.loads((index_dir / "p" / "manifest-00000001.json").read_text()) == (
        on_disk
    )
    assert not list((index_dir / "p").glob("*.tmp"))


def test_the_reader_knows_each_indexed_chunks_source(index_dir):
    publish([12, 10, 11], unit(3))
    sources = reader.get("p").sources
    assert sources.find([11, 99, 12, 5]) == {11: ("t.item", 110), 12: ("t.item", 120)}
    assert sources.find([]) == {}
    mixed = store.Sources.of([(3, "b.two", 30), (1, "a.one", 10), (2, "b.two", 20)])
    assert mixed.find([1, 2, 3, 4]) == {
        1: ("a.one", 10),
        2: ("b.two", 20),
        3: ("b.two", 30),
    }
    assert store.Sources.of([]).find([1]) == {}


def test_an_unreadable_sources_file_leaves_the_index_searchable(index_dir, caplog):
    manifest = publish([1, 2], unit(2))
    (index_dir / "p" / manifest.sources).write_bytes(b"garbage")
    loaded = reader.get("p")
    assert loaded.sources is None  # hits are looked up in the database instead
    assert len(loaded.vectors) == 2
    assert "sources-00000001.npz does not match its manifest checksum" in caplog.text
    assert "does not match" in reader.problems["p"]


def test_inner_product_on_unit_vectors_is_cosine():
    matrix = unit(50)
    publish(list(range(100, 150)), matrix)
    hits = reader.search(matrix[7], partitions=["p"], k=3)
    assert hits[0][0] == 107
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [h[1] for h in hits] == sorted((h[1] for h in hits), reverse=True)


def test_reader_swaps_in_a_new_version_and_keeps_serving_its_copy(index_dir):
    matrix = unit(4)
    publish([1, 2], matrix[:2])
    served = reader.get("p").vectors
    publish([1, 2, 3, 4], matrix, previous=1)
    assert len(served) == 2  # the old copy was not touched
    assert len(reader.get("p").vectors) == 4


def test_the_reader_maps_a_flat_index_and_the_writer_gets_a_copy(index_dir):
    matrix = unit(3)
    manifest = publish([1, 2, 3], matrix)
    path = index_dir / "p" / manifest.file
    served = reader.get("p").vectors
    # One copy per machine: the file's pages, shared by every process serving it.
    assert str(path) in Path("/proc/self/maps").read_text()
    _, private = store.load_published("p")
    private.remove(np.array([1], dtype=np.int64))  # changing it is safe
    path.unlink()  # pruned while still served
    _, ids = served.search_arrays(matrix, 1)
    assert len(served) == 3 and ids[:, 0].tolist() == [1, 2, 3]


def test_old_versions_are_pruned(index_dir):
    for version in range(6):
        publish([1], unit(1), previous=version)
    files = sorted(p.name for p in (index_dir / "p").glob("*-*.*"))
    assert files == [
        "manifest-00000004.json",
        "manifest-00000005.json",
        "manifest-00000006.json",
        "sources-00000004.npz",
        "sources-00000005.npz",
        "sources-00000006.npz",
        "vectors-00000004.faiss",
        "vectors-00000005.faiss",
        "vectors-00000006.faiss",
    ]


def test_a_file_that_does_not_match_its_manifest_is_refused(index_dir):
    manifest = publish([1], unit(1))
    (index_dir / "p" / manifest.file).write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt):
        store.load_published("p")


def test_partition_names_cannot_escape_the_index_dir():
    with pytest.raises(ValueError):
        store.partition_dir("../etc")


# --- the approximate kind (IVF) -----------------------------------------------------


def clustered(rows: int, dim: int = 32, centres: int = 20, seed: int = 1) -> np.ndarray:
    """Unit vectors around a few centres, like embeddings of a few topics."""
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, dim))
    matrix = middle[rng.integers(centres, size=rows)] + rng.normal(
        scale=0.3, size=(rows, dim)
    )
    matrix = matrix.astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def ids_from(start: int, rows: int) -> np.ndarray:
    return np.arange(start, start + rows, dtype=np.int64)


def test_index_build_is_flat_up_to_the_threshold_and_ivf_above(settings):
    settings.INDEX_APPROXIMATE_ABOVE = 400
    matrix = clustered(401)
    flat = FaissIndex.build(matrix[:400], ids_from(1, 400))
    ivf = FaissIndex.build(matrix, ids_from(1, 401))
    assert (flat.kind, ivf.kind) == ("flat", "ivf")
    assert (len(ivf), ivf.index.nlist) == (401, nlist_for(401)) == (401, 10)


def test_nlist_grows_as_four_square_roots_once_there_are_enough_points():
    sizes = [10, 1_000, 100_000, 1_000_000]
    assert [nlist_for(n) for n in sizes] == [1, 25, 1265, 4000]


def test_ivf_finds_every_inserted_vector_as_its_own_top_hit():
    matrix = clustered(2000)
    ids = ids_from(500, 2000)
    ivf = FaissIndex.build(matrix, ids, kind="ivf")
    scores, found = ivf.search_arrays(matrix, 1, nprobe=1)
    assert found[:, 0].tolist() == ids.tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_ivf_probing_every_list_is_exact_search():
    matrix, queries = clustered(2000), clustered(50, seed=2)
    ivf = FaissIndex.build(matrix, ids_from(1, 2000), kind="ivf")
    flat = FaissIndex.build(matrix, ids_from(1, 2000), kind="flat")
    _, exact = flat.search_arrays(queries, 10)
    _, approximate = ivf.search_arrays(queries, 10, nprobe=ivf.index.nlist)
    assert approximate.tolist() == exact.tolist()


def test_a_search_parameter_does_not_change_the_shared_index(settings):
    settings.INDEX_NPROBE = 3
    ivf = FaissIndex.build(clustered(2000), ids_from(1, 2000), kind="ivf")
    ivf.search_arrays(clustered(1, seed=3), 5, nprobe=40)
    assert (ivf.index.nprobe, ivf.nprobe()) == (1, 3)


def test_ivf_removes_ids_for_real():
    matrix = clustered(1000)
    ivf = FaissIndex.build(matrix, ids_from(1, 1000), kind="ivf")
    gone = ids_from(1, 100)
    ivf.remove(gone)
    assert len(ivf) == 900
    _, found = ivf.search_arrays(matrix[:100], 10, nprobe=ivf.index.nlist)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert sorted(ivf.ids().tolist()) == list(range(101, 1001))
    with pytest.raises(RuntimeError):
        ivf.index.reconstruct(5)


def test_a_published_ivf_index_keeps_its_kind_and_reconstructs_by_id():
    matrix = clustered(1000)
    index = FaissIndex.build(matrix, ids_from(7000, 1000), kind="ivf")
    with store.writer_lock("p"):
        manifest = store.publish("p", index, model="m", previous=0)
    served = reader.get("p").vectors
    assert (manifest.kind, manifest.count, served.kind) == (
        "ivf",
        1000,
        "ivf",
    )
    assert np.array_equal(served.vectors([7123])[7123], matrix[123])
    assert reader.search(matrix[42], partitions=["p"], k=1)[0][0] == 7042


def test_an_index_is_outgrown_when_its_kind_or_training_no_longer_fits(settings):
    settings.INDEX_APPROXIMATE_ABOVE = 400
    flat = FaissIndex.build(clustered(400), ids_from(1, 400))
    ivf = FaissIndex.build(clustered(800), ids_from(1, 800))  # 20 lists
    assert [flat.outgrown(n) for n in (400, 401)] == [False, True]
    assert [ivf.outgrown(n) for n in (200, 201, 1559, 1560)] == [
        True,  # shrunk to half the threshold: back to flat
        False,
        False,
        True,  # 40 lists wanted, twice the 20 trained: retrain
    ]
