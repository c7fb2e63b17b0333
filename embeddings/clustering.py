"""Topics: groups of texts that mean about the same, with keyword labels.

Knows nothing of FAQs: texts and their unit vectors in, topics of indexes out.

Grouping is scikit-learn's ``AgglomerativeClustering`` with Ward linkage cut at a
merge distance, so the number of topics need not be known. On unit vectors Ward
merges the pair of groups whose union adds the least spread; its merge cost inside
one tight topic stays about the same however many members the topic has, while the
cost of joining two distinct topics grows with their sizes, so one threshold suits
small and large collections alike. On StackFAQ (750 questions, 125 threads) it
beats average- or complete-linkage cosine thresholds and HDBSCAN, and matches Ward
told the true number of threads (``bench/clusters.py``, ``bench/RESULTS.md``).

Labels are class-based TF-IDF (as BERTopic's c-TF-IDF): the words many members of
a topic use that few texts elsewhere use, English stop words left out.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A word: a letter, then letters, digits or underscores (no bare numbers).
TOKEN_PATTERN = r"(?u)\b[^\W\d_]\w+\b"
# What the tokenizer leaves of contractions ("aren't" -> "aren"): not keywords.
CONTRACTIONS = {
    *("aren", "isn", "wasn", "weren", "don", "doesn", "didn", "won", "wouldn"),
    *("shouldn", "couldn", "haven", "hasn", "hadn", "ll", "ve", "im"),
}


@dataclass(frozen=True)
class Topic:
    members: list[int]  # indexes into the input, ascending
    representatives: list[int]  # the members nearest the topic's centre, nearest first
    labels: list[str]  # keywords, most telling first

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Topics:
    topics: list[Topic]  # largest first
    unclustered: list[int]  # members of groups smaller than min_size, ascending
    threshold: float
    min_size: int


def topics_find(
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    threshold: float,
    min_size: int,
    representatives: int = 3,
    labels: int = 4,
) -> Topics:
    """Group ``texts`` (with their unit ``vectors``, one row each) into topics.

    Groups smaller than ``min_size`` go to ``unclustered``: a question nobody else
    asks is not a topic.
    """
    if len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
    groups = vectors_cluster(vectors, threshold=threshold)
    kept = [group for group in groups if len(group) >= min_size]
    unclustered = sorted(i for group in groups if len(group) < min_size for i in group)
    keywords = topics_keywords(texts, kept, unclustered=unclustered, terms=labels)
    topics = [
        Topic(
            members=sorted(group),
            representatives=group_central(vectors, group)[:representatives],
            labels=words,
        )
        for group, words in zip(kept, keywords, strict=True)
    ]
    return Topics(topics, unclustered, threshold, min_size)


def vectors_cluster(vectors: np.ndarray, *, threshold: float) -> list[list[int]]:
    """Row indexes grouped by Ward linkage cut at ``threshold``, largest first
    (ties: the group whose first row comes first)."""
    count = len(vectors)
    if count < 2:
        return [[0]] if count else []
    from sklearn.cluster import AgglomerativeClustering

    assigned = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, linkage="ward"
    ).fit_predict(np.asarray(vectors, dtype=np.float64))
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(assigned.tolist()):
        groups.setdefault(label, []).append(row)
    return sorted(groups.values(), key=lambda group: (-len(group), group[0]))


def group_central(vectors: np.ndarray, group: Sequence[int]) -> list[int]:
    """The group's rows, nearest its centroid (by cosine) first."""
    rows = np.asarray(vectors[list(group)], dtype=np.float32)
    centre = rows.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    order = np.argsort(-(rows @ centre), kind="stable")
    return [group[i] for i in order.tolist()]


def topics_keywords(
    texts: Sequence[str],
    groups: Sequence[Sequence[int]],
    *,
    unclustered: Sequence[int] = (),
    terms: int = 4,
) -> list[list[str]]:
    """Each group's ``terms`` most telling words by c-TF-IDF.

    A word counts once per text (so one long text cannot carry a label), its share
    of the group's words is weighed by ``log(1 + A / f)``, where ``f`` is how often
    it occurs in all the texts (unclustered ones included) and ``A`` the average
    number of words per group. A word that one member alone uses weighs half: a label
    should say what the members share.
    """
    if not groups:
        return []
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = [*groups, unclustered] if unclustered else list(groups)
    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | CONTRACTIONS),
        binary=True,
        token_pattern=TOKEN_PATTERN,
    )
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words, numbers and punctuation
        return [[] for _ in groups]
    per_class = np.vstack(
        [np.asarray(counts[list(group)].sum(axis=0)).ravel() for group in classes]
    ).astype(np.float64)
    totals = per_class.sum(axis=1, keepdims=True)
    frequency = per_class.sum(axis=0)
    average = totals.mean()
    weights = (per_class / np.maximum(totals, 1)) * np.log1p(
        average / np.maximum(frequency, 1)
    )
    vocabulary = vectorizer.get_feature_names_out()
    return [
        _best_terms(weights[row], per_class[row], vocabulary, terms)
        for row in range(len(groups))
    ]


def _best_terms(
    weights: np.ndarray, counts: np.ndarray, vocabulary: np.ndarray, terms: int
) -> list[str]:
    # A word of one member alone counts half; ties alphabetical, so labels are stable.
    alone = (counts == 1) & (counts.max(initial=0.0) > 1)
    order = np.lexsort((vocabulary, -np.where(alone, weights / 2, weights)))
    return [str(vocabulary[i]) for i in order[:terms] if counts[i] > 0]
