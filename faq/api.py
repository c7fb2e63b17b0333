"""The JSON API of help content: search for everyone, content behind API keys."""

from typing import Annotated, Any, cast

from django.conf import settings
from django.http import HttpRequest
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.decorators import decorate_view

from faq import jobs, schemas, selectors, services, similar, uploads
from faq.access import key_access, request_key
from faq.auth import ApiKeyAuth, api_key
from faq.exceptions import ApplicationError
from faq.exports import export_response
from faq.models import Collection, Document, Faq, Item
from faq.search import SearchQuery, search
from faq.searchlog import (
    Shown,
    click_record,
    feedback_record,
    search_log_record,
    shown_check,
)
from faq.snippets import highlight
from faq.suggestions import suggestions
from faq.throttles import ClientThrottle, host_slot, public_body, upload_body

router = Router(tags=["search"])
content = Router(tags=["content"], auth=ApiKeyAuth())
# What every operation for keys may also answer: its input off the schema (422),
# no key (401), another key's scope (403), what it names missing (404), the
# database away (503).
ERRORS = {
    400: schemas.Error,
    401: schemas.Error,
    403: schemas.Error,
    404: schemas.Error,
    422: schemas.Error,
    503: schemas.Error,
}
WRITES = {**ERRORS, 409: schemas.Error}  # and a conflict with what is stored
# What every public operation may also answer: its client over the rate (429), the
# database or the model away (503); and with posted texts, a body over the
# anonymous budget or too much model work (413).
PUBLIC = {
    400: schemas.Error,
    422: schemas.Error,
    429: schemas.Error,
    503: schemas.Error,
}
POSTED = {**PUBLIC, 413: schemas.Error}
searches = ClientThrottle("search")
analyses = ClientThrottle("analysis")


def _check(
    request: HttpRequest, collection: Collection | None, permission: str
) -> None:
    selectors.api_key_check(
        api_key(request), collection=collection, permission=permission
    )


@router.get(
    "/search",
    response={
        200: schemas.SearchOut,
        **PUBLIC,
        404: schemas.Error,
        409: schemas.Error,
    },
    throttle=searches,
)
def search_items(
    request: HttpRequest, params: Query[schemas.SearchParams]
) -> dict[str, Any]:
    """Search the public collections, and with an API key (``Authorization:
    Bearer``) the private ones it is for too. Logged for the analytics, with its
    key: votes and clicks on its results name it by ``search_id``."""
    key = request_key(request)
    found = search(
        SearchQuery(**params.dict(exclude_none=True), access=key_access(key))
    )
    token = search_log_record(found=found, api_key=key, api=True)
    return {
        "query": found.query.q,
        "mode": found.query.mode,
        "fusion": found.query.fusion if found.query.mode == "hybrid" else None,
        "took_ms": round(found.took_ms, 2),
        "confident": found.confident,
        "total": found.total,
        "offset": found.query.offset,
        "facets": found.facets,
        "contact_url": found.contact_url,
        "search_id": token or None,
        "results": [
            {**r.__dict__, "snippet_html": highlight(r.snippet, found.terms)}
            for r in found.results
        ],
    }


@router.post(
    "/feedback",
    response={202: schemas.Recorded, **PUBLIC},
    throttle=ClientThrottle("feedback"),
)
def feedback(request: HttpRequest, data: schemas.FeedbackIn) -> Any:
    """Did a result answer the search's question: yes, or no and optionally why
    (again for the same result: replaces the first)."""
    feedback_record(_shown(data), helpful=data.helpful, reason=data.reason)
    return Status(202, {"recorded": True})


@router.post(
    "/clicks",
    response={202: schemas.Recorded, **PUBLIC},
    throttle=ClientThrottle("feedback"),
)
def clicks(request: HttpRequest, data: schemas.ShownIn) -> Any:
    """A result of a search was opened."""
    click_record(_shown(data))
    return Status(202, {"recorded": True})


