"""A web host's replica freshness under write load, at 1 and 10 writes a second.

    python -m bench.replica [--seconds 60] [--rates 1,10] [--json]

The site as ``tests/test_hosts.py`` deploys it (needs root: network namespaces):
PostgreSQL and Redis on one host, web hosts A and B, a worker host. For each rate,
FAQs are created through A's API at that rate for ``--seconds``; meanwhile B's
readiness is sampled every 0.25 s for its replica lag (``index.replica.seconds``:
how long the oldest feed entry B has not applied has waited), and every fifth
FAQ is searched for on B until found (written on A to found on B, the whole
path: the worker's embedding, the feed, B's follower, B's search). The 1 write/s
run is the baseline: what the path costs when nothing queues.
"""

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import django

from bench import cpu_name

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-" + os.urandom(16).hex())
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")


def cpu() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def phase(site: Any, rate: float, seconds: float, slug: str) -> dict[str, Any]:
    web_a, web_b = site.hosts["ss-web-a"], site.hosts["ss-web-b"]
    stop = threading.Event()
    lags: list[float] = []
    found: list[float] = []
    waiting: list[tuple[int, str, float]] = []
    lock = threading.Lock()

    def sample() -> None:
        while not stop.is_set():
            status, report = site.call(web_b, "GET", "/api/health/ready")
            if isinstance(report, dict) and report["index"].get("replica"):
                lags.append(float(report["index"]["replica"]["seconds"]))
            time.sleep(0.25)

    def probe() -> None:
        while not stop.is_set() or waiting:
            with lock:
                pending = list(waiting)
            for item in pending:
                pk, query, written = item
                if pk in site.found(web_b, query, slug):
                    found.append(time.monotonic() - written)
                    with lock:
                        waiting.remove(item)
            time.sleep(0.05)

    threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    writes = 0
    while time.monotonic() - started < seconds:
        word = f"w{slug}{writes:05d}x"
        status, faq = site.call(
            web_a,
            "POST",
            f"/api/collections/{slug}/faqs",
            {"question": f"What is {word}?", "answer": f"{word} is a test entry."},
        )
        assert status == 201, faq
        if writes % 5 == 0:
            with lock:
                waiting.append((faq["id"], word, time.monotonic()))
        writes += 1
        time.sleep(max(0.0, started + writes / rate - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return {
        "rate": rate,
        "writes": writes,
        "lag_p50_s": round(percentile(lags, 0.5), 2),
        "lag_p99_s": round(percentile(lags, 0.99), 2),
        "found_p50_s": round(percentile(found, 0.5), 2),
        "found_p99_s": round(percentile(found, 0.99), 2),
        "found": len(found),
    }


def run(seconds: float, rates: list[float]) -> dict[str, Any]:
    import tempfile

    django.setup()
    from tests.netns import network
    from tests.servers import postgres, redis
    from tests.test_hosts import NAMES, Site

    with (
        tempfile.TemporaryDirectory(prefix="bench-replica-") as root,
        network(NAMES) as hosts,
        postgres(hosts["ss-db"].address, hosts["ss-db"].prefix) as db,
        redis(hosts["ss-db"].address, hosts["ss-db"].prefix) as broker,
    ):
        site = Site(hosts, db, broker, Path(root))
        web_a = hosts["ss-web-a"]
        site.manage(web_a, "migrate", "--no-input", "-v", "0")
        site.manage(web_a, "prepare_encoder")
        key = site.manage(web_a, "create_api_key", "bench", "--permission", "write")
        site.key = key.strip()
        results = []
        with (
            site.web(web_a),
            site.web(hosts["ss-web-b"]),
            site.worker(hosts["ss-work-1"]),
        ):
            for n, rate in enumerate(rates):
                slug = f"rate{n}"
                site.call(
                    web_a, "POST", "/api/collections", {"name": slug, "slug": slug}
                )
                results.append(phase(site, rate, seconds, slug))
    return {"cpu": cpu(), "seconds": seconds, "phases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rates", default="1,10")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.seconds, [float(r) for r in args.rates.split(",")])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['cpu']}; {args.seconds:.0f} s per rate")
    print(
        "| writes/s | writes | B's lag p50 / p99 (s) | A to found on B p50 / p99 (s) |"
    )
    print("|---|---|---|---|")
    for row in result["phases"]:
        print(
            f"| {row['rate']:g} | {row['writes']} | {row['lag_p50_s']} / "
            f"{row['lag_p99_s']} | {row['found_p50_s']} / {row['found_p99_s']} "
            f"({row['found']} searched) |"
        )


if __name__ == "__main__":
    main()
