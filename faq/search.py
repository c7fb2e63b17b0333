"""The search service every front end uses: validate, search both legs, fuse, group,
filter, and explain."""

import logging
import time
from dataclasses import dataclass, field, replace

from django.conf import settings
from prometheus_client import Counter

from embeddings.encoders import (
    EncoderUnavailable,
    ModelUnavailable,
    models_known,
)
from embeddings.fusion import DEFAULT_WEIGHTS, METHODS, Fused
from embeddings.index.keywords import query_terms
from embeddings.selectors import (
    ChunkHit,
    chunks_search,
    partition_size,
)
from faq import offline
from faq.access import PUBLIC, Access
from faq.curation import pin_matching, synonyms_matched
from faq.exceptions import ApplicationError, Conflict, NotFound, Unavailable
from faq.models import ITEMS, Collection, Document, Faq, Item
from faq.offline import Content
from faq.snippets import best_passage

logger = logging.getLogger(__name__)
SEARCHES = Counter("searchsite_searches_total", "Searches answered, by mode.", ["mode"])

KIND_LABELS = {kind: model._meta.label_lower for kind, model in ITEMS.items()}
MODES = ("hybrid", "dense", "keyword")
FUSIONS = tuple(METHODS)
SourceKey = tuple[str, int]  # (source type, as chunks name it: "faq.faq"; id)


@dataclass(frozen=True)
class SearchQuery:
    q: str
    collection: str | None = None
    kind: str | None = None
    category: str | None = None
    k: int = 10
    offset: int = 0  # results skipped: a page's first is offset + 1
    min_score: float | None = None
    mode: str = ""  # empty: settings.SEARCH_MODE
    fusion: str = ""  # empty: settings.SEARCH_FUSION
    weight: float | None = None  # the keyword leg's weight; None: the default
    explain: bool = False
    snippets: bool = True
    facets: bool = False  # count the results of each kind and category too
    access: Access = PUBLIC  # the private collections the caller may read
    # Keyword mode: each result's cosine too (and so whether one is confident),
    # at the cost of embedding the query; min_score implies it, and the other
    # modes embed the query anyway.
    cosines: bool = True


@dataclass(frozen=True)
class SearchResult:
    kind: str
    id: int
    title: str
    answer: str  # a FAQ's whole answer; empty for documents
    snippet: str  # the passage of the best chunk that matches the query best
    matched: str  # the best chunk's field: question, answer, body or "page N"
    chunk_id: int
    url: str
    category: str
    collection: str
    score: float  # what the mode ranks by (fused in hybrid)
    cosine: float | None  # the best chunk's cosine to the query; None: not asked
    dense_rank: int | None
    keyword_score: float | None  # BM25 of the best keyword chunk
    keyword_rank: int | None
    explanation: str | None
    item: Item = field(repr=False, compare=False)
    pinned: bool = False  # an editor's answer for this query (faq.curation)


@dataclass(frozen=True)
class SearchResponse:
    query: SearchQuery
    results: list[SearchResult]
    took_ms: float
    terms: list[str]  # the query's analysed terms, for highlighting
    total: int = 0  # results to page through (see _search_grouped)
    collection: Collection | None = None  # the one searched, if one was named
    facets: dict[str, dict[str, int]] | None = None  # with query.facets: see _facets
    private: bool = False  # a private collection was among those searched

    @property
    def contact_url(self) -> str | None:
        """With no confident answer, where to ask: the contact page of the
        collection searched, or else of the best result's."""
        if self.confident is not False:
            return None
        searched = [self.collection] if self.collection else []
        best = [self.results[0].item.collection] if self.results else []
        return next((c.contact_url for c in searched + best if c.contact_url), None)

    @property
    def confident(self) -> bool | None:
        """Does the best result clear the collection's confidence threshold?
        None: nobody can say (a keyword search that asked for no cosines)."""
        if not self.results:
            return False
        cosines = [r.cosine for r in self.results]
        if None in cosines:
            return None
        threshold = self.results[0].item.collection.confidence_threshold
        return max(c for c in cosines if c is not None) >= threshold