def _shown(data: schemas.ShownIn) -> Shown:
    try:
        return shown_check(data.search_id, data.position, data.kind, data.id)
    except ValueError as error:
        raise ApplicationError(str(error)) from None


@router.get(
    "/suggest",
    response={200: schemas.SuggestOut, **PUBLIC, 404: schemas.Error},
    throttle=searches,
)
def suggest(request: HttpRequest, params: Query[schemas.SuggestParams]) -> Any:
    """Questions to suggest as the visitor types: searches others made that found a
    confident answer, the most asked first, then FAQ questions containing the text."""
    found = suggestions(params.q, collection=params.collection, k=params.k)
    return {"suggestions": [s.__dict__ for s in found]}


@router.post(
    "/similarity",
    response={200: schemas.SimilarityOut, **POSTED},
    throttle=analyses,
)
@decorate_view(public_body)
def similarity(request: HttpRequest, data: schemas.SimilarityIn) -> dict[str, Any]:
    """Cosine similarity of one text to each of many, or of each pair of texts.
    Public like search, within ``PUBLIC_MAX_TOKENS`` of model work; more is a job
    (``POST /api/jobs/similarity``)."""
    return _answer_now("similarity", data)


@router.post(
    "/paraphrases",
    response={200: schemas.ParaphrasesOut, **POSTED},
    throttle=analyses,
)
@decorate_view(public_body)
def paraphrases(request: HttpRequest, data: schemas.ParaphrasesIn) -> dict[str, Any]:
    """Pairs of the posted texts that say the same thing, most similar first (more
    than ``PUBLIC_MAX_TOKENS`` of model work: ``POST /api/jobs/paraphrases``)."""
    return _answer_now("paraphrases", data)


@router.post(
    "/clusters",
    response={200: schemas.ClustersOut, **POSTED},
    throttle=analyses,
)
@decorate_view(public_body)
def clusters(request: HttpRequest, data: schemas.ClustersIn) -> dict[str, Any]:
    """Group posted texts into topics with keyword labels, largest first (more
    than ``PUBLIC_MAX_TOKENS`` of model work: ``POST /api/jobs/clusters``)."""
    return _answer_now("clusters", data)


def _answer_now(kind: str, data: Schema) -> dict[str, Any]:
    """An anonymous request's answer: within the budget, in one of the host's slots
    for such requests."""
    with host_slot("analysis"):
        return jobs.ANSWERS[kind](data.dict(), budget=settings.PUBLIC_MAX_TOKENS)


@router.get(
    "/items/{pk}/similar",
    response={200: schemas.SimilarOut, **PUBLIC, 404: schemas.Error},
    throttle=searches,
)
def item_similar(
    request: HttpRequest, pk: schemas.Id, params: Query[schemas.SimilarParams]
) -> dict[str, Any]:
    """The published items nearest in meaning to a published item (public, as
    search is); ``kind`` says whether the id is a FAQ's or a document's."""
    access = key_access(request_key(request))
    item = similar.item_get_published(kind=params.kind, pk=pk, access=access)
    found = similar.similar_items(item=item, k=params.k, min_score=params.min_score)
    return {"kind": item.kind, "id": item.pk, "title": str(item), "results": found}


def _threshold(threshold: float | None) -> float:
    return settings.DUPLICATE_THRESHOLD if threshold is None else threshold


# --- jobs: posted texts beyond the anonymous budget, for keys ------------------------


def _job_route(kind: str, schema_in: Any) -> None:
    @content.post(
        f"/jobs/{kind}",
        response={202: schemas.JobOut, **ERRORS, 413: schemas.Error},
        operation_id=f"job_{kind}_create",
        tags=["jobs"],
    )
    def job_create(request: HttpRequest, data: schema_in) -> Any:  # type: ignore[valid-type]
        job = jobs.job_create(
            kind=kind, params=cast(Schema, data).dict(), key=api_key(request)
        )
        return Status(202, jobs.job_out(job))


