"""The approximate vector index at scale: build time, memory, latency and recall.

    python -m bench.ann [--n 1000000] [--nprobe 8,16,32,64] [--kind ivf] [--json]

Vectors come from real text embeddings: every SciFact title and abstract sentence
and every StackFAQ question and answer (about 51K texts), embedded once with the
product's encoder and cached under ``var/bench/``. ``n`` distinct vectors are
derived from them honestly: vector ``j`` is text ``j mod B``'s embedding plus
Gaussian noise (sigma 0.025 per dimension, about 0.9 cosine to its source),
renormalised. So the corpus has the topic structure of real text, with clusters of
near-paraphrases around each sentence, which is a harder neighbourhood than random
vectors. Queries are the real SciFact and StackFAQ queries (925), never in the index.

The approximate index is built by the product's own code (``embeddings.index``),
with the product's nlist rule; recall@10 is measured against exact search
(``IndexFlatIP``) over the same ``n`` vectors in the same run, whose single-query
p50 is the baseline. Search is timed one query at a time, as the web path does.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import ROOT, cpu_name

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "var" / "bench"
NOISE = 0.025  # per dimension; the noise's norm is about 0.49, cosine to source 0.9
SEED = 7
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


def corpus_texts() -> list[str]:
    """SciFact titles and abstract sentences (4 words or more), StackFAQ Q and A."""
    texts: list[str] = []
    for line in (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        texts.append(doc["title"])
        texts += [s for s in _SENTENCE.split(doc["text"]) if len(s.split()) >= 4]
    for line in (DATA / "stackfaq" / "corpus.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        texts += [doc["title"], doc["text"]]
    return [t for t in texts if t.strip()]


def query_texts() -> list[str]:
    return [
        json.loads(line)["text"]
        for name in ("scifact", "stackfaq")
        for line in (DATA / name / "queries.jsonl").open(encoding="utf-8")
        if line.strip()
    ]


def embedded(label: str, texts: list[str]) -> np.ndarray:
    """Encode ``texts`` once; the file name carries a hash of the texts."""
    from embeddings.encoders import get_encoder

    encoder = get_encoder()
    digest = hashlib.sha256("\0".join([encoder.name, *texts]).encode()).hexdigest()
    path = CACHE / f"ann-{label}-{digest[:12]}.npy"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        matrix = encoder.encode(texts)
        np.save(path.with_suffix(".tmp.npy"), matrix)
        os.replace(path.with_suffix(".tmp.npy"), path)
    return np.load(path)


def derive(base: np.ndarray, n: int, *, seed: int = SEED) -> np.ndarray:
    """``n`` unit vectors: row j is base[j mod B] plus noise, renormalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    block = 100_000
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n)) % len(base)
        part = base[rows] + rng.normal(scale=NOISE, size=(len(rows), base.shape[1]))
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start : start + len(rows)] = part
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def timed_search(
    index: Any, queries: np.ndarray, k: int, **params: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Search one query at a time; return the ids and each query's seconds."""
    ids = np.empty((len(queries), k), dtype=np.int64)
    seconds = np.empty(len(queries))
    for i, query in enumerate(queries):
        started = time.perf_counter()
        _, found = index.search_arrays(query.reshape(1, -1), k, **params)
        seconds[i] = time.perf_counter() - started
        ids[i] = found[0]
    return ids, seconds


def published(index: Any) -> tuple[int, float, float]:
    """Publish and load back through the product's path, in a scratch INDEX_DIR:
    (file bytes, seconds to publish, seconds to load and verify)."""
    import tempfile

    from django.test import override_settings

    from embeddings.index import store

    scratch = Path(tempfile.mkdtemp(dir=CACHE))
    try:
        with override_settings(INDEX_DIR=scratch):
            started = time.perf_counter()
            with store.writer_lock("bench"):
                manifest = store.publish("bench", index, model="bench", previous=0)
            publish_s = time.perf_counter() - started
            size = (scratch / "bench" / manifest.file).stat().st_size
            started = time.perf_counter()
            _, loaded = store.load_published("bench")
            load_s = time.perf_counter() - started
            del loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return size, publish_s, load_s


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top k found in the approximate top k, averaged."""
    k = exact.shape[1]
    pairs = zip(found.tolist(), exact.tolist(), strict=True)
    hits = sum(len(set(f) & set(e)) for f, e in pairs)
    return hits / (len(exact) * k)


def ms(seconds: np.ndarray, q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def run(
    n: int, *, nprobes: tuple[int, ...] = (), k: int = 10, kind: str = ""
) -> dict[str, Any]:
    """Build the index the product would build for ``n`` vectors (or ``kind``)
    and measure it.

    Returns the figures for the product's default search parameters, plus a
    ``sweep`` of the other ``nprobes`` asked for (IVF only).
    """
    import faiss

    from embeddings.index.dense import IVF, FaissIndex, kind_for, limit_threads

    limit_threads(os.cpu_count() or 1)  # building and exact truth: all cores
    base = embedded("corpus", corpus_texts())
    queries = embedded("queries", query_texts())
    matrix = derive(base, n)
    ids = np.arange(n, dtype=np.int64)

    exact = faiss.IndexFlatIP(matrix.shape[1])
    exact.add(matrix)
    _, truth = exact.search(queries, k)  # batched: BLAS, all cores
    limit_threads(1)  # search as a web process does: one query, one thread
    _, exact_seconds = timed_search(FaissIndex(exact), queries[:200], k)
    del exact

    limit_threads(os.cpu_count() or 1)
    before = rss_bytes()
    started = time.perf_counter()
    index = FaissIndex.trained(matrix, kind=kind or kind_for(n))
    train_s = time.perf_counter() - started
    index.index.add_with_ids(matrix, ids)
    build_s = time.perf_counter() - started
    rss_delta = rss_bytes() - before
    del matrix
    file_bytes, publish_s, load_s = published(index)
    limit_threads(1)

    kind = index.kind
    result: dict[str, Any] = {
        "n": n,
        "kind": kind,
        "dimension": index.dimension,
        "queries": len(queries),
        "build_s": round(build_s, 1),
        "train_s": round(train_s, 1),
        "publish_s": round(publish_s, 1),
        "load_s": round(load_s, 1),
        "bytes_per_vector": round(file_bytes / n, 1),
        "rss_bytes_per_vector": round(rss_delta / n, 1),
        "exact_p50_ms": round(ms(exact_seconds, 50), 2),
        "exact_p95_ms": round(ms(exact_seconds, 95), 2),
    }
    if kind == IVF:
        result |= {"nlist": int(index.index.nlist), "nprobe": index.nprobe()}
    found, seconds = timed_search(index, queries, k)
    result |= {
        "p50_ms": round(ms(seconds, 50), 2),
        "p95_ms": round(ms(seconds, 95), 2),
        "recall_at_10": round(recall_at(found, truth), 4),
    }
    result["speedup_p50"] = round(result["exact_p50_ms"] / result["p50_ms"], 1)
    sweep = []
    for nprobe in nprobes if kind == IVF else ():
        found, seconds = timed_search(index, queries, k, nprobe=nprobe)
        sweep.append(
            {
                "nprobe": nprobe,
                "p50_ms": round(ms(seconds, 50), 2),
                "p95_ms": round(ms(seconds, 95), 2),
                "recall_at_10": round(recall_at(found, truth), 4),
            }
        )
    result["sweep"] = sweep
    return result


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(result: dict[str, Any]) -> str:
    lines = [
        f"machine: {machine()}",
        f"n={result['n']:,} kind={result['kind']} dimension={result['dimension']}"
        f" queries={result['queries']}"
        + (
            f" nlist={result['nlist']} nprobe={result['nprobe']}"
            if "nlist" in result
            else ""
        ),
        f"build (train + add): {result['build_s']} s (train {result['train_s']} s);"
        f" publish {result['publish_s']} s, load and verify {result['load_s']} s",
        f"memory: {result['bytes_per_vector']} bytes/vector (index file),"
        f" {result['rss_bytes_per_vector']} bytes/vector (RSS growth while building)",
        "",
        "| search | p50 ms | p95 ms | recall@10 vs exact |",
        "|---|---|---|---|",
        f"| exact Flat (baseline) | {result['exact_p50_ms']} |"
        f" {result['exact_p95_ms']} | 1.0 |",
        f"| {result['kind']} (default) | {result['p50_ms']} | {result['p95_ms']} |"
        f" {result['recall_at_10']} |",
    ]
    lines += [
        f"| nprobe {row['nprobe']} | {row['p50_ms']} | {row['p95_ms']} |"
        f" {row['recall_at_10']} |"
        for row in result["sweep"]
    ]
    lines.append(f"exact p50 / approximate p50: {result['speedup_p50']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--nprobe", default="", help="also try these, e.g. 8,16,32")
    parser.add_argument("--kind", choices=["flat", "ivf"], help="default: by size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()
    nprobes = tuple(int(p) for p in args.nprobe.split(",") if p.strip())
    result = run(args.n, nprobes=nprobes, kind=args.kind or "")
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
