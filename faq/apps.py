from django.apps import AppConfig


class FaqConfig(AppConfig):
    name = "faq"
    verbose_name = "Help content"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from embeddings.signals import chunks_indexed
        from faq.duplicates import on_chunks_indexed

        chunks_indexed.connect(on_chunks_indexed, dispatch_uid="faq-duplicates")

        from embeddings.signals import partition_embedded
        from faq.services import on_partition_embedded

        partition_embedded.connect(on_partition_embedded, dispatch_uid="faq-model")

        if settings.EMBEDDINGS_PRELOAD:
            # Web processes load the model and index at start, not on a first request.
            from faq.search import search_warm_up

            search_warm_up()
