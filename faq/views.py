"""The browser pages: a search page that works without JavaScript, and item pages."""

from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from faq import offline
from faq.access import Access, user_access
from faq.exceptions import ApplicationError, NotFound
from faq.forms import PAGE_SIZE, FeedbackForm, SearchForm
from faq.models import ITEMS, Collection
from faq.search import (
    SearchQuery,
    SearchResponse,
    collections_readable,
    search,
)
from faq.searchlog import click_record, feedback_record, search_log_record
from faq.similar import Similar, item_get_published, related_questions, similar_items
from faq.suggestions import suggestions
from faq.throttles import client_check, client_wait, too_many


def search_page(request: HttpRequest) -> HttpResponse:
    access = user_access(request.user)
    collections, categories = offline.read(lambda content: _choices(content, access))
    form = SearchForm(
        request.GET or None, collections=collections, categories=categories
    )
    context: dict[str, object] = {"form": form}
    status = 400  # a form error; an ApplicationError brings its own
    if form.is_valid() and form.cleaned_data["q"].strip():
        try:
            client_check(request, "search", what="searches")
            found = search(SearchQuery(**form.query(), access=access))
        except ApplicationError as error:
            form.add_error(None, error.message)
            status = error.status
        else:
            token = search_log_record(
                found=found,
                previous_url=request.headers.get("HX-Current-URL", ""),
                shown=request.GET.get("s", ""),
            )
            context["found"] = found
            context["token"] = token
            context["pages"] = _pages(request, found, token)
            form.counted(found.facets or {})
            related = offline.read(lambda content: _related(found, content))
            back = request.get_full_path()  # where a vote without JS returns
            context["rows"] = [
                (r, related.get(r.id, []) if r.kind == "faq" else [], vote)
                for r, vote in zip(
                    found.results, _votes(found, token, back), strict=True
                )
            ]
    template = (
        "faq/_results.html" if request.headers.get("HX-Request") else "faq/search.html"
    )
    return render(request, template, context, status=status if form.errors else 200)


def item_page(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if kind not in ITEMS:
        raise Http404
    if wait := client_wait(request, "search"):  # its related questions search
        return too_many(request, wait, "pages")
    try:
        item = item_get_published(kind=kind, pk=pk, access=user_access(request.user))
    except NotFound as error:
        raise Http404(error.message) from error
    related = similar_items(
        item=item,
        k=settings.RELATED_QUESTIONS,
        min_score=settings.RELATED_MIN_SCORE,
        kinds=("faq",),
    )
    return render(request, "faq/item.html", {"item": item, "related": related})


def _choices(
    content: offline.Content, access: Access
) -> tuple[list[Collection], list[str]]:
    """The collections the visitor may search, and their categories."""
    collections = collections_readable(None, access, content)
    return collections, content.categories(collections)


def _related(
    found: SearchResponse, content: offline.Content
) -> dict[int, list[Similar]]:
    """A few FAQs like each FAQ result: one batched lookup for the whole page;
    none from this host's copy (the database away)."""
    if content is not offline.DATABASE:
        return {}
    return related_questions(faq_ids=[r.id for r in found.results if r.kind == "faq"])


@dataclass(frozen=True)
class Vote:
    attrs: SafeString  # the result's, for results.js to report a click
    form: SafeString  # "Did this answer your question?"


NO_VOTE = Vote(SafeString(""), SafeString(""))


def _votes(found: SearchResponse, token: str, back: str) -> list[Vote]:
    """Each result's vote and click reporting (none when the search is not
    logged). Built here, not by the template: ten forms a page took 0.4 ms to
    render as template tags, 5 % of a search."""
    if not token:
        return [NO_VOTE] * len(found.results)
    url = reverse("faq:feedback")
    votes = []
    for position, r in enumerate(found.results, start=found.query.offset + 1):
        fields = {"search": token, "position": position, "kind": r.kind, "id": r.id}
        attrs = "".join(
            f' data-{name}="{escape(value)}"' for name, value in fields.items()
        )
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{escape(value)}">'
            for name, value in (*fields.items(), ("back", back))
        )
        question = f"vote-{position}"
        buttons = "".join(
            f'<button type="submit" name="helpful" value="{value}" '
            f'aria-describedby="{question}">{label}</button>'
            for value, label in (("yes", "Yes"), ("no", "No"))
        )
        form = (
            f'<form class="vote" method="post" action="{url}" hx-post="{url}" '
            f'hx-swap="outerHTML">{hidden}<span id="{question}">Did this answer '
            f"your question?</span> {buttons}</form>"
        )
        votes.append(Vote(mark_safe(attrs), mark_safe(form)))  # every value escaped
    return votes


def _pages(
    request: HttpRequest, found: SearchResponse, token: str
) -> dict[str, object]:
    """Where this page starts and ends among the results, and the links to the
    pages before and after it (plain links: they work without JavaScript), which
    carry the search's token: the next page is the same search."""
    first = found.query.offset + 1
    last = found.query.offset + len(found.results)
    page = found.query.offset // PAGE_SIZE + 1

    def link(number: int) -> str:
        asked = request.GET.copy()
        asked["page"] = str(number)
        if token:
            asked["s"] = token
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


@csrf_exempt  # anonymous and idempotent: no session privilege to forge
@require_POST
def feedback(request: HttpRequest) -> HttpResponse:
    """ "Did this answer your question?" for a result: yes, or no and then
    optionally why. htmx swaps the answer in place of the question; without
    JavaScript the form posts here and the page says thanks, with a way back."""
    form = FeedbackForm(request.POST)
    back = request.POST.get("back", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    context: dict[str, object] = {"form": form, "back": back}
    status = 200
    if wait := client_wait(request, "feedback"):
        return too_many(request, wait, "votes")
    if form.is_valid():
        data = form.cleaned_data
        feedback_record(data["shown"], helpful=data["helpful"], reason=data["reason"])
    else:
        status = 400
    template = (
        "faq/_feedback.html"
        if request.headers.get("HX-Request")
        else "faq/feedback.html"
    )
    return render(request, template, context, status=status)


@csrf_exempt
@require_POST
def click(request: HttpRequest) -> HttpResponse:
    """A result opened (results.js sends a beacon as the link is followed)."""
    if client_wait(request, "feedback"):
        return HttpResponse(status=429)
    form = FeedbackForm(request.POST, click=True)
    if not form.is_valid():
        return HttpResponse(
            form.errors.as_text(), status=400, content_type="text/plain"
        )
    click_record(form.cleaned_data["shown"])
    return HttpResponse(status=204)
