"""Duplicate questions on StackFAQ: precision and recall of mined pairs.

    python -m bench.duplicates [--json] [--scale 10000]

How StackFAQ represents threads: ``corpus.jsonl`` holds one entry per answer,
``faq<T>-a<i>``, and every entry of thread T carries the thread's question verbatim as
its title; ``queries.jsonl`` holds users' paraphrases of that question, ``q<T>-<m>``,
and ``qrels.tsv`` judges each paraphrase relevant to every answer of its thread (and of
no other). So the thread of a paraphrase is the one thread its judged entries belong to.

The texts mined are each thread's distinct wordings of its question: the FAQ question
and its paraphrases (125 threads x 6 = 750 texts). Gold pairs are every two texts of
one thread (125 x 15 = 1,875). Mining is what ``GET /api/collections/{slug}/duplicates``
runs (``embeddings.analysis.pairs_mine``, each text's 20 nearest), over the real
encoder's vectors, at ``DUPLICATE_THRESHOLD`` and a sweep; the baseline is TF-IDF
cosine mined the same way, at its own best threshold. The corpus entries themselves are
checked too (their questions are identical within a thread, so this is a floor).

``--scale N`` also times the blocked numpy mining against sentence-transformers'
``paraphrase_mining_embeddings`` (torch) on N vectors (StackFAQ's, tiled, each copy
nudged by noise: about 13 near-copies of every question),
in the same run, and checks that both find the same pairs.
"""

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from bench import ROOT

DATA = ROOT.parent / "shared" / "data" / "stackfaq"
SWEEP = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.50 .. 0.95
TFIDF_SWEEP = [round(0.1 + 0.05 * i, 2) for i in range(17)]  # 0.10 .. 0.90
Pairs = set[tuple[int, int]]


