"""The browser pages: a search page that works without JavaScript, and item pages."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from faq import offline
from faq.exceptions import ApplicationError
from faq.forms import PAGE_SIZE, SearchForm
from faq.models import ITEMS
from faq.search import SearchQuery, SearchResponse, SearchResult, search
from faq.searchlog import search_log_record
from faq.similar import Similar, related_questions, similar_items
from faq.suggestions import suggestions
from faq.throttles import client_check, client_wait, too_many


def search_page(request: HttpRequest) -> HttpResponse:
    collections, categories = offline.read(
        lambda content: (content.collections(None), content.categories())
    )
    form = SearchForm(
        request.GET or None, collections=collections, categories=categories
    )
    context: dict[str, object] = {"form": form}
    status = 400  # a form error; an ApplicationError brings its own
    if form.is_valid() and form.cleaned_data["q"].strip():
        try:
            client_check(request, "search", what="searches")
            found = search(SearchQuery(**form.query()))
        except ApplicationError as error:
            form.add_error(None, error.message)
            status = error.status
        else:
            context["found"] = found
            context["pages"] = _pages(request, found)
            form.counted(found.facets or {})
            context["rows"] = offline.read(
                lambda content: _with_related(found, content)
            )
            if not offline.database_away():
                # People's searches, not programs' (the API is not logged): topics.
                search_log_record(
                    found=found, previous_url=request.headers.get("HX-Current-URL", "")
                )
    template = (
        "faq/_results.html" if request.headers.get("HX-Request") else "faq/search.html"
    )
    return render(request, template, context, status=status if form.errors else 200)


def item_page(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if kind not in ITEMS:
        raise Http404
    if wait := client_wait(request, "search"):  # its related questions search
        return too_many(request, wait, "pages")
    item = get_object_or_404(
        ITEMS[kind]._default_manager.select_related("collection"),
        pk=pk,
        published=True,
    )
    related = similar_items(
        item=item,
        k=settings.RELATED_QUESTIONS,
        min_score=settings.RELATED_MIN_SCORE,
        kinds=("faq",),
    )
    return render(request, "faq/item.html", {"item": item, "related": related})


def _with_related(
    found: SearchResponse, content: offline.Content
) -> list[tuple[SearchResult, list[Similar]]]:
    """Each result with a few FAQs like it (FAQ results only): one batched lookup
    for the whole page; none from this host's copy (the database away)."""
    if content is not offline.DATABASE:
        return [(result, []) for result in found.results]
    faq_ids = [r.id for r in found.results if r.kind == "faq"]
    related = related_questions(faq_ids=faq_ids)
    return [
        (r, related.get(r.id, []) if r.kind == "faq" else []) for r in found.results
    ]


def _pages(request: HttpRequest, found: SearchResponse) -> dict[str, object]:
    """Where this page starts and ends among the results, and the links to the
    pages before and after it (plain links: they work without JavaScript)."""
    first = found.query.offset + 1
    last = found.query.offset + len(found.results)
    page = found.query.offset // PAGE_SIZE + 1

    def link(number: int) -> str:
        asked = request.GET.copy()
        asked["page"] = str(number)
        return f"?{asked.urlencode()}"

    return {
        "first": first,
        "last": last,
        "previous": link(page - 1) if page > 1 else "",
        "next": link(page + 1) if last < found.total else "",
    }


def suggest_options(request: HttpRequest) -> HttpResponse:
    """The suggestions for what was typed, as a datalist's options (htmx swaps them
    in as the visitor types); counted against the visitor's searches."""
    if wait := client_wait(request, "search"):
        return too_many(request, wait, "suggestions")
    try:
        found = suggestions(
            request.GET.get("q", "")[: settings.SEARCH_MAX_QUERY_LENGTH],
            collection=request.GET.get("collection") or None,
        )
    except ApplicationError:  # an unknown collection: nothing to suggest
        found = []
    return render(request, "faq/_suggestions.html", {"suggestions": found})
