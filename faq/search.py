"""The search service every front end uses: validate, embed, search, group, filter."""

import time
from dataclasses import dataclass, field

from django.conf import settings

from embeddings.selectors import ChunkHit, chunks_nearest, partition_size
from faq.exceptions import ApplicationError, NotFound
from faq.models import Collection, Document, Faq, Item

KINDS = ("faq", "document")
MODES = ("dense",)
SNIPPET_CHARS = 400


@dataclass(frozen=True)
class SearchQuery:
    q: str
    collection: str | None = None
    kind: str | None = None
    category: str | None = None
    k: int = 10
    min_score: float | None = None
    mode: str = "dense"


@dataclass(frozen=True)
class SearchResult:
    kind: str
    id: int
    title: str
    answer: str  # a FAQ's whole answer; empty for documents
    snippet: str  # the best matching chunk, trimmed
    matched: str  # the field of the best chunk: question, answer or body
    chunk_id: int
    url: str
    category: str
    collection: str
    score: float
    item: Item = field(repr=False, compare=False)


@dataclass(frozen=True)
class SearchResponse:
    query: SearchQuery
    results: list[SearchResult]
    took_ms: float


def search(query: SearchQuery) -> SearchResponse:
    started = time.perf_counter()
    query = search_validate(query)
    collections = _collections(query.collection)
    partitions = [c.partition for c in collections]
    results = _search_grouped(query, partitions, {c.pk: c for c in collections})
    return SearchResponse(query, results, (time.perf_counter() - started) * 1000)


def search_validate(query: SearchQuery) -> SearchQuery:
    q = " ".join(query.q.split())
    if not q:
        raise ApplicationError("Type a question to search for.")
    if len(q) > settings.SEARCH_MAX_QUERY_LENGTH:
        raise ApplicationError(
            "The query is too long: "
            f"at most {settings.SEARCH_MAX_QUERY_LENGTH} characters."
        )
    if not 1 <= query.k <= settings.SEARCH_MAX_RESULTS:
        raise ApplicationError(
            f"k must be between 1 and {settings.SEARCH_MAX_RESULTS}."
        )
    if query.min_score is not None and not -1 <= query.min_score <= 1:
        raise ApplicationError(
            "min_score must be between -1 and 1 (cosine similarity)."
        )
    if query.kind and query.kind not in KINDS:
        raise ApplicationError(f"kind must be one of {', '.join(KINDS)}.")
    if query.mode not in MODES:
        raise ApplicationError(f"mode must be one of {', '.join(MODES)}.")
    return SearchQuery(**{**query.__dict__, "q": q})


def _collections(slug: str | None) -> list[Collection]:
    if not slug:
        return list(Collection.objects.all())
    collection = Collection.objects.filter(slug=slug).first()
    if collection is None:
        raise NotFound(f"There is no collection {slug!r}.")
    return [collection]


def _search_grouped(
    query: SearchQuery, partitions: list[str], collections: dict[int, Collection]
) -> list[SearchResult]:
    """Ask for more chunks until ``k`` items pass the filters or the index runs out."""
    available = sum(partition_size(p) for p in partitions)
    fetch = query.k * 4
    while True:
        hits = chunks_nearest(query.q, partitions=partitions, k=fetch)
        results = _results(query, hits, collections)
        exhausted = fetch >= available or (
            query.min_score is not None
            and bool(hits)
            and hits[-1].score < query.min_score
        )
        if len(results) >= query.k or exhausted:
            return results[: query.k]
        fetch *= 4


def _results(
    query: SearchQuery, hits: list[ChunkHit], collections: dict[int, Collection]
) -> list[SearchResult]:
    best: dict[tuple[str, int], ChunkHit] = {}
    for hit in hits:  # best first, so the first chunk of a source is its best
        if query.min_score is None or hit.score >= query.min_score:
            best.setdefault((hit.source_type, hit.source_id), hit)
    items = _items(query, best)
    results = []
    for (source_type, source_id), hit in best.items():
        item = items.get((source_type, source_id))
        if item is not None:
            results.append(_result(item, hit, collections[item.collection_id]))
    return results


def _items(
    query: SearchQuery, best: dict[tuple[str, int], ChunkHit]
) -> dict[tuple[str, int], Item]:
    """Fetch the items behind the hits that pass the filters: one query per kind."""
    found: dict[tuple[str, int], Item] = {}
    for model in (Faq, Document):
        if query.kind and query.kind != model.kind:
            continue
        label = model._meta.label_lower
        ids = [source_id for source_type, source_id in best if source_type == label]
        items = model.objects.filter(pk__in=ids, published=True)
        if query.category:
            items = items.filter(category=query.category)
        found.update(((label, item.pk), item) for item in items)
    return found


def _result(item: Item, hit: ChunkHit, collection: Collection) -> SearchResult:
    return SearchResult(
        kind=item.kind,
        id=item.pk,
        title=str(item),
        answer=item.answer if isinstance(item, Faq) else "",
        snippet=_trim(_without_prefix(hit.text, str(item))),
        matched=hit.field,
        chunk_id=hit.chunk_id,
        url=item.get_absolute_url(),
        category=item.category,
        collection=collection.slug,
        score=round(hit.score, 4),
        item=item,
    )


def _without_prefix(text: str, title: str) -> str:
    """Chunks carry their title for context; the snippet need not repeat it."""
    return (
        text[len(title) :].lstrip()
        if title and text.startswith(title) and text != title
        else text
    )


def _trim(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > 0 else SNIPPET_CHARS] + "…"


def search_warm_up() -> None:
    """Load the model and every index now, so the first visitor does not wait."""
    from embeddings import vectors
    from embeddings.encoders import encode_query

    encode_query("warm up")
    for partition in vectors.partitions():
        vectors.reader.get(partition)
