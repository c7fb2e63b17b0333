"""The dense leg in FAISS: one index per partition, flat (exact) or ivf.

Two kinds, chosen by size (``INDEX_APPROXIMATE_ABOVE`` vectors):

* ``flat``: ``IndexIDMap2(IndexFlatIP)``, exact; a query reads every vector.
* ``ivf``: ``IndexIVFFlat`` over inner product, trained by k-means on the
  partition's own vectors into ``nlist`` lists (about 4 x sqrt(n)); a query scans
  the ``INDEX_NPROBE`` lists nearest to it, with exact inner products, so no
  re-ranking step is needed. It removes ids for real (``remove_ids``) and a
  hashtable direct map lets ``reconstruct`` find any chunk id, so deletes need no
  tombstones. When a partition outgrows its training (``nlist_for`` of its size is
  twice the trained ``nlist``) or shrinks back under half the threshold, the writer
  rebuilds it from the database (``outgrown``).
"""

import hashlib
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings

from embeddings.index.base import Hits, IndexCorrupt

FLAT, IVF = "flat", "ivf"
_TRAIN_POINTS_PER_LIST = 64
_TRAIN_ROUNDS = 10


def _faiss() -> Any:
    """The faiss module, untyped: its stubs lack DirectMap, the IO callbacks and
    keyword arguments to search parameters."""
    import faiss

    return faiss


def limit_threads(threads: int = 1) -> None:
    _faiss().omp_set_num_threads(threads)


def kind_for(count: int) -> str:
    return IVF if count > settings.INDEX_APPROXIMATE_ABOVE else FLAT


