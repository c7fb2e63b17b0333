"""Hybrid search: which fusion of dense (MiniLM) and BM25 wins on both datasets.

    python -m bench.fusion [--json] [--cache /tmp/fusion]

Documents are chunked as the product does (title as each window's prefix); the dense
leg scores a document by its best chunk's cosine, the keyword leg (tantivy BM25,
English stop words and Snowball stemmer, over the same chunk texts) by its best
chunk's BM25. Each leg hands its top 100 documents to fusion. Chunk vectors are
cached under --cache: embedding SciFact takes minutes on two cores, once.

Methods: (weighted) RRF; min-max and distribution-based (mean +/- 3 sigma) normalised
linear combinations; and the raw cosine plus beta * BM25 divided by the query's top
BM25 or by its sum of idf (about the idf-weighted share of the query a unit matches).
"""

import argparse
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench import ROOT

DATA = ROOT.parent / "shared" / "data"
DATASETS = ("scifact", "stackfaq")
DEPTH = 100  # documents each leg hands to fusion, and fusion returns
Ranking = tuple[np.ndarray, np.ndarray]  # document indexes, scores: best first


@dataclass
class Corpus:
    ids: list[str]  # document ids, in corpus order
    texts: list[str]  # whole documents: (title + " " + text).strip()
    chunks: list[str]  # chunk texts, each document's in one contiguous run
    owner: np.ndarray  # each chunk's document index
    queries: dict[str, str]  # the judged queries
    qrels: dict[str, dict[str, int]]


@dataclass
class Query:
    dense: Ranking  # cosine of the best chunk
    keyword: Ranking  # BM25 of the best chunk
    cosines: np.ndarray  # every document's cosine, for keyword-only candidates
    scale: float  # the query's sum of idf: BM25 / scale ~ share of query matched


def corpus_load(name: str) -> Corpus:
    from embeddings.chunking import chunk_text
    from embeddings.encoders import get_encoder
    from faq.evaluation import dataset_load

    data = dataset_load(DATA / name)
    ids: list[str] = []
    texts: list[str] = []
    chunks: list[str] = []
    owner: list[int] = []
    for line in data.corpus.open(encoding="utf-8"):
        doc = json.loads(line)
        title, body = doc.get("title", ""), doc.get("text", "")
        pieces = chunk_text(body, encoder=get_encoder(), prefix=title, overlap=32)
        owner += [len(ids)] * len(pieces)
        chunks += pieces
        ids.append(str(doc["_id"]))
        texts.append(f"{title} {body}".strip())
    return Corpus(ids, texts, chunks, np.array(owner), data.queries, data.qrels)


def cached_vectors(cache: Path, label: str, texts: list[str]) -> np.ndarray:
    """Encode ``texts`` once; the file name carries a hash of the texts."""
    from embeddings.encoders import get_encoder

    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:12]
    path = cache / f"{label}-{digest}.npy"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, get_encoder().encode(texts))
    return np.load(path)


def top(scores: np.ndarray, depth: int = DEPTH) -> Ranking:
    order = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
    order = order[np.argsort(-scores[order], kind="stable")]
    return order, scores[order]


class Keyword:
    """BM25 (tantivy: k1 1.2, b 0.75) over units; a document scores by its best."""

    def __init__(self, texts: list[str], owner: np.ndarray) -> None:
        import tantivy as tv

        self.tv = tv
        from embeddings.index.keywords import analyzer

        self.analyzer = analyzer()  # the product's own analysis
        builder = tv.SchemaBuilder()
        builder.add_text_field("text", tokenizer_name="en", index_option="freq")
        builder.add_integer_field("doc", fast=True)  # i64: a Python int is one
        self.schema = builder.build()
        index = tv.Index(self.schema)  # in memory; pass path= for a disk index
        index.register_tokenizer("en", self.analyzer)
        writer = index.writer(heap_size=200_000_000, num_threads=1)
        for text, doc in zip(texts, owner.tolist(), strict=True):
            writer.add_document(tv.Document(text=text, doc=doc))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self.searcher = index.searcher()

    def search(self, text: str, depth: int = DEPTH) -> Ranking:
        # Built from analysed terms, not parse_query: no query syntax to escape.
        terms = self.analyzer.analyze(text)
        if not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        make, should = self.tv.Query, self.tv.Occur.Should
        query = make.boolean_query(
            [(should, make.term_query(self.schema, "text", t)) for t in terms]
        )
        limit = depth
        while True:  # fetch more units until ``depth`` distinct documents
            hits = self.searcher.search(query, limit, count=False).hits
            docs = self.searcher.fast_field_values("doc", [a for _, a in hits])
            best: dict[int, float] = {}
            for (score, _), doc in zip(hits, docs, strict=True):
                if doc is not None:  # None: a unit without the field
                    best.setdefault(int(doc), float(score))
            if len(best) >= depth or len(hits) < limit:
                break
            limit *= 2
        found = np.fromiter(best, dtype=np.int64)[:depth]
        return found, np.array([best[d] for d in found.tolist()])

    def scale(self, text: str) -> float:
        """BM25 of a unit holding each query term once at average length."""
        n = self.searcher.num_docs
        dfs = [self.searcher.doc_freq("text", t) for t in self.analyzer.analyze(text)]
        return float(sum(np.log(1 + (n - df + 0.5) / (df + 0.5)) for df in dfs)) or 1.0