def search(query: SearchQuery) -> SearchResponse:
    """Search; from this host's copy of the content while the database cannot be
    reached (``faq.offline``), when it keeps one."""
    started = time.perf_counter()
    query = search_validate(query)
    try:
        found, collections = offline.read(lambda content: _search(query, content))
    except ModelUnavailable as error:  # a host's index of a model it cannot load
        raise Conflict(str(error)) from error
    except EncoderUnavailable as error:
        raise Unavailable(
            "Search cannot embed the question right now (the embedding provider "
            "is unavailable); try again in a minute."
        ) from error
    took = (time.perf_counter() - started) * 1000
    SEARCHES.labels(query.mode).inc()
    named = collections[0] if query.collection else None
    terms = list(
        dict.fromkeys(query_terms(query.q) + query_terms(" ".join(found.synonyms)))
    )
    return SearchResponse(
        query,
        found.results,
        took,
        terms,
        found.total,
        named,
        found.facets,
        private=any(c.private for c in collections),
    )


def search_validate(query: SearchQuery) -> SearchQuery:
    q = " ".join(query.q.split())
    if not q:
        raise ApplicationError("Type a question to search for.")
    limit = settings.SEARCH_MAX_QUERY_LENGTH
    if len(q) > limit:
        raise ApplicationError(f"The query is too long: at most {limit} characters.")
    if not 1 <= query.k <= settings.SEARCH_MAX_RESULTS:
        raise ApplicationError(
            f"k must be between 1 and {settings.SEARCH_MAX_RESULTS}."
        )
    if not 0 <= query.offset <= settings.SEARCH_MAX_OFFSET:
        raise ApplicationError(
            f"offset must be between 0 and {settings.SEARCH_MAX_OFFSET}: deeper "
            "than that, ask a narrower question."
        )
    if query.min_score is not None and not -1 <= query.min_score <= 1:
        raise ApplicationError(
            "min_score must be between -1 and 1 (cosine similarity)."
        )
    if query.kind and query.kind not in ITEMS:
        raise ApplicationError(f"kind must be one of {', '.join(ITEMS)}.")
    mode = query.mode or settings.SEARCH_MODE
    if mode not in MODES:
        raise ApplicationError(f"mode must be one of {', '.join(MODES)}.")
    fusion = query.fusion or settings.SEARCH_FUSION
    if fusion not in FUSIONS:
        raise ApplicationError(f"fusion must be one of {', '.join(FUSIONS)}.")
    cosines = query.cosines or query.min_score is not None or mode != "keyword"
    weight = query.weight
    if weight is None:
        default = fusion == settings.SEARCH_FUSION
        weight = settings.SEARCH_KEYWORD_WEIGHT if default else DEFAULT_WEIGHTS[fusion]
    if not 0 <= weight <= 1:
        raise ApplicationError("weight (of the keyword leg) must be between 0 and 1.")
    return replace(query, q=q, mode=mode, fusion=fusion, weight=weight, cosines=cosines)


@dataclass(frozen=True)
class Found:
    results: list[SearchResult]
    total: int
    facets: dict[str, dict[str, int]] | None = None
    synonyms: list[str] = field(default_factory=list)  # the keyword leg matched too


def _search(query: SearchQuery, content: Content) -> tuple[Found, list[Collection]]:
    collections = collections_readable(query.collection, query.access, content)
    collections_check_model(collections)
    found = _search_grouped(query, collections, content)
    # Editors' pins live in the database: a host's copy serves without them.
    copy = content is not offline.DATABASE
    pin = None if query.offset or copy else pin_matching(query.q, collections)
    if pin:
        found = _pinned_first(query, found, *pin)
    return found, collections