for _kind, _schema in (
    ("similarity", schemas.SimilarityIn),
    ("paraphrases", schemas.ParaphrasesIn),
    ("clusters", schemas.ClustersIn),
):
    _job_route(_kind, _schema)


@content.get("/jobs/{pk}", response={200: schemas.JobOut, **ERRORS}, tags=["jobs"])
def job_get(request: HttpRequest, pk: schemas.Id) -> dict[str, Any]:
    """A job of this key's: its progress, then its result (what the endpoint of its
    kind answers), kept a day (JOB_KEEP_SECONDS) once finished."""
    return jobs.job_out(jobs.job_get(pk=pk, key=api_key(request)))


@content.get("/collections", response={200: list[schemas.CollectionOut], **ERRORS})
def collections_list(request: HttpRequest) -> Any:
    _check(request, None, "read")
    key = api_key(request)
    collections = Collection.objects.all()
    return (
        collections.filter(pk=key.collection_id) if key.collection_id else collections
    )


@content.post("/collections", response={201: schemas.CollectionOut, **WRITES})
def collection_create(request: HttpRequest, data: schemas.CollectionIn) -> Any:
    _check(request, None, "write")
    return Status(201, services.collection_create(**data.dict()))


@content.post(
    "/collections/{slug}/uploads",
    response={202: schemas.UploadOut, **ERRORS, 413: schemas.Error},
)
@decorate_view(upload_body)
def upload_create(
    request: HttpRequest,
    slug: str,
    files: Annotated[
        list[UploadedFile],
        File(min_length=1, max_length=settings.UPLOAD_MAX_FILES),
    ],
    # ninja's own idiom: as Form[...] or Annotated, these would turn required.
    skip_invalid: schemas.FormBool = Form(False),  # noqa: B008
    confirm: schemas.FormBool = Form(True),  # noqa: B008
) -> Any:
    """Upload files of any supported format; with ``confirm`` (the default) they are
    imported as soon as they are read, else the job waits for a look at its preview."""
    collection = selectors.collection_get(slug=slug)
    _check(request, collection, "write")
    uploads.upload_check_sizes([(f.name or "upload", f.size or 0) for f in files])
    job = uploads.upload_create(
        collection=collection,
        files=[(f.name or "upload", f.read()) for f in files],
        skip_invalid=skip_invalid,
        confirm=confirm,
    )
    job.refresh_from_db()
    return Status(202, uploads.upload_progress(job))


@content.get("/uploads/{pk}", response={200: schemas.UploadOut, **ERRORS})
def upload_get(request: HttpRequest, pk: schemas.Id) -> Any:
    job = selectors.upload_get(pk=pk)
    _check(request, job.collection, "read")
    return uploads.upload_progress(job)


@content.post(
    "/collections/{slug}/bulk",
    response={
        **ERRORS,
        200: schemas.ImportOut,
        409: schemas.ImportOut,
        413: schemas.Error,
    },
)
def bulk_upsert(request: HttpRequest, slug: str, data: schemas.BulkIn) -> Any:
    """Create or update up to ``BULK_MAX_ITEMS`` items in one transaction, matched by
    external id, else by question or title. Items that name the same item twice
    conflict (409, with the report), and then none is written."""
    collection = selectors.collection_get(slug=slug)
    _check(request, collection, "write")
    report = services.items_bulk_upsert(
        collection=collection,
        items=[item.model_dump(exclude_unset=True) for item in data.items],
        skip_invalid=data.skip_invalid,
    )
    return Status(200 if report.written else 409, report.as_dict())


@content.get("/collections/{slug}/export", response={200: None, **ERRORS})
def collection_export(
    request: HttpRequest, slug: str, params: Query[schemas.ExportParams]
) -> Any:
    """The collection as JSON Lines (every item) or CSV (one kind), for import."""
    collection = selectors.collection_get(slug=slug)
    _check(request, collection, "read")
    return export_response(collection, format=params.format, kind=params.kind)


