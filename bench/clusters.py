"""Topics: how well clustering recovers StackFAQ's 125 threads from their questions.

    python -m bench.clusters [--json]

The questions are each thread's FAQ question and the five user paraphrases of it
(750 in all, 125 threads: the qrels tie each paraphrase to its thread's answers),
embedded with the product's encoder. Each method groups them without being told
the threads; adjusted Rand index (ARI) and normalised mutual information (NMI)
compare the groups with the threads. Points a method leaves unclustered (HDBSCAN's
noise, community detection's leftovers) count as topics of one, as the product
shows them. The rows marked "k=125" are told the true number of threads, which a
product does not know: a reference, not a candidate. The same methods also run on
the 625 paraphrases alone, a second sample of the same threads.

Last, the default's time as the count grows (the questions resampled with a little
noise), as a ratio to its time on 1,000: Ward clustering is quadratic.
"""

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from bench import ROOT

DATA = ROOT.parent / "shared" / "data" / "stackfaq"
THREADS = 125
SCALE = (1000, 2000, 5000)
Method = Callable[[np.ndarray], np.ndarray]  # vectors -> a label per row, -1 noise


def questions_load() -> tuple[list[str], np.ndarray]:
    """StackFAQ's FAQ questions and paraphrases, and each one's thread number."""
    from faq.evaluation import dataset_load

    data = dataset_load(DATA)
    titles: dict[str, str] = {}
    with data.corpus.open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            titles[doc["_id"]] = doc["title"]
    threads = {title: n for n, title in enumerate(dict.fromkeys(titles.values()))}
    texts, labels = list(threads), list(threads.values())
    for qid, text in data.queries.items():
        (thread,) = {threads[titles[doc]] for doc in data.qrels[qid]}
        texts.append(text)
        labels.append(thread)
    return texts, np.array(labels)


def methods(threshold: float) -> list[tuple[str, str, Method]]:
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans

    from embeddings.clustering import vectors_cluster

    def product(t: float) -> Method:
        return lambda v: _labels(vectors_cluster(v, threshold=t), len(v))

    def cosine(linkage: str, t: float) -> Method:
        return AgglomerativeClustering(
            n_clusters=None, distance_threshold=t, metric="cosine", linkage=linkage
        ).fit_predict

    rows: list[tuple[str, str, Method]] = [
        ("ward (default)", f"t={threshold}", product(threshold)),
    ]
    rows += [("ward", f"t={t}", product(t)) for t in (1.2, 1.3, 1.5, 1.6)]
    rows += [
        ("cosine average", "t=0.45", cosine("average", 0.45)),
        ("cosine complete", "t=0.55", cosine("complete", 0.55)),
        (
            "hdbscan",
            "min size 3, samples 1",
            HDBSCAN(3, min_samples=1, copy=True).fit_predict,
        ),
        ("community (s-t)", "cos 0.7, min 2", _community(0.7, 2)),
        (
            "ward k=125",
            "told k",
            AgglomerativeClustering(THREADS, linkage="ward").fit_predict,
        ),
        (
            "kmeans k=125",
            "told k",
            KMeans(THREADS, n_init=10, random_state=0).fit_predict,
        ),
    ]
    return rows


def _labels(groups: list[list[int]], count: int) -> np.ndarray:
    labels = np.empty(count, dtype=np.int64)
    for n, group in enumerate(groups):
        labels[group] = n
    return labels


def _community(threshold: float, min_size: int) -> Method:
    """sentence-transformers' community detection (leftovers are noise)."""

    def run(vectors: np.ndarray) -> np.ndarray:
        import torch
        from sentence_transformers import util

        found = util.community_detection(
            torch.from_numpy(vectors), threshold=threshold, min_community_size=min_size
        )
        labels = np.full(len(vectors), -1, dtype=np.int64)
        for n, members in enumerate(found):
            labels[members] = n
        return labels

    return run


def score(truth: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    noise = labels < 0
    labels = labels.copy()
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())  # singletons
    sizes = np.bincount(labels)
    return {
        "ari": round(float(adjusted_rand_score(truth, labels)), 4),
        "nmi": round(float(normalized_mutual_info_score(truth, labels)), 4),
        "topics": int((sizes >= 2).sum()),
        "alone": int((sizes == 1).sum()),
    }


def scale(threshold: float, vectors: np.ndarray) -> dict[int, float]:
    """Seconds the default takes on n points, resampled from ``vectors``."""
    from embeddings.clustering import vectors_cluster

    rng = np.random.default_rng(0)
    seconds = {}
    for n in SCALE:
        sample = vectors[rng.integers(0, len(vectors), n)]
        sample = sample + rng.normal(0, 0.03, sample.shape).astype(np.float32)
        sample /= np.linalg.norm(sample, axis=1, keepdims=True)
        started = time.perf_counter()
        vectors_cluster(sample, threshold=threshold)
        seconds[n] = round(time.perf_counter() - started, 2)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    os.environ.setdefault("VAR_DIR", "/tmp/bench-clusters")
    import django

    django.setup()
    from django.conf import settings

    from embeddings.encoders import get_encoder

    texts, truth = questions_load()
    vectors = get_encoder().encode(texts)
    sets = {
        "questions": (vectors, truth),
        "paraphrases": (vectors[THREADS:], truth[THREADS:]),
    }
    rows = []
    for name, params, method in methods(settings.CLUSTER_THRESHOLD):
        row: dict[str, object] = {"method": name, "params": params}
        for label, (data, labels) in sets.items():
            started = time.perf_counter()
            found = method(data)
            row[f"{label}_ms"] = round((time.perf_counter() - started) * 1000)
            row |= {f"{label}_{k}": v for k, v in score(labels, found).items()}
        rows.append(row)
    seconds = scale(settings.CLUSTER_THRESHOLD, vectors)
    print(
        f"StackFAQ: {len(texts)} questions ({THREADS} threads), and the 625 paraphrases"
    )
    print(
        f"{'method':<16} {'params':<22} questions: ARI    NMI  topics alone     ms"
        "   paraphrases: ARI    NMI  topics"
    )
    for row in rows:
        print(
            f"{row['method']:<16} {row['params']:<22} "
            f"{row['questions_ari']:>14.3f} {row['questions_nmi']:6.3f} "
            f"{row['questions_topics']:>6} {row['questions_alone']:>5} "
            f"{row['questions_ms']:>6} "
            f"{row['paraphrases_ari']:>18.3f} {row['paraphrases_nmi']:6.3f} "
            f"{row['paraphrases_topics']:>6}"
        )
    base = seconds[SCALE[0]] or 1e-9
    print(
        "default's time by count:",
        ", ".join(f"{n}: {s} s ({s / base:.1f}x)" for n, s in seconds.items()),
    )
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}"
    print("machine:", machine, f"{os.cpu_count()} cores")
    if args.json:
        report = {"machine": machine, "rows": rows, "scale_seconds": seconds}
        print(json.dumps(report))


if __name__ == "__main__":
    main()
