"""Is this process alive, and ready to serve? Cheap enough to call every second.

Liveness answers without touching anything. Readiness fails (503) when the
database or the broker does not answer, when a partition's index cannot be
loaded, or when chunks have waited ``HEALTH_WORKER_STALL_SECONDS`` and no worker
has embedded anything in that time. Reasons are written for an operator; the
exceptions behind them go to the log, never to the caller.
"""

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from embeddings.encoders import EncoderUnavailable, get_encoder
from embeddings.selectors import index_summary, last_embedded_at, oldest_waiting_since

logger = logging.getLogger(__name__)
_cached: tuple[float, dict[str, Any]] | None = None


def health_report() -> dict[str, Any]:
    """The readiness report, computed at most once per ``HEALTH_CACHE_SECONDS``
    in this process."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] >= settings.HEALTH_CACHE_SECONDS:
        _cached = (now, _report())
    return _cached[1]


def _report() -> dict[str, Any]:
    reasons: list[str] = []
    database = _check("database", _database, reasons)
    broker = _check("broker", _broker, reasons)
    index = index_summary()
    for partition in index["unloadable"]:
        reasons.append(
            f"the index of {partition} cannot be loaded (no version on disk checks "
            "out); a worker is rebuilding it from the database"
        )
    worker = _worker(reasons) if database == "ok" else "unknown"
    model, dimension = _model()
    if not dimension:
        reasons.append(
            "the embedding provider does not answer: no query can be embedded"
        )
    if settings.INDEX_FOLLOW and database == "ok":
        # How far this host's replica is behind the change feed: reported, not
        # a reason (it serves what it has meanwhile).
        index["replica"] = _replica()
    if database == "ok":
        index["reembedding"] = _reembedding()
    damaged = sorted(index.pop("problems"))
    index["damaged"] = damaged  # served as before while being rebuilt: still ready
    del index["unloadable"]
    return {
        "status": "unavailable" if reasons else "ok",
        "reasons": reasons,
        "database": database,
        "broker": broker,
        "worker": worker,
        "model": model,
        "dimension": dimension,
        "index": index,
    }


def _check(name: str, probe: Any, reasons: list[str]) -> str:
    try:
        probe()
    except Exception as error:  # any failure is the report, not a 500
        logger.warning("health: the %s does not answer: %s", name, error)
        reasons.append(f"the {name} does not answer")
        return "unavailable"
    return "ok"


def _replica() -> dict[str, Any] | None:
    from embeddings.replica import lag

    try:
        return lag()
    except Exception as error:  # the report, never a 500
        logger.warning("health: the replica's lag cannot be read: %s", error)
        return None


def _reembedding() -> list[dict[str, Any]]:
    from embeddings.generations import left
    from embeddings.models import Generation

    return [
        {"partition": partition, "model": model, "left": left(partition)}
        for partition, model in Generation.objects.values_list("partition", "model")
    ]


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from searchsite.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.REDIS_TIMEOUT)


def _worker(reasons: list[str]) -> str:
    """Stalled: chunks have waited longer than the stall time and no chunk was
    embedded in it (a worker that is down, or not reaching the broker)."""
    stall = timedelta(seconds=settings.HEALTH_WORKER_STALL_SECONDS)
    waiting = oldest_waiting_since()
    now = timezone.now()
    if waiting is None or now - waiting < stall:
        return "ok"
    last = last_embedded_at()
    if last is not None and now - last < stall:
        return "ok"
    minutes = round((now - waiting).total_seconds() / 60)
    reasons.append(
        f"chunks have waited {minutes} minutes to be embedded and no worker has "
        f"embedded any in the last {round(stall.total_seconds() / 60)}: is a Celery "
        "worker running, and does it reach the broker?"
    )
    return "stalled"


def _model() -> tuple[str, int]:
    encoder = get_encoder()
    try:
        return encoder.name, encoder.dimension
    except EncoderUnavailable:  # a remote provider away, its size not yet learnt
        logger.warning("health: the embedding provider does not answer")
        return encoder.name, 0