# --- fusion: a query's two legs in, one ranking out -----------------------------


def ranks(r: Ranking, k: float) -> Ranking:
    return r[0], 1.0 / (k + 1 + np.arange(len(r[0])))


def minmax(r: Ranking) -> Ranking:
    s = r[1]
    spread = s.max() - s.min() if len(s) else 0.0
    return r[0], (s - s.min()) / spread if spread > 0 else np.ones_like(s)


def dbsf(r: Ranking) -> Ranking:
    """Distribution-based (Qdrant, Weaviate): mean -/+ 3 sigma mapped to 0..1."""
    s = r[1]
    if len(s) < 2 or s.std() == 0:
        return r[0], np.ones_like(s)
    low = s.mean() - 3 * s.std()
    return r[0], np.clip((s - low) / (6 * s.std()), 0.0, 1.0)


def combine(
    dense: Ranking,
    keyword: Ranking,
    wd: float,
    wk: float,
    fill: np.ndarray | None = None,
) -> Ranking:
    """wd * dense + wk * keyword. A document one leg missed gets 0 from it, or from
    the dense leg ``fill[doc]`` when given (its exact cosine)."""
    fused = {int(d): wd * float(s) for d, s in zip(*dense, strict=True)}
    for d, s in zip(keyword[0].tolist(), keyword[1].tolist(), strict=True):
        missing = 0.0 if fill is None else float(fill[d])
        fused[d] = fused.get(d, wd * missing) + wk * s
    docs = np.fromiter(fused, dtype=np.int64)
    scores = np.fromiter(fused.values(), dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:DEPTH]
    return docs[order], scores[order]


def rrf(q: Query, w_keyword: float, k: float = 60) -> Ranking:
    return combine(ranks(q.dense, k), ranks(q.keyword, k), 1.0, w_keyword)


def linear(q: Query, alpha: float, norm: Callable[[Ranking], Ranking]) -> Ranking:
    """alpha * norm(dense) + (1 - alpha) * norm(keyword), as Weaviate and ES do."""
    return combine(norm(q.dense), norm(q.keyword), alpha, 1 - alpha)


def cosine_plus(q: Query, beta: float, by: str) -> Ranking:
    """Raw cosine + beta * BM25 / (top BM25 | sum of idf): no per-query stretch."""
    norm = q.scale if by == "idf" else (q.keyword[1].max() if len(q.keyword[1]) else 1)
    return combine(q.dense, (q.keyword[0], q.keyword[1] / norm), 1.0, beta, q.cosines)


Method = tuple[str, str, Callable[[Query], Ranking]]