def _pinned_first(query: SearchQuery, found: Found, faq: Faq, cosine: float) -> Found:
    """The pinned FAQ first (moved up, or added), if the filters let it be."""
    if query.kind not in (None, "", "faq") or (
        query.category and faq.category != query.category
    ):
        return found
    if query.min_score is not None and cosine < query.min_score:
        return found
    mine = [r for r in found.results if r.kind == "faq" and r.id == faq.pk]
    others = [r for r in found.results if not (r.kind == "faq" and r.id == faq.pk)]
    first = (
        replace(mine[0], pinned=True) if mine else _pinned_result(query, faq, cosine)
    )
    return replace(
        found, results=[first, *others][: query.k], total=found.total + (not mine)
    )


def _pinned_result(query: SearchQuery, faq: Faq, cosine: float) -> SearchResult:
    """A pinned FAQ the search did not find: its cosine is the query's to the
    pinned query (the editor's word that it answers it)."""
    return SearchResult(
        kind=faq.kind,
        id=faq.pk,
        title=str(faq),
        answer=faq.answer,
        snippet=best_passage(faq.answer, query.q, title=str(faq))
        if query.snippets
        else "",
        matched="pinned",
        chunk_id=0,
        url=faq.get_absolute_url(),
        category=faq.category,
        collection=faq.collection.slug,
        score=1.0,
        cosine=round(cosine, 4),
        dense_rank=None,
        keyword_score=None,
        keyword_rank=None,
        explanation="pinned by an editor" if query.explain else None,
        item=faq,
        pinned=True,
    )


def collections_readable(
    slug: str | None, access: Access, content: Content = offline.DATABASE
) -> list[Collection]:
    """The collection ``slug`` (or every one) that ``access`` may read: a private
    one it may not is not there, as one that does not exist."""
    readable = [c for c in content.collections(slug) if access.reads(c)]
    if slug and not readable:
        raise NotFound(f"There is no collection {slug!r}.")
    return readable


def collections_check_model(collections: list[Collection]) -> None:
    """Refuse collections embedded with a model this process cannot encode the
    query with: cosines across two models mean nothing. (A collection being
    re-embedded is searched with the model it has until it switches.)"""
    recorded = [c for c in collections if c.embedding_model]
    if not recorded:
        return
    known = models_known()
    for c in recorded:
        if c.embedding_model not in known:
            raise Conflict(
                f"The collection {c.slug!r} was embedded with {c.embedding_model}, "
                f"which this site does not load (it embeds with {known[0]}), so it "
                f"cannot be searched: name {c.embedding_model} in EMBEDDINGS_MODELS, "
                "or re-embed it: manage.py rebuild_index --reembed --partition "
                f"{c.partition}",
                extra={"collection": c.slug, "embedding_model": c.embedding_model},
            )


def _search_grouped(
    query: SearchQuery, collections: list[Collection], content: Content
) -> Found:
    """The page of results (``offset``, ``k``), and how many there are in all.

    Each leg asks for more chunks until the page's last item passes the filters,
    the indexes run out or ``SEARCH_MAX_CANDIDATES`` were asked for: filters that
    reject nearly everything cost a bounded search, not a scan of the index. The
    total counts the items among the chunks asked for (each leg's
    ``SEARCH_CANDIDATES`` nearest, or more for a deep page or a strict filter)."""
    partitions = [c.partition for c in collections]
    synonyms = synonyms_matched(query.q, collections) if query.mode != "dense" else []
    legs = ("dense", "keyword") if query.mode == "hybrid" else (query.mode,)
    need = query.offset + query.k
    fetch = max(need * 4, settings.SEARCH_CANDIDATES)
    most = min(
        max(fetch, settings.SEARCH_MAX_CANDIDATES),
        sum(partition_size(p) for p in partitions),
    )
    while True:
        hits = chunks_search(
            query.q,
            partitions=partitions,
            k=fetch,
            legs=legs,
            synonyms=synonyms,
            cosines=query.cosines,
        )
        found = _results(query, hits, collections, content, need)
        if len(found.results) >= need or fetch >= most:
            return replace(
                found, results=found.results[query.offset : need], synonyms=synonyms
            )
        fetch = min(fetch * 4, most)


