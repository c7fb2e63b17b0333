"""The FAISS vector index: one per partition, published atomically, read by many.

Layout under ``INDEX_DIR``::

    <partition>/manifest.json           the published version: a copy of its own
    <partition>/manifest-00000042.json  model, dimension, count, checksums, files
    <partition>/vectors-00000042.faiss  the index that manifest names
    <partition>/sources-00000042.npz    the source of each of its chunk ids
    <partition>/keywords/               the keyword index (``keywords``)
    <partition>/.lock                   held by the one writer

A writer reads the published index from disk, changes its private copy, writes
a new numbered file (temp file, fsync, ``os.replace``) and then the manifests the
same way. Readers notice the manifest change and load the new file (a flat one
mapped, not copied: the processes of a machine share its pages); nobody ever
mutates an index that somebody else is searching.

Every file is checked against its manifest's checksum when it is loaded. The
last ``KEEP_VERSIONS`` versions stay on disk, each with its own manifest, so a
reader that finds the published version damaged (or its manifest unreadable)
serves the newest older version that checks out, logs it and asks the writer to
repair the partition; the writer, finding damage, rebuilds the partition from the
database (``services.index_sync``). A damaged sources file or keyword index costs
a partition only speed (hits looked up in the database) or its keyword leg until
then.

Beside each version lies which source (type and id) every chunk in it belongs
to, so that a search groups its hits by source without asking the database, as
vector stores keep a payload with each vector. A chunk's source never changes
under its id. Ids it lacks (an older version, or rows added while a rebuild read
them) are looked up in the database instead.

Two kinds of index, chosen by size (``INDEX_APPROXIMATE_ABOVE`` vectors):

* ``flat``: ``IndexIDMap2(IndexFlatIP)``, exact; a query reads every vector.
* ``ivf``: ``IndexIVFFlat`` over inner product, trained by k-means on the
  partition's own vectors into ``nlist`` lists (about 4 x sqrt(n)); a query scans
  the ``INDEX_NPROBE`` lists nearest to it, with exact inner products, so no
  re-ranking step is needed. It removes ids for real (``remove_ids``) and a
  hashtable direct map lets ``reconstruct`` find any chunk id, so deletes need no
  tombstones. When a partition outgrows its training (``nlist_for`` of its size is
  twice the trained ``nlist``) or shrinks back under half the threshold, the writer
  rebuilds it from the database.
"""

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KEEP_VERSIONS = 3
FLAT, IVF = "flat", "ivf"
_TRAIN_POINTS_PER_LIST = 64
_TRAIN_ROUNDS = 10
_PARTITION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_VERSION_RE = re.compile(r"^(?:vectors|sources|manifest)-(\d+)\.(?:faiss|npz|json)$")


class IndexCorrupt(Exception):
    """A published file is missing, unreadable or does not match its manifest."""


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    checksum: str
    version: int
    file: str
    created: float
    kind: str = FLAT  # manifests written before the ivf kind existed are flat
    sources: str = ""  # the file of the chunks' sources; "" before they were kept
    sources_checksum: str = ""  # "": not recorded (older manifests)
    keywords_checksum: str = ""  # of the keyword index's files as published

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def version_manifest(version: int) -> str:
    return f"manifest-{version:08d}.json"


def _faiss() -> Any:
    """The faiss module, untyped: its stubs lack DirectMap, the IO callbacks and
    keyword arguments to search parameters."""
    import faiss

    return faiss


def limit_threads(threads: int = 1) -> None:
    import faiss

    faiss.omp_set_num_threads(threads)


def index_dir() -> Path:
    return Path(settings.INDEX_DIR)


def partition_dir(partition: str) -> Path:
    if not _PARTITION_RE.match(partition):
        raise ValueError(f"bad partition name {partition!r}")
    return index_dir() / partition