@content.get(
    "/collections/{slug}/duplicates", response={200: schemas.DuplicatesOut, **ERRORS}
)
def collection_duplicates(
    request: HttpRequest, slug: str, params: Query[schemas.DuplicatesParams]
) -> dict[str, Any]:
    """Pairs of published items that say the same thing, most similar first (a read
    key, as the content is listed)."""
    collection = selectors.collection_get(slug=slug)
    _check(request, collection, "read")
    threshold = _threshold(params.threshold)
    found = similar.collection_duplicates(
        collection=collection,
        kind=params.kind,
        threshold=threshold,
        offset=params.offset,
        limit=params.limit,
    )
    return {
        "collection": collection.slug,
        "kind": params.kind,
        "threshold": threshold,
        "count": found.count,
        "pairs": [
            {"first": _ref(first), "second": _ref(second), "score": score}
            for first, second, score in found.pairs
        ],
    }


def _ref(item: Item) -> dict[str, Any]:
    return {"id": item.pk, "title": str(item), "url": item.get_absolute_url()}


def _item_routes(
    model: type[Item],
    plural: str,
    *,
    schema_in: type[Schema],
    patch: type[Schema],
    out: type[Schema],
    page: type[Schema],
) -> None:
    """List, create, read, update and delete for one kind of item."""
    kind = model.kind

    @content.get(
        f"/collections/{{slug}}/{plural}",
        response={200: page, **ERRORS},
        operation_id=f"{kind}_list",
    )
    def item_list(
        request: HttpRequest, slug: str, window: Query[schemas.PageParams]
    ) -> Any:
        collection = selectors.collection_get(slug=slug)
        _check(request, collection, "read")
        items = model._default_manager.filter(collection=collection).select_related(
            "collection"
        )
        shown = list(items[window.offset : window.offset + window.limit])
        return {"count": items.count(), "items": selectors.items_with_status(shown)}

    @content.post(
        f"/collections/{{slug}}/{plural}",
        response={201: out, **WRITES},
        operation_id=f"{kind}_create",
    )
    def item_create(request: HttpRequest, slug: str, data: schema_in) -> Any:  # type: ignore[valid-type]
        collection = selectors.collection_get(slug=slug)
        _check(request, collection, "write")
        item = services.item_create(
            collection=collection, kind=kind, data=cast(Schema, data).dict()
        )
        return Status(201, selectors.items_with_status([item])[0])

    @content.get(
        f"/{plural}/{{pk}}", response={200: out, **ERRORS}, operation_id=f"{kind}_get"
    )
    def item_get(request: HttpRequest, pk: schemas.Id) -> Any:
        item = selectors.item_get(model=model, pk=pk)
        _check(request, item.collection, "read")
        return selectors.items_with_status([item])[0]

    @content.patch(
        f"/{plural}/{{pk}}",
        response={200: out, **WRITES},
        operation_id=f"{kind}_update",
    )
    def item_update(request: HttpRequest, pk: schemas.Id, data: patch) -> Any:  # type: ignore[valid-type]
        item = selectors.item_get(model=model, pk=pk)
        _check(request, item.collection, "write")
        item = services.item_update(
            item=item, data=cast(Schema, data).dict(exclude_none=True)
        )
        return selectors.items_with_status([item])[0]

    @content.delete(
        f"/{plural}/{{pk}}",
        response={204: None, **ERRORS},
        operation_id=f"{kind}_delete",
    )
    def item_delete(request: HttpRequest, pk: schemas.Id) -> Any:
        item = selectors.item_get(model=model, pk=pk)
        _check(request, item.collection, "write")
        services.item_delete(item=item)
        return Status(204, None)


_item_routes(
    Faq,
    "faqs",
    schema_in=schemas.FaqIn,
    patch=schemas.FaqPatch,
    out=schemas.FaqOut,
    page=schemas.FaqPage,
)
_item_routes(
    Document,
    "documents",
    schema_in=schemas.DocumentIn,
    patch=schemas.DocumentPatch,
    out=schemas.DocumentOut,
    page=schemas.DocumentPage,
)