def read_jsonl(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def threads_load() -> tuple[list[str], list[str], list[str], list[str]]:
    """Texts and their threads: the question wordings, then the corpus entries."""
    corpus = read_jsonl(DATA / "corpus.jsonl")
    entry_thread = {doc["_id"]: doc["_id"].split("-")[0] for doc in corpus}
    judged: dict[str, set[str]] = defaultdict(set)
    with (DATA / "qrels.tsv").open(encoding="utf-8") as qrels:
        next(qrels)  # header
        for line in qrels:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                judged[query_id].add(entry_thread[corpus_id])
    assert all(len(threads) == 1 for threads in judged.values())
    question = {entry_thread[doc["_id"]]: doc["title"] for doc in corpus}
    texts, threads = list(question.values()), list(question)
    for query in read_jsonl(DATA / "queries.jsonl"):
        if query["_id"] in judged:
            texts.append(query["text"])
            threads.append(next(iter(judged[query["_id"]])))
    entries = [doc["title"] for doc in corpus]
    return texts, threads, entries, [entry_thread[doc["_id"]] for doc in corpus]


def gold_pairs(threads: list[str]) -> Pairs:
    members: dict[str, list[int]] = defaultdict(list)
    for row, thread in enumerate(threads):
        members[thread].append(row)
    return {pair for rows in members.values() for pair in combinations(rows, 2)}


def scored(found: Pairs, gold: Pairs) -> dict[str, float]:
    hits = len(found & gold)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {
        "pairs": len(found),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def sweep(
    matrix: np.ndarray, gold: Pairs, thresholds: list[float], top_k: int
) -> list[dict[str, float]]:
    from embeddings.analysis import pairs_mine

    mined = pairs_mine(matrix, threshold=min(thresholds), top_k=top_k)
    rows = []
    for threshold in thresholds:
        found = {(p.first, p.second) for p in mined if p.score >= threshold}
        rows.append({"threshold": threshold, **scored(found, gold)})
    return rows


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    return np.asarray(vectorizer.fit_transform(texts).toarray(), dtype=np.float32)


def scale_check(vectors: np.ndarray, count: int, threshold: float) -> dict[str, object]:
    """Blocked numpy mining against sentence-transformers' on ``count`` vectors."""
    import torch
    from sentence_transformers.util import paraphrase_mining_embeddings

    from embeddings.analysis import pairs_mine, unit_rows

    rng = np.random.default_rng(0)
    tiles = vectors[rng.integers(0, len(vectors), count)]
    matrix = unit_rows(tiles + 0.01 * rng.standard_normal(tiles.shape))
    started = time.perf_counter()
    ours = pairs_mine(matrix, threshold=threshold, top_k=20)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = paraphrase_mining_embeddings(
        torch.from_numpy(matrix), top_k=20, max_pairs=10**9
    )
    theirs_s = time.perf_counter() - started
    theirs_pairs = {(int(i), int(j)) for s, i, j in theirs if s >= threshold}
    return {
        "vectors": count,
        "threshold": threshold,
        "pairs": len(ours),
        "same_pairs": {(p.first, p.second) for p in ours} == theirs_pairs,
        "numpy_blocked_s": round(ours_s, 2),
        "sentence_transformers_s": round(theirs_s, 2),
        "ratio": round(theirs_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scale", type=int, default=10_000, help="0: skip")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    import django

    django.setup()
    from django.conf import settings

    from embeddings.encoders import get_encoder
    from faq.similar import NEIGHBOURS

    texts, threads, entries, entry_threads = threads_load()
    gold = gold_pairs(threads)
    started = time.perf_counter()
    dense = get_encoder().encode(texts)
    encode_s = time.perf_counter() - started
    default = settings.DUPLICATE_THRESHOLD
    thresholds = sorted({*SWEEP, default})
    report: dict[str, object] = {
        "texts": len(texts),
        "threads": len(set(threads)),
        "gold_pairs": len(gold),
        "top_k": NEIGHBOURS,
        "default_threshold": default,
        "encode_s": round(encode_s, 2),
        "minilm": sweep(dense, gold, thresholds, NEIGHBOURS),
        "tfidf": sweep(tfidf_vectors(texts), gold, TFIDF_SWEEP, NEIGHBOURS),
    }
    distinct = list(dict.fromkeys(entries))
    where = {text: row for row, text in enumerate(distinct)}
    entry_vectors = get_encoder().encode(distinct)[[where[t] for t in entries]]
    entry_gold = gold_pairs(entry_threads)
    report["corpus_entries"] = {
        "entries": len(entries),
        "gold_pairs": len(entry_gold),
        **sweep(entry_vectors, entry_gold, [default], top_k=len(entries))[0],
    }
    if args.scale:
        report["scale"] = scale_check(dense, args.scale, default)
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}"
    report["machine"] = f"{machine}, {os.cpu_count()} cores"
    print_table(report)
    if args.json:
        print(json.dumps(report))


def print_table(report: dict[str, object]) -> None:
    print(
        f"StackFAQ questions: {report['texts']} texts in {report['threads']} threads, "
        f"{report['gold_pairs']} gold pairs; each text's {report['top_k']} nearest"
    )
    for name in ("minilm", "tfidf"):
        rows = report[name]
        assert isinstance(rows, list)
        best = max(rows, key=lambda row: row["f1"])
        print(f"\n{name:<7} threshold   pairs  precision  recall      F1")
        for row in rows:
            mark = " <- best F1" if row is best else ""
            if row["threshold"] == report["default_threshold"] and name == "minilm":
                mark += " <- default"
            print(
                f"{'':<7} {row['threshold']:>9.2f} {row['pairs']:>7} "
                f"{row['precision']:>10.4f} {row['recall']:>7.4f} {row['f1']:>7.4f}"
                f"{mark}"
            )
    print("\ncorpus entries (same question within a thread):", report["corpus_entries"])
    if "scale" in report:
        print("mining at scale:", report["scale"])
    print("machine:", report["machine"])


if __name__ == "__main__":
    main()