def _results(
    query: SearchQuery,
    hits: dict[str, list[ChunkHit]],
    collections: list[Collection],
    content: Content,
    need: int,
) -> Found:
    """The first ``need`` results among the hits, and how many the hits hold."""
    # Each leg's hits are best first, so a source's first chunk is its best.
    best = {leg: _best_per_source(leg_hits) for leg, leg_hits in hits.items()}
    closest = _closest(best)
    scored = [
        (source, fused, closest[source])
        for source, fused in _rank(query, best, closest)
        if query.min_score is None or (closest[source].cosine or 0) >= query.min_score
    ]
    kind = KIND_LABELS.get(query.kind or "")
    candidates = [c for c in scored if kind is None or c[0][0] == kind]
    facets = None
    if query.facets:  # every candidate loaded once: counted, then kept from it
        every = replace(query, category=None)
        items = _items(every, [source for source, _, _ in scored], collections, content)
        facets = _facets(query, scored, items)
        kept = [
            (c, items[c[0]])
            for c in candidates
            if c[0] in items
            and (not query.category or items[c[0]].category == query.category)
        ]
    else:
        # Indexed items are published ones: only a category, which the database
        # knows, needs every candidate loaded to be counted.
        kept = _kept(query, candidates, collections, content, need)
    total = len(kept) if query.category else len(candidates)
    kept = kept[:need]
    shown = content.chunks_shown(
        [chunk.chunk_id for (_, _, chunk), _ in kept], text=query.snippets
    )
    ranks = {leg: {s: r for r, s in enumerate(b, start=1)} for leg, b in best.items()}
    results = [
        _result(
            query, item, chunk, fused, shown.get(chunk.chunk_id, ("", "")), best, ranks
        )
        for (_, fused, chunk), item in kept
    ]
    return Found(results, max(total, len(results)), facets)


def _facets(
    query: SearchQuery,
    scored: list[tuple[SourceKey, Fused, ChunkHit]],
    items: dict[SourceKey, Item],
) -> dict[str, dict[str, int]]:
    """How many results each kind and each category holds (of ``items``, the
    scored candidates loaded whatever their category), each counted with the
    other filter applied but not its own, so that the counts say where a switch
    of that filter leads."""
    kinds = {label: kind for kind, label in KIND_LABELS.items()}
    by_kind: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for source, _, _ in scored:
        item, kind = items.get(source), kinds[source[0]]
        if item is None:
            continue
        if not query.category or item.category == query.category:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        if item.category and (not query.kind or kind == query.kind):
            by_category[item.category] = by_category.get(item.category, 0) + 1
    return {"kind": by_kind, "category": dict(sorted(by_category.items()))}


def _kept(
    query: SearchQuery,
    candidates: list[tuple[SourceKey, Fused, ChunkHit]],
    collections: list[Collection],
    content: Content,
    need: int,
) -> list[tuple[tuple[SourceKey, Fused, ChunkHit], Item]]:
    """The first ``need`` candidates that pass the filters (published, category),
    loaded whole (all of them with a category, to count them). The database
    filters while it loads: the best ``need`` first, one query per kind, and only
    if some fail, the next ones, twice as many each time."""
    if query.category:
        need = len(candidates)
    kept: list[tuple[tuple[SourceKey, Fused, ChunkHit], Item]] = []
    start, size = 0, need
    while len(kept) < need and start < len(candidates):
        batch = candidates[start : start + size]
        sources = [source for source, _, _ in batch]
        items = _items(query, sources, collections, content)
        kept += [(c, items[c[0]]) for c in batch if c[0] in items]
        start, size = start + size, size * 2
    return kept


def _best_per_source(hits: list[ChunkHit]) -> dict[SourceKey, ChunkHit]:
    best: dict[SourceKey, ChunkHit] = {}
    for hit in hits:
        best.setdefault((hit.source_type, hit.source_id), hit)
    return best


def _closest(best: dict[str, dict[SourceKey, ChunkHit]]) -> dict[SourceKey, ChunkHit]:
    """Each source's chunk to show: the one closest in meaning of either leg's."""
    closest: dict[SourceKey, ChunkHit] = {}
    for leg in best.values():
        for source, hit in leg.items():
            if source not in closest or (hit.cosine or 0) > (
                closest[source].cosine or 0
            ):
                closest[source] = hit
    return closest


