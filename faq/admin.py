from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest

from faq import services
from faq.models import ApiKey, Collection, Document, Faq
from faq.selectors import items_with_status


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]


class ItemAdmin(admin.ModelAdmin):
    list_filter = ["collection", "published", "category"]
    list_select_related = ["collection"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 50
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

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
    ]
    list_filter = ["permission", "revoked"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

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
        messages.warning(
            request,
            f"The new key is {secret} — copy it now: it is stored hashed "
            "and cannot be shown again.",
        )
