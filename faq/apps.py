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

        from embeddings.signals import replica_applied, replica_checked
        from faq.offline import on_replica_applied, on_replica_checked

        replica_applied.connect(on_replica_applied, dispatch_uid="faq-offline")
        replica_checked.connect(on_replica_checked, dispatch_uid="faq-offline")

        if settings.EMBEDDINGS_PRELOAD:
            # Web processes load the model and index at start, not on a first request.
            from faq.search import search_warm_up

            search_warm_up()