def partitions() -> list[str]:
    """Partitions with a published version (or a kept one, the manifest lost)."""
    root = index_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / MANIFEST).is_file() or next(p.glob("manifest-*.json"), None)
    )


def read_manifest(partition: str) -> Manifest | None:
    """The published manifest; None if none was ever published. IndexCorrupt when
    it cannot be read."""
    return _manifest_at(partition_dir(partition) / MANIFEST)


def _manifest_at(path: Path) -> Manifest | None:
    try:
        return Manifest(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:  # bad JSON, bytes, fields
        raise IndexCorrupt(f"{path} cannot be read: {error}") from error


def kept_manifests(partition: str) -> list[Manifest]:
    """The manifests kept beside each version on disk, newest first; unreadable
    ones are left out."""
    found = []
    for path in partition_dir(partition).glob("manifest-*.json"):
        with contextlib.suppress(IndexCorrupt):
            if (manifest := _manifest_at(path)) is not None:
                found.append(manifest)
    return sorted(found, key=lambda m: -m.version)


def newest_version(partition: str) -> int:
    """The highest version number of any file on disk (0: none): a rebuild after
    damage numbers its version above everything, so readers see it as new."""
    numbers = [
        int(match.group(1))
        for path in partition_dir(partition).glob("*-*.*")
        if (match := _VERSION_RE.match(path.name))
    ]
    return max(numbers, default=0)


def new_index(dimension: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def kind_for(count: int) -> str:
    return IVF if count > settings.INDEX_APPROXIMATE_ABOVE else FLAT


def nlist_for(count: int) -> int:
    """Lists for ``count`` vectors: about 4 x sqrt(n), and at least 39 training
    points per list (fewer and FAISS's k-means warns its centroids are poor)."""
    return max(1, min(round(4 * math.sqrt(count)), count // 39))


def index_kind(index: Any) -> str:
    import faiss

    return IVF if isinstance(index, faiss.IndexIVF) else FLAT


def index_build(matrix: np.ndarray, ids: np.ndarray, *, kind: str = "") -> Any:
    """An index of ``kind`` (default: the kind for its size) holding the rows."""
    index = index_trained(matrix, kind=kind or kind_for(len(ids)))
    if len(ids):
        index.add_with_ids(matrix, ids)
    return index


def index_trained(matrix: np.ndarray, *, kind: str) -> Any:
    """An empty index of ``kind``; an ivf one has lists learnt from ``matrix``."""
    faiss = _faiss()

    dimension = matrix.shape[1]
    if kind == FLAT:
        return new_index(dimension)
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(dimension),
        dimension,
        nlist_for(len(matrix)),
        faiss.METRIC_INNER_PRODUCT,
    )
    # k-means on a sample of 64 rows per list, 10 rounds: at 1M vectors the
    # defaults (256 rows, 25 rounds) take ten times longer for no recall we measured.
    index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
    index.cp.niter = _TRAIN_ROUNDS
    index.train(matrix)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct by any id
    return index


def index_outgrown(index: Any, count: int) -> bool:
    """Whether an index holding ``count`` vectors should be rebuilt: it is flat and
    too big, ivf and too small, or ivf trained for a quarter of its size or less."""
    if index_kind(index) == FLAT:
        return kind_for(count) == IVF
    if count <= settings.INDEX_APPROXIMATE_ABOVE // 2:
        return True
    return nlist_for(count) >= 2 * index.nlist


def index_ids(index: Any) -> np.ndarray:
    import faiss

    if index_kind(index) == FLAT:
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    lists = index.invlists
    return np.concatenate(
        [np.zeros(0, dtype=np.int64)]
        + [
            faiss.rev_swig_ptr(lists.get_ids(i), size).astype(np.int64)
            for i in range(index.nlist)
            if (size := lists.list_size(i))
        ]
    )


def nprobe_for(index: Any) -> int:
    return int(min(settings.INDEX_NPROBE, index.nlist))


def index_search(
    index: Any, matrix: np.ndarray, k: int, *, nprobe: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the ``k`` nearest to each row, -1 ids where fewer exist.

    ``nprobe`` travels as a per-call search parameter, so threads searching one
    shared index never change it under each other.
    """
    faiss = _faiss()

    if index_kind(index) == FLAT:
        return index.search(matrix, k)
    params = faiss.SearchParametersIVF(nprobe=nprobe or nprobe_for(index))
    return index.search(matrix, k, params=params)


@dataclass(frozen=True)
class Sources:
    """The source (type, id) of each chunk id in one version of an index."""

    ids: np.ndarray  # chunk ids, sorted
    types: np.ndarray  # each chunk's source type, as an index into ``labels``
    source_ids: np.ndarray
    labels: np.ndarray  # the source types, as strings

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str, int]]) -> "Sources":
        """From (chunk id, source type, source id) rows, in any order."""
        ordered = sorted(rows)
        labels = sorted({kind for _, kind, _ in ordered})
        code = {label: i for i, label in enumerate(labels)}
        n = len(ordered)
        return cls(
            ids=np.fromiter((row[0] for row in ordered), np.int64, n),
            types=np.fromiter((code[row[1]] for row in ordered), np.int32, n),
            source_ids=np.fromiter((row[2] for row in ordered), np.int64, n),
            labels=np.asarray(labels, dtype=str),
        )

    def find(self, chunk_ids: list[int]) -> dict[int, tuple[str, int]]:
        """(source type, source id) of those of ``chunk_ids`` it holds."""
        if not chunk_ids or not len(self.ids):
            return {}
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        labels = self.labels.tolist()
        types, source_ids = self.types[at].tolist(), self.source_ids[at].tolist()
        return {
            chunk_ids[i]: (labels[types[i]], source_ids[i])
            for i in np.flatnonzero(self.ids[at] == wanted).tolist()
        }

    def save(self, f: BinaryIO) -> None:
        np.savez(f, **self.__dict__)

    @classmethod
    def load(cls, path: Path, checksum: str = "") -> "Sources":
        """Read a sources file, checked against ``checksum`` when there is one;
        IndexCorrupt when it cannot be."""
        try:
            data = path.read_bytes()
            if checksum and hashlib.sha256(data).hexdigest() != checksum:
                raise IndexCorrupt(f"{path} does not match its manifest checksum")
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                return cls(**{name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise IndexCorrupt(f"{path} cannot be read: {error}") from error


def load_published(
    partition: str, *, mapped: bool = False
) -> tuple[Manifest | None, Any | None]:
    """The published manifest and its index (or Nones): a private copy, which the
    writer changes, or with ``mapped`` one only to search, whose flat vectors are
    the file's pages mapped rather than copied."""
    missing = ""
    for _ in range(5):
        manifest = read_manifest(partition)
        if manifest is None:
            return None, None
        try:
            return manifest, load_version(partition, manifest, mapped=mapped)
        except FileNotFoundError:
            missing = manifest.file
            time.sleep(0.05)  # a newer version replaced it meanwhile: read again
    raise IndexCorrupt(f"{partition}: the published file {missing} is missing")


def load_version(partition: str, manifest: Manifest, *, mapped: bool = False) -> Any:
    """The vectors of one version, checked against its manifest."""
    path = partition_dir(partition) / manifest.file
    read = _read_mapped if mapped and manifest.kind == FLAT else _read_checked
    return read(path, manifest.checksum)


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


@contextlib.contextmanager
def writer_lock(partition: str) -> Iterator[None]:
    """One writer per partition at a time, across processes on this machine."""
    directory = partition_dir(partition)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def publish(
    partition: str,
    index: Any,
    *,
    model: str,
    previous: int,
    sources: Sources | None = None,
    keywords_checksum: str = "",
) -> Manifest:
    """Write ``index`` (and its chunks' ``sources``) as the next version, with the
    checksum of the keyword index it was published with. Call with the writer
    lock held."""
    faiss = _faiss()

    directory = partition_dir(partition)
    version = previous + 1
    name = f"vectors-{version:08d}.faiss"
    digest = hashlib.sha256()

    def fill(f: BinaryIO) -> None:
        # Streamed to the file and hashed on the way: no serialised copy in memory.
        def write(data: bytes) -> None:
            digest.update(data)
            f.write(data)

        faiss.write_index(index, faiss.PyCallbackIOWriter(write))

    _write_atomic(directory / name, fill)
    sources_name, sources_checksum = "", ""
    if sources is not None:
        sources_name = f"sources-{version:08d}.npz"
        buffer = io.BytesIO()
        sources.save(buffer)
        sources_checksum = hashlib.sha256(buffer.getbuffer()).hexdigest()
        _write_atomic(directory / sources_name, lambda f: f.write(buffer.getbuffer()))
    manifest = Manifest(
        model=model,
        dimension=index.d,
        count=index.ntotal,
        checksum=digest.hexdigest(),
        version=version,
        file=name,
        created=time.time(),
        kind=index_kind(index),
        sources=sources_name,
        sources_checksum=sources_checksum,
        keywords_checksum=keywords_checksum,
    )
    text = json.dumps(manifest.as_dict()).encode()
    _write_atomic(directory / version_manifest(version), lambda f: f.write(text))
    _write_atomic(directory / MANIFEST, lambda f: f.write(text))
    _fsync_dir(directory)
    for old in _version_files(directory):
        if int(old.stem.split("-")[1]) <= version - KEEP_VERSIONS:
            old.unlink(missing_ok=True)
    return manifest


def _version_files(directory: Path) -> list[Path]:
    return [
        path
        for pattern in ("vectors-*.faiss", "sources-*.npz", "manifest-*.json")
        for path in directory.glob(pattern)
    ]


def temp_files_remove(partition: str) -> int:
    """Remove what a writer that died mid-write left (its temp files). Call with
    the writer lock held: then no other writer is writing one."""
    left = list(partition_dir(partition).glob(".*.tmp"))
    for path in left:
        path.unlink(missing_ok=True)
    return len(left)


def remove_partition(partition: str) -> None:
    directory = partition_dir(partition)
    with writer_lock(partition):
        (directory / MANIFEST).unlink(missing_ok=True)
        for old in _version_files(directory):
            old.unlink()
        shutil.rmtree(directory / "keywords", ignore_errors=True)


def _write_atomic(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Loaded:
    """One published version of a partition: its vectors, their chunks' sources and
    its keyword index."""

    manifest: Manifest
    vectors: Any
    keywords: Any | None
    sources: Sources | None = None  # None: look every hit's source up in the database


class IndexReader:
    """A process's read-only view of every partition, swapped when republished.

    It never raises for a damaged file: it serves what checks out, says what is
    wrong in ``problems`` (health, metrics), logs it once and asks for a repair.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple[int, int], Loaded | None]] = {}
        self._lock = threading.Lock()
        self.problems: dict[str, str] = {}

    def get(self, partition: str) -> Loaded | None:
        try:
            stat = (partition_dir(partition) / MANIFEST).stat()
            key = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            key = (0, 0)  # none published, or the manifest lost: kept versions
        cached = self._loaded.get(partition)
        if cached and cached[0] == key:
            return cached[1]
        with self._lock:
            loaded, problem = self._load(partition)
            self._loaded[partition] = (key, loaded)
            if problem:
                self.problems[partition] = problem
            else:
                self.problems.pop(partition, None)
                _repairs_asked.discard(partition)
        if problem:
            repair_request(partition)
        return loaded

    def _load(self, partition: str) -> tuple[Loaded | None, str]:
        """The published version, or the newest kept one that checks out; and what
        is wrong, if anything."""
        problem = ""
        try:
            manifest, index = load_published(partition, mapped=True)
        except IndexCorrupt as error:
            manifest, index, problem = None, None, str(error)
        if manifest is None:
            kept = kept_manifests(partition)
            if not kept and not problem:
                return None, ""  # nothing published yet
            manifest, index = self._load_kept(partition, kept)
            problem = problem or "the manifest is missing"
            if manifest is None:
                self._report(partition, f"{problem}; no kept version checks out")
                return None, problem
            self._report(partition, f"{problem}; serving version {manifest.version}")
        from embeddings import keywords

        problems = [problem] if problem else []
        try:
            found = keywords.open_index(partition)
        except IndexCorrupt as error:
            found = None
            problems.append(str(error))
            self._report(partition, problems[-1])
        sources = None  # without it hits are looked up in the database: slower
        if manifest.sources:
            try:
                path = partition_dir(partition) / manifest.sources
                sources = Sources.load(path, manifest.sources_checksum)
            except IndexCorrupt as error:
                problems.append(str(error))
                self._report(partition, problems[-1])
        return Loaded(manifest, index, found, sources), "; ".join(problems)

    def _load_kept(
        self, partition: str, kept: list[Manifest]
    ) -> tuple[Manifest | None, Any | None]:
        for manifest in kept:
            try:
                return manifest, load_version(partition, manifest, mapped=True)
            except (IndexCorrupt, FileNotFoundError) as error:
                self._report(partition, f"kept version {manifest.version}: {error}")
        return None, None

    def _report(self, partition: str, text: str) -> None:
        logger.error("index %s: %s", partition, text)

    def keyword_failed(self, partition: str, error: Exception) -> None:
        """A search of the partition's keyword index failed: serve it without
        that leg until it is repaired."""
        with self._lock:
            cached = self._loaded.get(partition)
            if cached is None or cached[1] is None or cached[1].keywords is None:
                return
            problem = f"the keyword index cannot be searched ({error})"
            self._report(partition, problem)
            self._loaded[partition] = (cached[0], replace(cached[1], keywords=None))
            self.problems[partition] = problem
        repair_request(partition)

    def search(
        self, vector: np.ndarray, *, partitions: list[str], k: int
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest ids over the partitions, as (id, cosine), best first."""
        query = vector.reshape(1, -1)
        hits: list[tuple[int, float]] = []
        for partition in partitions:
            loaded = self.get(partition)
            if loaded is None or loaded.vectors.ntotal == 0:
                continue
            scores, ids = index_search(
                loaded.vectors, query, min(k, loaded.vectors.ntotal)
            )
            hits.extend(
                (int(i), float(s))
                for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0
            )
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def match(
        self, text: str, *, partitions: list[str], k: int
    ) -> list[tuple[int, float, float]]:
        """The ``k`` best keyword matches over the partitions, as (id, BM25, coverage),
        ordered by coverage, which compares across partitions."""
        from embeddings import keywords

        hits: list[tuple[int, float, float]] = []
        for partition in partitions:
            loaded = self.get(partition)
            if loaded is not None and loaded.keywords is not None:
                try:
                    hits.extend(keywords.search(loaded.keywords, text, k=k))
                except (ValueError, OSError) as error:  # a damaged segment
                    self.keyword_failed(partition, error)
        hits.sort(key=lambda hit: -hit[2])
        return hits[:k]

    def clear(self) -> None:
        self._loaded.clear()
        self.problems.clear()


_repairs_asked: set[str] = set()


def repair_request(partition: str) -> None:
    """Ask a worker to check the partition and rebuild what is damaged, once per
    process and partition (reconcile checks every partition anyway)."""
    if partition in _repairs_asked:
        return
    _repairs_asked.add(partition)
    from embeddings.queueing import enqueue
    from embeddings.tasks import sync_index

    with contextlib.suppress(Exception):  # best effort: reconcile will
        enqueue(sync_index, partition, True)


reader = IndexReader()
