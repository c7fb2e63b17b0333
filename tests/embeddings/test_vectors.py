import hashlib
import json

import numpy as np
import pytest

from embeddings import vectors


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def publish(ids: list[int], matrix: np.ndarray, previous: int = 0) -> vectors.Manifest:
    index = vectors.new_index(matrix.shape[1])
    index.add_with_ids(matrix, np.array(ids, dtype=np.int64))
    with vectors.writer_lock("p"):
        return vectors.publish("p", index, model="m", previous=previous)


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
    }
    assert not list((index_dir / "p").glob("*.tmp"))


def test_inner_product_on_unit_vectors_is_cosine():
    matrix = unit(50)
    publish(list(range(100, 150)), matrix)
    hits = vectors.reader.search(matrix[7], partitions=["p"], k=3)
    assert hits[0][0] == 107
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [h[1] for h in hits] == sorted((h[1] for h in hits), reverse=True)


def test_reader_swaps_in_a_new_version_and_keeps_serving_its_copy(index_dir):
    matrix = unit(4)
    publish([1, 2], matrix[:2])
    served = vectors.reader.get("p").vectors
    publish([1, 2, 3, 4], matrix, previous=1)
    assert served.ntotal == 2  # the old copy was not touched
    assert vectors.reader.get("p").vectors.ntotal == 4


def test_old_versions_are_pruned(index_dir):
    for version in range(6):
        publish([1], unit(1), previous=version)
    files = sorted(p.name for p in (index_dir / "p").glob("vectors-*.faiss"))
    assert files == [
        "vectors-00000004.faiss",
        "vectors-00000005.faiss",
        "vectors-00000006.faiss",
    ]


def test_a_file_that_does_not_match_its_manifest_is_refused(index_dir):
    manifest = publish([1], unit(1))
    (index_dir / "p" / manifest.file).write_bytes(b"garbage")
    with pytest.raises(vectors.IndexCorrupt):
        vectors.load_published("p")


def test_partition_names_cannot_escape_the_index_dir():
    with pytest.raises(ValueError):
        vectors.partition_dir("../etc")
