"""The Celery app: configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")

app = Celery("searchsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The worker's pool size, seen by the parent before it forks its children.
_concurrency = 1


@celeryd_after_setup.connect
def _remember_concurrency(instance: object, **kwargs: object) -> None:
    global _concurrency
    _concurrency = int(getattr(instance, "concurrency", 1) or 1)


@worker_process_init.connect
def _worker_child_init(**kwargs: object) -> None:
    # FAISS's OpenMP pool and fork do not mix: a forked child that inherits a
    # started pool can hang. One thread per worker process is also what 2 cores want.
    from django.conf import settings

    from embeddings.encoders import backend_default_set, threads_default_set
    from embeddings.index.dense import limit_threads

    limit_threads()
    # Workers embed content in bulk, where the fastest backend may not be the
    # fastest per query (EMBEDDINGS_WORKER_BACKEND).
    backend_default_set(settings.EMBEDDINGS_WORKER_BACKEND)
    # N children each running the model on every core would fight over them:
    # each takes its share (EMBEDDINGS_THREADS, when set, wins).
    threads_default_set(max(1, len(os.sched_getaffinity(0)) // _concurrency))