def methods() -> list[Method]:
    alphas = sorted([*(round(a / 10, 1) for a in range(11)), 0.75])
    rows: list[Method] = [("dense", "", lambda q: q.dense)]
    rows.append(("bm25", "chunks", lambda q: q.keyword))
    for w in (1, 0.5, 0.3, 0.2):
        rows.append(("rrf", f"k=60 w_bm25={w}", partial(rrf, w_keyword=w)))
    for name, norm in (("minmax", minmax), ("dbsf", dbsf)):
        for a in alphas:
            rows.append((name, f"alpha={a}", partial(linear, alpha=a, norm=norm)))
    for by in ("top", "idf"):
        for b in (0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
            rows.append(
                (f"cos+b*bm25/{by}", f"b={b}", partial(cosine_plus, beta=b, by=by))
            )
    return rows


def metrics(corpus: Corpus, run: list[Ranking]) -> tuple[float, float]:
    from faq.evaluation import ndcg_at, recall_at

    ndcg = recall = 0.0
    for qid, (docs, _) in zip(corpus.queries, run, strict=True):
        ranked = [corpus.ids[d] for d in docs.tolist()]
        ndcg += ndcg_at(ranked, corpus.qrels[qid])
        recall += recall_at(ranked, corpus.qrels[qid])
    return round(ndcg / len(run), 4), round(recall / len(run), 4)


def timed(fn: Callable, items: list) -> tuple[list, float]:
    """fn over items, and the median milliseconds of one call."""
    results, times = [], []
    for item in items:
        started = time.perf_counter()
        results.append(fn(item))
        times.append(time.perf_counter() - started)
    return results, round(float(np.median(times)) * 1000, 2)


def legs(name: str, cache: Path) -> tuple[Corpus, list[Query], dict[str, object]]:
    from embeddings.encoders import get_encoder

    corpus = corpus_load(name)
    texts = list(corpus.queries.values())
    chunk_vectors = cached_vectors(cache, f"{name}-chunks", corpus.chunks)
    query_vectors = cached_vectors(cache, f"{name}-queries", texts)
    get_encoder().encode(["warm up"])
    _, encode = timed(lambda t: get_encoder().encode([t]), texts[:50])
    starts = np.searchsorted(corpus.owner, np.arange(len(corpus.ids)))
    cosines, brute = timed(
        lambda v: np.maximum.reduceat(chunk_vectors @ v, starts), list(query_vectors)
    )
    dense = [top(c) for c in cosines]
    started = time.perf_counter()
    keyword = Keyword(corpus.chunks, corpus.owner)
    indexed = round(time.perf_counter() - started, 2)
    bm25, search = timed(keyword.search, texts)
    queries = [
        Query(d, k, c, keyword.scale(t))
        for d, k, c, t in zip(dense, bm25, cosines, texts, strict=True)
    ]
    whole = Keyword(corpus.texts, np.arange(len(corpus.texts)))
    info = {
        "documents": len(corpus.ids),
        "chunks": len(corpus.chunks),
        "queries": len(texts),
        "dense_encode_ms_p50": encode,
        "dense_search_ms_p50_numpy": brute,
        "bm25_index_s": indexed,
        "bm25_search_ms_p50": search,
        "bm25_documents": metrics(corpus, [whole.search(t) for t in texts]),
    }
    return corpus, queries, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fusion"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    os.environ.setdefault("VAR_DIR", str(args.cache / "var"))
    import django

    django.setup()
    rows: dict[tuple[str, str], dict[str, object]] = {}
    info = {}
    for name in DATASETS:
        corpus, queries, info[name] = legs(name, args.cache)
        for method, params, fuse in methods():
            run, fuse_ms = timed(fuse, queries)
            row = rows.setdefault((method, params), {"method": method})
            row["params"] = params
            row[f"{name}_ndcg10"], row[f"{name}_recall100"] = metrics(corpus, run)
            row[f"{name}_fuse_ms_p50"] = fuse_ms
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}"
    machine += f", {os.cpu_count()} cores"
    print(f"{'method':<15} {'params':<16}", end="")
    print("SciFact nDCG@10 / R@100   StackFAQ nDCG@10 / R@100   fuse ms p50")
    for row in rows.values():
        cells = [
            f"{row[f'{n}_ndcg10']:.4f} / {row[f'{n}_recall100']:.4f}" for n in DATASETS
        ]
        print(
            f"{row['method']:<15} {row['params']:<16}{cells[0]:<26}{cells[1]:<27}",
            end="",
        )
        print(row["scifact_fuse_ms_p50"])
    for name, values in info.items():
        print(name, ", ".join(f"{k} {v}" for k, v in values.items()))
    print("machine:", machine)
    if args.json:
        report = {"machine": machine, "datasets": info, "rows": list(rows.values())}
        print(json.dumps(report))


if __name__ == "__main__":
    main()
