from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from faq import analytics, services, topics, uploads
from faq.access import user_access
from faq.duplicates import duplicate_dismiss, duplicate_merge
from faq.exceptions import ApplicationError
from faq.exports import export_response
from faq.forms import UploadForm
from faq.models import (
    ApiKey,
    Collection,
    Document,
    DuplicatePair,
    Faq,
    ImportJob,
    PinnedAnswer,
    SearchLog,
)
from faq.selectors import items_with_status
from faq.throttles import declared_length

TOPICS_TEMPLATE = "admin/faq/collection/topics.html"
ANALYTICS_TEMPLATE = "admin/faq/searchlog/analytics.html"


class PinnedAnswerInline(admin.TabularInline):
    model = PinnedAnswer
    autocomplete_fields = ["faq"]
    extra = 0


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "private", "created_at", "topics_link"]
    inlines = [PinnedAnswerInline]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    actions = ["export_jsonl", "export_faqs_csv", "export_documents_csv"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.topics_view)
        return [
            path("<int:pk>/topics/", view, name="faq_collection_topics"),
            *super().get_urls(),
        ]

    @admin.display(description="Topics and searches")
    def topics_link(self, collection: Collection) -> str:
        url = reverse("admin:faq_collection_topics", args=[collection.pk])
        searched = reverse("admin:faq_searchlog_analytics")
        return format_html(
            '<a href="{}">Topics</a> · <a href="{}?collection={}">Analytics</a>',
            url,
            searched,
            collection.pk,
        )

    def topics_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Topics of the collection's FAQs or of what people searched, with sizes."""
        collection = get_object_or_404(Collection, pk=pk)
        if not self.has_view_permission(request, collection):
            raise PermissionDenied
        context = self.admin_site.each_context(request) | {
            "title": f"Topics of {collection}",
            "collection": collection,
            "opts": self.opts,
        }
        try:
            context |= topics.topics_page(collection=collection, params=request.GET)
        except ApplicationError as error:
            context["error"] = error.message
            return render(request, TOPICS_TEMPLATE, context, status=error.status)
        return render(request, TOPICS_TEMPLATE, context)

    @admin.action(description="Export as JSON Lines (FAQs and documents)")
    def export_jsonl(
        self, request: HttpRequest, queryset: Any
    ) -> HttpResponseBase | None:
        return self._export(request, queryset, format="jsonl", kind="faq")

    @admin.action(description="Export FAQs as CSV")
    def export_faqs_csv(
        self, request: HttpRequest, queryset: Any
    ) -> HttpResponseBase | None:
        return self._export(request, queryset, format="csv", kind="faq")

    @admin.action(description="Export documents as CSV")
    def export_documents_csv(
        self, request: HttpRequest, queryset: Any
    ) -> HttpResponseBase | None:
        return self._export(request, queryset, format="csv", kind="document")

    def _export(
        self, request: HttpRequest, queryset: Any, *, format: str, kind: str
    ) -> HttpResponseBase | None:
        if queryset.count() != 1:
            messages.error(request, "Choose one collection to export.")
            return None
        return export_response(queryset.get(), format=format, kind=kind)


