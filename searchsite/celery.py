"""The Celery app: configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")

app = Celery("searchsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _single_threaded_faiss(**kwargs: object) -> None:
    # FAISS's OpenMP pool and fork do not mix: a forked child that inherits a
    # started pool can hang. One thread per worker process is also what 2 cores want.
    from embeddings.vectors import limit_threads

    limit_threads()
