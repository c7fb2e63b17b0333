from django.contrib import admin

from embeddings.models import Chunk


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    """Read-only: chunks follow their sources; this page shows how embedding goes."""

    list_display = [
        "__str__",
        "partition",
        "status",
        "attempts",
        "model_name",
        "updated_at",
    ]
    list_filter = ["status", "partition", "model_name"]
    search_fields = ["text", "last_error"]
    exclude = ["vector"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
