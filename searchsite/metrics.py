"""``/metrics`` in Prometheus's text format (prometheus-client).

Per request, in every web process: latency and count by route, searches by mode
(``faq.search``), exceptions. Under gunicorn each worker writes its own files in
``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` sets it) and a scrape of any
worker sums them. At scrape time, from the database and the indexes (the same
figures whichever host is scraped, since workers may run elsewhere): chunks by
partition and state, the oldest waiting chunk, embedding throughput, each
partition's index version, size and lag, uploads and jobs by state, readiness.
"""

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from embeddings.index import store
from embeddings.index.reader import reader
from embeddings.models import Chunk
from embeddings.selectors import (
    embedded_since,
    oldest_waiting_since,
    status_counts,
    unindexed_since,
)
from faq.models import AnalysisJob, ImportJob
from searchsite.health import health_report

THROUGHPUT_WINDOW = 300  # seconds over which embedding throughput is averaged

REQUESTS = Counter(
    "searchsite_http_requests_total",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "searchsite_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EXCEPTIONS = Counter(
    "searchsite_exceptions_total",
    "Exceptions that escaped a view (500s), by type.",
    ["type"],
)


class MetricsMiddleware:
    """Times every request and counts it under its route pattern (bounded labels:
    ``api/items/<int:pk>/similar``, not each id)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = str(match.route) if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        LATENCY.labels(route, method).observe(time.perf_counter() - started)
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        EXCEPTIONS.labels(type(exception).__name__).inc()


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class StateCollector(Collector):
    """Gauges read from the database and the index files at scrape time, cached
    ``METRICS_CACHE_SECONDS`` in the process."""

    def __init__(self) -> None:
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        if (
            self._cached is None
            or now - self._cached[0] >= settings.METRICS_CACHE_SECONDS
        ):
            self._cached = (now, list(_state_now()))
        yield from self._cached[1]


def _gauge(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"searchsite_{name}", text, labels=labels)


def _state_now() -> Iterator[GaugeMetricFamily]:
    now = timezone.now()
    counts = status_counts(Chunk.objects.all(), by="partition")
    chunks = _gauge("chunks", "Chunks by partition and state.", ["partition", "state"])
    for partition, by_state in sorted(counts.items()):
        for state, n in sorted(by_state.items()):
            chunks.add_metric([partition, state], n)
    yield chunks
    waiting = oldest_waiting_since()
    oldest = _gauge("chunk_oldest_pending_seconds", "Age of the oldest pending chunk.")
    oldest.add_metric([], (now - waiting).total_seconds() if waiting else 0.0)
    yield oldest
    since = now - timedelta(seconds=THROUGHPUT_WINDOW)
    rate = _gauge(
        "embedding_chunks_per_second",
        f"Chunks embedded per second, over the last {THROUGHPUT_WINDOW} s.",
    )
    rate.add_metric([], embedded_since(since) / THROUGHPUT_WINDOW)
    yield rate
    yield from _indexes(counts, now)
    if settings.INDEX_FOLLOW:
        yield from _replica()
    for model, name in ((ImportJob, "uploads"), (AnalysisJob, "analysis_jobs")):
        family = _gauge(
            name, f"{name.replace('_', ' ').capitalize()} by state.", ["state"]
        )
        by_state = dict(
            model.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        for state in model.Status.values:
            family.add_metric([state], by_state.get(state, 0))
        yield family
    ready = _gauge("ready", "1 when readiness passes (/api/health/ready).")
    ready.add_metric([], 1.0 if health_report()["status"] == "ok" else 0.0)
    yield ready


def _replica() -> Iterator[GaugeMetricFamily]:
    from embeddings.replica import lag

    behind = lag()
    entries = _gauge(
        "replica_lag_entries", "Change feed entries this host's indexes lack."
    )
    entries.add_metric([], behind["entries"])
    seconds = _gauge(
        "replica_lag_seconds",
        "How long the oldest change feed entry not applied here has waited.",
    )
    seconds.add_metric([], behind["seconds"])
    yield from (entries, seconds)


def _indexes(
    counts: dict[str, dict[str, int]], now: Any
) -> Iterator[GaugeMetricFamily]:
    labels = ["partition"]
    version = _gauge(
        "index_version", "Version of the index this process serves.", labels
    )
    size = _gauge("index_vectors", "Vectors in the index this process serves.", labels)
    lag = _gauge("index_lag_chunks", "Embedded chunks not yet in that index.", labels)
    lag_s = _gauge(
        "index_lag_seconds",
        "How long the oldest chunk embedded since that version has waited for it.",
        labels,
    )
    damaged = _gauge(
        "index_damaged", "1 when a file of the partition's index is damaged.", labels
    )
    for partition in store.partitions():
        loaded = reader.get(partition)
        served = len(loaded.vectors) if loaded else 0
        version.add_metric([partition], loaded.manifest.version if loaded else 0)
        size.add_metric([partition], served)
        embedded = counts.get(partition, {}).get("embedded", 0)
        lag.add_metric([partition], max(0, embedded - served))
        first = unindexed_since(partition, loaded.manifest.created) if loaded else None
        lag_s.add_metric([partition], (now - first).total_seconds() if first else 0.0)
        damaged.add_metric([partition], 1.0 if partition in reader.problems else 0.0)
    yield from (version, size, lag, lag_s, damaged)


# The state gauges in a registry of their own: read once per scrape, whichever
# registry holds the counters.
_state = CollectorRegistry(auto_describe=False)
_state.register(StateCollector())


def _registry() -> CollectorRegistry:
    """Every process's counters (one file each under gunicorn), or this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return registry


def _allowed(request: HttpRequest) -> bool:
    """With ``METRICS_TOKEN``, its bearer; without, a scrape from this machine
    that no proxy forwarded."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), token.encode())
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(
            "Set METRICS_TOKEN and scrape with it as a bearer token.\n",
            status=403,
            content_type="text/plain",
        )
    body = generate_latest(_registry()) + generate_latest(_state)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