class ItemAdmin(admin.ModelAdmin):
    list_filter = ["collection", "published", "category"]
    list_select_related = ["collection"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 50

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        items_with_status(changelist.result_list)  # one query, not one per row
        return changelist

    @admin.display(description="Search index")
    def embedding_status(self, item: Any) -> str:
        return getattr(item, "embedding_status", "")


@admin.register(Faq)
class FaqAdmin(ItemAdmin):
    list_display = [
        "question",
        "collection",
        "category",
        "published",
        "embedding_status",
    ]
    search_fields = ["question", "answer", "external_id"]
    fields = [
        "collection",
        "question",
        "answer",
        "category",
        "published",
        "url",
        "external_id",
    ]


@admin.register(Document)
class DocumentAdmin(ItemAdmin):
    list_display = ["title", "collection", "category", "published", "embedding_status"]
    search_fields = ["title", "body", "external_id"]
    fields = [
        "collection",
        "title",
        "body",
        "category",
        "published",
        "url",
        "external_id",
    ]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "collection",
        "permission",
        "revoked",
        "last_used_at",
        "requests_count",
        "tokens_used",
    ]
    list_filter = ["permission", "revoked"]
    readonly_fields = [
        "prefix",
        "created_at",
        "last_used_at",
        "requests_count",
        "tokens_used",
    ]

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = services.api_key_create(
            name=obj.name, permission=obj.permission, collection=obj.collection
        )
        obj.pk, obj.prefix = key.pk, key.prefix
        request._new_api_key_secret = secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None
    ) -> HttpResponse:
        """The secret, once, in this response's page: not in a message, which the
        cookie store would carry in a cookie (signed, not encrypted), nor in a
        redirect's URL. The admin's pages are never cached."""
        context = self.admin_site.each_context(request) | {
            "title": "API key created",
            "key": obj,
            "secret": getattr(request, "_new_api_key_secret", ""),
            "opts": self.opts,
        }
        return render(request, "admin/faq/apikey/created.html", context)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Uploads: the add page takes files, the change page follows their progress."""

    list_display = ["__str__", "collection", "status", "rows_parsed", "created_at"]
    list_filter = ["status", "collection"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/progress/",
                view(self.progress_view),
                name="faq_upload_progress",
            ),
            path(
                "<int:pk>/confirm/", view(self.confirm_view), name="faq_upload_confirm"
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        limit = settings.UPLOAD_MAX_REQUEST_BYTES
        if declared_length(request) > limit:
            # Refused before Django reads the files (to disk) only to refuse them.
            messages.error(request, f"The upload is over {limit} bytes in all.")
            return redirect("admin:faq_importjob_add")
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            job = uploads.upload_create(
                collection=form.cleaned_data["collection"],
                files=[(f.name, f.read()) for f in form.cleaned_data["uploads"]],
                user=request.user,
                skip_invalid=form.cleaned_data["skip_invalid"],
            )
            return redirect("admin:faq_importjob_change", job.pk)
        context = self.admin_site.each_context(request) | {
            "title": "Upload help content",
            "form": form,
            "opts": self.opts,
        }
        return render(request, "admin/faq/importjob/upload.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        job = get_object_or_404(ImportJob, pk=object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        context = self.admin_site.each_context(request) | {
            "title": str(job),
            "job": job,
            "progress": uploads.upload_progress(job),
            "opts": self.opts,
        }
        return render(request, "admin/faq/importjob/progress.html", context)

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(ImportJob, pk=pk)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        context = {"job": job, "progress": uploads.upload_progress(job)}
        return render(request, "admin/faq/importjob/_progress.html", context)

    def confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(ImportJob, pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, job):
            raise PermissionDenied
        if not uploads.upload_confirm(job=job):
            messages.error(request, "This upload is not ready to import.")
        return redirect("admin:faq_importjob_change", job.pk)


@admin.register(DuplicatePair)
class DuplicatePairAdmin(admin.ModelAdmin):
    """Questions that mean the same thing, side by side, to merge or dismiss."""

    list_display = ["first_question", "second_question", "similarity", "status"]
    list_filter = ["status", "collection"]
    list_select_related = ["first", "second"]
    actions = ["merge", "dismiss"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Question")
    def first_question(self, pair: DuplicatePair) -> str:
        return f"{pair.first.question} — {pair.first.answer[:150]}"

    @admin.display(description="Looks the same as")
    def second_question(self, pair: DuplicatePair) -> str:
        return f"{pair.second.question} — {pair.second.answer[:150]}"

    @admin.action(description="Merge: keep the first, unpublish the second")
    def merge(self, request: HttpRequest, queryset: Any) -> None:
        for pair in queryset.select_related("second"):
            duplicate_merge(pair=pair)

    @admin.action(description="Dismiss: they are different questions")
    def dismiss(self, request: HttpRequest, queryset: Any) -> None:
        for pair in queryset:
            duplicate_dismiss(pair=pair)


@admin.register(SearchLog)
class SearchLogAdmin(admin.ModelAdmin):
    """What people typed on the search page (read-only; deleting is allowed, so a
    query with personal data in it can be removed)."""

    list_display = [
        "query",
        "collection",
        "source",
        "results",
        "top_score",
        "confident",
        "created_at",
    ]
    list_filter = ["collection", "source", "confident", "created_at"]
    search_fields = ["query"]
    date_hierarchy = "created_at"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.analytics_view)
        return [
            path("analytics/", view, name="faq_searchlog_analytics"),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> Any:
        """Searches of private collections for those who may search them."""
        access = user_access(request.user)
        logs = super().get_queryset(request)
        return logs if access.private is None else logs.filter(private=False)

    def analytics_view(self, request: HttpRequest) -> HttpResponse:
        """Searches per day, failed searches and their topics, answers that did
        not help, click-through by place; each table as CSV (``export``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        access = user_access(request.user)
        context = self.admin_site.each_context(request) | {
            "title": "Search analytics",
            "opts": self.opts,
            "collections": analytics.collections_shown(access),
            "params": request.GET,
        }
        try:
            scope = analytics.scope_from(request.GET, access=access)
            report = analytics.analytics(
                scope, refresh=bool(request.GET.get("refresh"))
            )
            if table := request.GET.get("export"):
                return analytics.analytics_csv(report, table)
        except ApplicationError as error:
            context["error"] = error.message
            return render(request, ANALYTICS_TEMPLATE, context, status=error.status)
        asked = request.GET.copy()
        asked.pop("refresh", None)
        context |= {"report": report, "scope": scope, "query": asked.urlencode()}
        return render(request, ANALYTICS_TEMPLATE, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
