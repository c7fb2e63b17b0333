"""Retrieval quality on a BEIR dataset through the real import, embedding and search."""

import csv
import json
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from embeddings import services as embedding
from embeddings.encoders import encode_query, make_encoder
from embeddings.models import Chunk
from faq.importers import ImportRefused, Limits, import_rows, parse_file
from faq.importers.rows import Progress
from faq.models import Collection
from faq.search import SearchQuery, search


@dataclass(frozen=True)
class Dataset:
    corpus: Path
    queries: dict[str, str]  # only the queries that have judgments
    qrels: dict[str, dict[str, int]]


def dataset_load(directory: Path) -> Dataset:
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        if not (directory / name).is_file():
            raise ImportRefused(f"{directory} has no {name}: not a BEIR-format dataset")
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels.tsv").open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)  # header line
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {}
    with (directory / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                obj = json.loads(line)
                if str(obj["_id"]) in qrels:
                    queries[str(obj["_id"])] = obj["text"]
    return Dataset(directory / "corpus.jsonl", queries, qrels)


def ndcg_at(ranked: list[str], judged: dict[str, int], k: int = 10) -> float:
    """nDCG with linear graded gains, as trec_eval's ndcg_cut computes it."""
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], judged: dict[str, int], k: int = 100) -> float:
    relevant = {doc for doc, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], judged: dict[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1 / (i + 1)
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def evaluate(
    directory: Path, *, modes: list[str], progress: Progress
) -> list[dict[str, Any]]:
    """Import the corpus into a throwaway collection, run every query in each mode
    (the corpus is embedded once for all), then remove the collection."""
    dataset = dataset_load(directory)
    rows, errors = parse_file(
        dataset.corpus.name,
        dataset.corpus.read_bytes(),
        progress=progress,
        limits=Limits.for_shell(),
    )
    collection = Collection.objects.create(
        slug=f"eval-{uuid.uuid4().hex[:12]}", name=f"Evaluation of {directory.name}"
    )
    try:
        started = time.perf_counter()
        _index(collection, rows, errors, progress)
        indexed_s = time.perf_counter() - started
        return [
            _run_queries(dataset, collection, mode, progress)
            | {
                "dataset": directory.name,
                "mode": mode,
                "documents": len(rows),
                "index_seconds": round(indexed_s, 1),
            }
            for mode in modes
        ]
    finally:
        _drop(collection)


def _index(
    collection: Collection, rows: list[Any], errors: list[Any], progress: Progress
) -> None:
    # The embedding runs here, in this process, so that no worker is needed.
    with embedding.tasks_held():
        report = import_rows(
            rows, collection=collection, errors=errors, skip_invalid=True
        )
    if report.errors:
        raise ImportRefused(
            f"{len(report.errors)} corpus rows are invalid, first: {report.errors[0]}"
        )
    pending = list(
        Chunk.objects.filter(
            partition=collection.partition, status=Chunk.Status.PENDING
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    size = settings.EMBEDDINGS_TASK_BATCH
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    # With the worker's backend, as a worker would; the queries use the site's.
    worker = settings.EMBEDDINGS_WORKER_BACKEND
    encoder = None if worker == settings.EMBEDDINGS_BACKEND else make_encoder(worker)
    for batch in progress(batches, desc="embedding"):
        embedding.chunks_embed(batch, encoder=encoder)
    embedding.index_sync(collection.partition)


def _run_queries(
    dataset: Dataset, collection: Collection, mode: str, progress: Progress
) -> dict[str, Any]:
    ndcg, recall, mrr, latency = [], [], [], []
    encode_query.cache_clear()  # each mode pays for its own query embeddings
    for query_id, text in progress(
        dataset.queries.items(), desc="searching", total=len(dataset.queries)
    ):
        started = time.perf_counter()
        query = SearchQuery(
            q=text,
            collection=collection.slug,
            k=100,
            mode=mode,
            snippets=False,
            cosines=False,  # ranks only: keyword mode need not embed the query
        )
        found = search(query)
        latency.append((time.perf_counter() - started) * 1000)
        ranked = [result.item.external_id for result in found.results]
        judged = dataset.qrels[query_id]
        ndcg.append(ndcg_at(ranked, judged))
        recall.append(recall_at(ranked, judged))
        mrr.append(mrr_at(ranked, judged))
    n = len(ndcg) or 1
    return {
        "queries": len(ndcg),
        "ndcg_at_10": round(sum(ndcg) / n, 4),
        "recall_at_100": round(sum(recall) / n, 4),
        "mrr_at_10": round(sum(mrr) / n, 4),
        "latency_ms_p50": round(percentile(latency, 50), 2),
        "latency_ms_p95": round(percentile(latency, 95), 2),
    }


def _drop(collection: Collection) -> None:
    with embedding.tasks_held(), transaction.atomic():
        # Chunks first, in one statement, so the per-item delete signals find none.
        embedding.partition_drop(collection.partition)
        collection.delete()
