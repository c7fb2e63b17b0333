"""Celery tasks: take ids, call one service, safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings

from embeddings import replica, services

logger = logging.getLogger(__name__)

_task = dict(
    autoretry_for=services.TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=600,
    time_limit=660,
)


@shared_task(**_task)
def embed_chunks(chunk_ids: list[int]) -> None:
    services.chunks_index(chunk_ids)


@shared_task(**_task)
def sync_index(partition: str, verify: bool = False) -> None:
    services.index_sync(partition, verify=verify)


@shared_task(**_task)
def reconcile() -> None:
    queued, checked = services.reconcile(
        older_than_s=settings.RECONCILE_PENDING_SECONDS
    )
    pruned = replica.prune()
    logger.info(
        "reconcile: %d chunks re-queued, %d partitions checked, %d feed entries pruned",
        queued,
        checked,
        pruned,
    )