def nlist_for(count: int) -> int:
    """Lists for ``count`` vectors: about 4 x sqrt(n), and at least 39 training
    points per list (fewer and FAISS's k-means warns its centroids are poor)."""
    return max(1, min(round(4 * math.sqrt(count)), count // 39))


class FaissIndex:
    """A partition's vectors in FAISS (``DenseIndex``); ``index`` is the FAISS
    object itself."""

    def __init__(self, index: Any) -> None:
        self.index = index

    @classmethod
    def build(
        cls, matrix: np.ndarray, ids: np.ndarray, *, kind: str = ""
    ) -> "FaissIndex":
        """An index of ``kind`` (default: the kind for its size) holding the rows."""
        built = cls.trained(matrix, kind=kind or kind_for(len(ids)))
        if len(ids):
            built.index.add_with_ids(matrix, ids)
        return built

    @classmethod
    def trained(cls, matrix: np.ndarray, *, kind: str) -> "FaissIndex":
        """An empty index of ``kind``; an ivf one has lists learnt from ``matrix``."""
        faiss = _faiss()
        dimension = matrix.shape[1]
        if kind == FLAT:
            return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dimension),
            dimension,
            nlist_for(len(matrix)),
            faiss.METRIC_INNER_PRODUCT,
        )
        # k-means on a sample of 64 rows per list, 10 rounds: at 1M vectors the
        # defaults (256 rows, 25 rounds) take ten times longer for no recall we
        # measured.
        index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
        index.cp.niter = _TRAIN_ROUNDS
        index.train(matrix)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct by any id
        return cls(index)

    @property
    def kind(self) -> str:
        return IVF if isinstance(self.index, _faiss().IndexIVF) else FLAT

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        if self.kind == FLAT:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        return np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [
                faiss.rev_swig_ptr(lists.get_ids(i), size).astype(np.int64)
                for i in range(self.index.nlist)
                if (size := lists.list_size(i))
            ]
        )

    def add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        if len(ids):
            self.remove(ids)  # FAISS keeps duplicates: an id names one vector
            self.index.add_with_ids(np.ascontiguousarray(matrix, np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):  # flat and ivf both remove for real: no tombstones
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def nprobe(self) -> int:
        return int(min(settings.INDEX_NPROBE, self.index.nlist))

    def search_arrays(
        self, matrix: np.ndarray, k: int, *, nprobe: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's (scores, ids) of the ``k`` nearest to each row, -1 ids where
        fewer exist. ``nprobe`` travels as a per-call search parameter, so threads
        searching one shared index never change it under each other."""
        query = np.ascontiguousarray(matrix, dtype=np.float32).reshape(
            -1, self.dimension
        )
        if self.kind == FLAT:
            return self.index.search(query, k)
        params = _faiss().SearchParametersIVF(nprobe=nprobe or self.nprobe())
        return self.index.search(query, k, params=params)

    def search(self, matrix: np.ndarray, k: int) -> list[Hits]:
        rows = len(matrix) if np.ndim(matrix) == 2 else 1
        if len(self) == 0 or k < 1:
            return [[] for _ in range(rows)]
        scores, ids = self.search_arrays(matrix, min(k, len(self)))
        return [
            [
                (int(i), float(s))
                for i, s in zip(row_ids, row_scores, strict=True)
                if i >= 0
            ]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        try:
            matrix = self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
            return dict(zip(ids, matrix, strict=True))
        except RuntimeError:  # some are not in this version of the index
            found = {}
            for chunk_id in ids:
                try:
                    found[chunk_id] = self.index.reconstruct(chunk_id)
                except RuntimeError:
                    continue
            return found

    def outgrown(self, count: int) -> bool:
        """Whether an index holding ``count`` vectors should be rebuilt: it is flat
        and too big, ivf and too small, or ivf trained for a quarter of its size
        or less."""
        if self.kind == FLAT:
            return kind_for(count) == IVF
        if count <= settings.INDEX_APPROXIMATE_ABOVE // 2:
            return True
        return nlist_for(count) >= 2 * self.index.nlist

    # --- files ----------------------------------------------------------------------

    def write(self, f: BinaryIO) -> str:
        """Stream the index to ``f``, hashed on the way (no serialised copy in
        memory); its sha256."""
        faiss = _faiss()
        digest = hashlib.sha256()

        def write(data: bytes) -> None:
            digest.update(data)
            f.write(data)

        faiss.write_index(self.index, faiss.PyCallbackIOWriter(write))
        return digest.hexdigest()

    @classmethod
    def read(cls, path: Path, checksum: str, *, mapped: bool = False) -> "FaissIndex":
        """The index in ``path``, checked against ``checksum``; IndexCorrupt when it
        does not match. ``mapped`` (for readers): a flat index over the file's own
        pages rather than a private copy, which a writer may change."""
        if mapped:
            return cls(_read_mapped(path, checksum))
        return cls(_read_checked(path, checksum))


def _read_mapped(path: Path, checksum: str) -> Any:
    """A flat index over the file's own pages (FAISS maps flat storage, read-only):
    every process serving this version shares one copy in the page cache, and
    workers scanning it at once read the same memory instead of a copy each
    (measured on two cores at 100K vectors: 5-30% faster scans, run to run).
    Files are never changed once published; a mapping outlives the file's
    pruning."""
    faiss = _faiss()

    with open(path, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != checksum:
            raise IndexCorrupt(f"{path} does not match its manifest checksum")
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as error:
            raise IndexCorrupt(f"{path} cannot be read: {error}") from error
        if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
            raise FileNotFoundError(path)  # replaced since it was checked
    return index


def _read_checked(path: Path, checksum: str) -> Any:
    """Read an index file, hashing it as FAISS reads it: one pass and no second
    in-memory copy (at 1M vectors the file is 1.5 GB)."""
    faiss = _faiss()

    digest = hashlib.sha256()
    with open(path, "rb") as f:

        def read(size: int) -> bytes:
            data = f.read(size)
            digest.update(data)
            return data

        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(read))
        except RuntimeError:
            index = None
        while data := f.read(1 << 20):
            digest.update(data)
    if digest.hexdigest() != checksum or index is None:
        raise IndexCorrupt(f"{path} does not match its manifest checksum")
    return index