def _rank(
    query: SearchQuery,
    best: dict[str, dict[SourceKey, ChunkHit]],
    closest: dict[SourceKey, ChunkHit],
) -> list[tuple[SourceKey, Fused]]:
    if query.mode == "dense":
        scored = {s: Fused(h.cosine or 0, "cosine") for s, h in best["dense"].items()}
    elif query.mode == "keyword":
        scored = {s: Fused(h.bm25 or 0.0, "bm25") for s, h in best["keyword"].items()}
    else:
        coverage = {s: h.coverage for s, h in best["keyword"].items()}
        dense = {s: h.cosine or 0 for s, h in best["dense"].items()}
        if query.fusion == "boost":  # every candidate's cosine, from either leg
            dense = {s: h.cosine or 0 for s, h in closest.items()}
        fuse = METHODS[query.fusion]
        scored = fuse(  # type: ignore[assignment]
            dense, coverage, weight=query.weight, explain=query.explain
        )
    return sorted(scored.items(), key=lambda pair: -pair[1].score)


def _items(
    query: SearchQuery,
    sources: list[SourceKey],
    collections: list[Collection],
    content: Content,
) -> dict[SourceKey, Item]:
    """Those of ``sources`` that are published and match the category, with their
    collection (one of those searched): one query per kind. A document's body
    stays behind: results show the chunk that matched, and a body can be a book."""
    by_id = {c.pk: c for c in collections}
    found: dict[SourceKey, Item] = {}
    unloaded: dict[type[Item], tuple[str, ...]] = {Faq: (), Document: ("body",)}
    for model, deferred in unloaded.items():
        label = model._meta.label_lower
        pks = [pk for kind, pk in sources if kind == label]
        if not pks:
            continue
        for item in content.items(
            model, pks, category=query.category, deferred=deferred
        ):
            if item.collection_id in by_id:
                item.collection = by_id[item.collection_id]
            found[label, item.pk] = item
    return found


def _result(
    query: SearchQuery,
    item: Item,
    chunk: ChunkHit,
    fused: Fused,
    shown: tuple[str, str],
    best: dict[str, dict[SourceKey, ChunkHit]],
    ranks: dict[str, dict[SourceKey, int]],
) -> SearchResult:
    source = (chunk.source_type, chunk.source_id)
    field, text = shown
    keyword_hit = best.get("keyword", {}).get(source)
    return SearchResult(
        kind=item.kind,
        id=item.pk,
        title=str(item),
        answer=item.answer if isinstance(item, Faq) else "",
        snippet=best_passage(text, query.q, title=str(item)) if query.snippets else "",
        matched=field,
        chunk_id=chunk.chunk_id,
        url=item.get_absolute_url(),
        category=item.category,
        collection=item.collection.slug,
        score=round(fused.score, 4),
        cosine=None if chunk.cosine is None else round(chunk.cosine, 4),
        dense_rank=ranks.get("dense", {}).get(source),
        keyword_score=round(keyword_hit.bm25, 4)
        if keyword_hit and keyword_hit.bm25
        else None,
        keyword_rank=ranks.get("keyword", {}).get(source),
        explanation=fused.how if query.explain else None,
        item=item,
    )


def search_warm_up() -> None:
    """Load every model and index now, so the first visitor does not wait."""
    from embeddings.encoders import encode_query
    from embeddings.index import store
    from embeddings.index.reader import reader

    vectors = {}
    for model in models_known():
        try:
            vectors[model] = encode_query("warm up", model)
        except EncoderUnavailable as error:  # a remote provider away: start anyway
            logger.warning("search warm-up could not embed: %s", error)
    for partition in store.partitions():
        loaded = reader.get(partition)
        vector = vectors.get(loaded.manifest.model) if loaded is not None else None
        if loaded is not None and vector is not None:
            # One search of each index: a flat one's mapped pages are touched now,
            # not by the first visitor's search.
            loaded.vectors.search(vector.reshape(1, -1), 1)
