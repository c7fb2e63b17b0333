"""The browser pages: a search page that works without JavaScript, and item pages."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from faq.exceptions import ApplicationError
from faq.forms import SearchForm
from faq.models import Document, Faq, Item
from faq.search import SearchQuery, search


def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None, categories=_categories())
    context: dict[str, object] = {"form": form}
    if form.is_valid() and form.cleaned_data["q"].strip():
        try:
            context["found"] = search(SearchQuery(**form.cleaned_data))
        except ApplicationError as error:
            form.add_error(None, error.message)
    template = (
        "faq/_results.html" if request.headers.get("HX-Request") else "faq/search.html"
    )
    return render(request, template, context, status=400 if form.errors else 200)


def item_page(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    models: dict[str, type[Item]] = {"faq": Faq, "document": Document}
    if kind not in models:
        raise Http404
    item = get_object_or_404(
        models[kind]._default_manager.select_related("collection"),
        pk=pk,
        published=True,
    )
    return render(request, "faq/item.html", {"item": item})


def _categories() -> list[str]:
    names = set(
        Faq.objects.exclude(category="").values_list("category", flat=True).distinct()
    )
    names |= set(
        Document.objects.exclude(category="")
        .values_list("category", flat=True)
        .distinct()
    )
    return sorted(names)
