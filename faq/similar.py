"""Reads by meaning between items: similar items, related questions, duplicates, and
the similarity of posted texts.

An item's vector is its FAQ question (the mean of its question chunks, one in all but
very long questions), or for a document the renormalised mean of all its chunks, so
the whole document counts and not only its opening. Other items are scored by their
best chunk, as search scores them, with the item's vector as the query.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from django.conf import settings

from embeddings import analysis
from embeddings.index.reader import reader
from embeddings.models import Chunk, vectors_decode
from faq.access import PUBLIC, Access
from faq.exceptions import ApplicationError, NotFound, TooLarge
from faq.models import ITEMS, Collection, Item
from faq.posted import posted_check, posted_encode

LABELS = {model._meta.label_lower: kind for kind, model in ITEMS.items()}
TITLES = {"faq": "question", "document": "title"}
NEIGHBOURS = 20  # each item's nearest others considered for duplicate pairs
ItemKey = tuple[str, int]  # (kind: "faq", id)


@dataclass(frozen=True)
class Similar:
    kind: str
    id: int
    title: str
    url: str
    score: float  # cosine of the item's vector to this item's best chunk
    matched: str  # that chunk's field


@dataclass(frozen=True)
class Duplicates:
    count: int  # pairs above the threshold, over the whole collection
    pairs: list[tuple[Item, Item, float]]  # the window asked for, most similar first


# --- items ----------------------------------------------------------------------


def item_get_published(*, kind: str, pk: int, access: Access = PUBLIC) -> Item:
    """The published item, if ``access`` may read its collection (a private
    collection's is not there for others, as if it did not exist)."""
    model = ITEMS[kind]
    item = (
        model._default_manager.select_related("collection")
        .filter(pk=pk, published=True)
        .first()
    )
    if item is None or not access.reads(item.collection):
        raise NotFound(f"There is no published {model._meta.verbose_name} {pk}.")
    return item


def item_vectors(*, kind: str, ids: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
    """id -> (partition, unit vector) for the items of ``ids`` that are embedded."""
    rows = _vector_rows(kind).filter(source_id__in=list(ids))
    return _grouped_vectors(rows.values_list("source_id", "partition", "vector"))


def _vector_rows(kind: str) -> Any:
    rows = Chunk.objects.filter(
        source_type=ITEMS[kind]._meta.label_lower, status=Chunk.Status.EMBEDDED
    )
    if kind == "faq":
        rows = rows.filter(field="question")
    return rows.order_by("source_id", "position")


def _grouped_vectors(
    rows: Iterable[tuple[int, str, Any]],
) -> dict[int, tuple[str, np.ndarray]]:
    grouped: dict[int, tuple[str, list[np.ndarray]]] = {}
    for source_id, partition, blob in rows:
        vector = vectors_decode([cast(bytes, blob)])[0]
        grouped.setdefault(source_id, (partition, []))[1].append(vector)
    return {
        source_id: (partition, analysis.mean_vector(np.vstack(found)))
        for source_id, (partition, found) in grouped.items()
    }


def similar_items(
    *, item: Item, k: int, min_score: float | None = None, kinds: Sequence[str] = ()
) -> list[Similar]:
    """The ``k`` published items nearest to ``item`` in its collection, itself
    excluded; nothing while the item waits to be embedded."""
    found = similar_many(
        sources=[(item.kind, item.pk)], k=k, min_score=min_score, kinds=kinds
    )
    return found.get((item.kind, item.pk), [])


def related_questions(*, faq_ids: Sequence[int]) -> dict[int, list[Similar]]:
    """A few FAQs like each of ``faq_ids``, for the search page: one batched index
    search and a handful of queries for the whole page."""
    count = settings.RELATED_QUESTIONS
    if count < 1 or not faq_ids:
        return {}
    found = similar_many(
        sources=[("faq", pk) for pk in faq_ids],
        k=count,
        min_score=settings.RELATED_MIN_SCORE,
        kinds=("faq",),
    )
    return {pk: found.get(("faq", pk), []) for pk in faq_ids}


def similar_many(
    *,
    sources: Sequence[ItemKey],
    k: int,
    min_score: float | None = None,
    kinds: Sequence[str] = (),
) -> dict[ItemKey, list[Similar]]:
    """Each source's ``k`` nearest published items (of ``kinds``; all if empty)."""
    if k < 1:
        return {}
    queries: dict[str, dict[ItemKey, np.ndarray]] = {}
    for kind in {kind for kind, _ in sources}:
        ids = [pk for other, pk in sources if other == kind]
        for pk, (partition, vector) in item_vectors(kind=kind, ids=ids).items():
            queries.setdefault(partition, {})[kind, pk] = vector
    found: dict[ItemKey, list[Similar]] = {}
    for partition, group in queries.items():
        found |= _similar_in(partition, group, k, min_score, tuple(kinds or ITEMS))
    return found


def _similar_in(
    partition: str,
    queries: dict[ItemKey, np.ndarray],
    k: int,
    min_score: float | None,
    kinds: tuple[str, ...],
) -> dict[ItemKey, list[Similar]]:
    """Ask the index for more chunks until more would change nothing, or
    ``SEARCH_MAX_CANDIDATES`` were asked for in all (shared by the queries)."""
    sources = list(queries)
    matrix = np.vstack(list(queries.values()))
    fetch = (k + 1) * 4
    most = max(fetch, settings.SEARCH_MAX_CANDIDATES // len(sources))
    while True:
        hits = reader.neighbours(matrix, partition, fetch)
        best, items = _best_per_item(sources, hits, min_score, kinds)
        if fetch >= most or all(
            _settled(best[source], row, k, fetch, min_score)
            for source, row in zip(sources, hits, strict=True)
        ):
            return _similar_made(best, items, k)
        fetch = min(fetch * 4, most)


def _settled(
    found: dict[ItemKey, tuple[float, str]],
    hits: list[tuple[int, float]],
    k: int,
    fetch: int,
    min_score: float | None,
) -> bool:
    """Enough items, the index exhausted, or its last hit already below
    ``min_score`` (hits come best first)."""
    below = min_score is not None and bool(hits) and hits[-1][1] < min_score
    return len(found) >= k or len(hits) < fetch or below


def _best_per_item(
    sources: list[ItemKey],
    hits: list[list[tuple[int, float]]],
    min_score: float | None,
    kinds: tuple[str, ...],
) -> tuple[dict[ItemKey, dict[ItemKey, tuple[float, str]]], dict[ItemKey, Item]]:
    """For each query, its candidates' best (cosine, field), best first, the item
    itself and items that are not published dropped; and the candidates."""
    chunk_ids = {chunk_id for row in hits for chunk_id, _ in row}
    rows = Chunk.objects.filter(pk__in=chunk_ids).values_list(
        "pk", "source_type", "source_id", "field"
    )
    owner = {
        pk: ((LABELS[label], source_id), field)
        for pk, label, source_id, field in rows
        if LABELS.get(label) in kinds
    }
    items = _items_light({source for source, _ in owner.values()})
    best: dict[ItemKey, dict[ItemKey, tuple[float, str]]] = {}
    for source, row in zip(sources, hits, strict=True):
        mine = best.setdefault(source, {})
        for chunk_id, score in row:
            if chunk_id not in owner or (min_score is not None and score < min_score):
                continue
            other, field = owner[chunk_id]
            if other != source and other in items:
                mine.setdefault(other, (score, field))
    return best, items


def _similar_made(
    best: dict[ItemKey, dict[ItemKey, tuple[float, str]]],
    items: dict[ItemKey, Item],
    k: int,
) -> dict[ItemKey, list[Similar]]:
    chosen = {source: list(others.items())[:k] for source, others in best.items()}
    return {
        source: [
            Similar(
                kind=other[0],
                id=other[1],
                title=str(items[other]),
                url=items[other].get_absolute_url(),
                score=round(score, 6),
                matched=field,
            )
            for other, (score, field) in row
        ]
        for source, row in chosen.items()
    }


def _items_light(sources: set[ItemKey]) -> dict[ItemKey, Item]:
    """The published ones, with only what a link needs (a document's body can be
    megabytes): one query per kind."""
    found: dict[ItemKey, Item] = {}
    for kind, model in ITEMS.items():
        ids = [pk for other, pk in sources if other == kind]
        if ids:
            rows = model._default_manager.filter(pk__in=ids, published=True).only(
                "pk", TITLES[kind], "url", "collection_id"
            )
            found.update(((kind, item.pk), item) for item in rows)
    return found


# --- duplicates -----------------------------------------------------------------


def collection_duplicates(
    *,
    collection: Collection,
    kind: str,
    threshold: float,
    offset: int = 0,
    limit: int = 50,
) -> Duplicates:
    """Pairs of published items of one kind that say the same thing, most similar
    first: FAQs by their questions, documents by their mean vectors. Mined with
    blocked matrix products over the stored vectors, never a loop over all pairs."""
    published = set(
        ITEMS[kind]
        ._default_manager.filter(collection=collection, published=True)
        .values_list("pk", flat=True)
    )
    rows = _vector_rows(kind).filter(partition=collection.partition)
    found = _grouped_vectors(
        row
        for row in rows.values_list("source_id", "partition", "vector").iterator()
        if row[0] in published
    )
    ids = list(found)
    if not ids:
        return Duplicates(0, [])
    matrix = np.vstack([vector for _, vector in found.values()])
    pairs = analysis.pairs_mine(matrix, threshold=threshold, top_k=NEIGHBOURS)
    window = pairs[offset : offset + limit]
    items = _items_light(
        {(kind, ids[i]) for pair in window for i in (pair.first, pair.second)}
    )
    return Duplicates(
        len(pairs),
        [
            (items[kind, ids[p.first]], items[kind, ids[p.second]], round(p.score, 6))
            for p in window
        ],
    )


# --- posted texts ---------------------------------------------------------------


def texts_similarity(
    *,
    text: str | None,
    texts: Sequence[str],
    pairs: Sequence[Sequence[str]],
    budget: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[float]:
    """Cosines of ``text`` to each of ``texts``, or of each pair's two texts, in
    the order given. Each distinct text is embedded once, in one batch."""
    posted = similarity_check(text=text, texts=texts, pairs=pairs)
    matrix = posted_encode(posted, budget=budget, job="similarity", progress=progress)
    if text is not None:
        return _rounded(analysis.cosine_scores(matrix[0], matrix[1:]))
    return _rounded(analysis.cosine_pairs(matrix[0::2], matrix[1::2]))


def similarity_check(
    *, text: str | None, texts: Sequence[str], pairs: Sequence[Sequence[str]]
) -> list[str]:
    """What ``texts_similarity`` will encode, once the request is known to be one
    it can answer (4xx otherwise)."""
    if (text is None) == (not pairs):
        raise ApplicationError("Send either text and texts, or pairs.")
    if text is not None and not texts:
        raise ApplicationError("texts must list at least one text to compare with.")
    if pairs and any(len(pair) != 2 for pair in pairs):
        raise ApplicationError("Each pair must be two texts.")
    _texts_check(len(pairs) or len(texts), settings.SIMILARITY_MAX_TEXTS)
    if text is not None:
        posted = [text, *texts]
        names = ["text", *(f"texts[{i}]" for i in range(len(texts)))]
    else:
        posted = [t for pair in pairs for t in pair]
        names = [f"pairs[{i}][{j}]" for i in range(len(pairs)) for j in (0, 1)]
    posted_check(posted, names=names, max_length=settings.SIMILARITY_MAX_TEXT_LENGTH)
    return posted


def texts_paraphrases(
    *,
    texts: Sequence[str],
    threshold: float,
    top_k: int,
    budget: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[analysis.Pair]:
    """Pairs of ``texts`` that say the same thing (cosine at least ``threshold``),
    most similar first; ``top_k`` caps the pairs each text can be part of."""
    paraphrases_check(texts=texts)
    matrix = posted_encode(texts, budget=budget, job="paraphrases", progress=progress)
    found = analysis.pairs_mine(matrix, threshold=threshold, top_k=top_k)
    return [p._replace(score=round(p.score, 6)) for p in found]


def paraphrases_check(*, texts: Sequence[str]) -> None:
    _texts_check(len(texts), settings.PARAPHRASE_MAX_TEXTS)
    names = [f"texts[{i}]" for i in range(len(texts))]
    posted_check(texts, names=names, max_length=settings.SIMILARITY_MAX_TEXT_LENGTH)


def _texts_check(count: int, limit: int) -> None:
    if count > limit:
        raise TooLarge(f"At most {limit} texts (or pairs) per request; got {count}.")


def _rounded(scores: np.ndarray) -> list[float]:
    return [round(float(score), 6) for score in scores]
