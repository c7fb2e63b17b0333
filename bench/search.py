"""HTTP search under gunicorn, against the search service in-process and their
floor, in the same run; then searches a second per core by server configuration.

    python -m bench.search [--chunks 100000] [--modes hybrid,dense] [--block 100]
                           [--config 2x1x1] [--configs 2x1x1,1x1x2,2x2x1]
                           [--clients 1,2,8] [--skip-ann] [--json]

Builds a throwaway site (a fresh SQLite database under a temporary VAR_DIR, or
DATABASE_URL when set): one collection of documents, one chunk each, whose texts
are SciFact title + abstract sentence pairs (45,432 distinct), embedded once with
the product's encoder (cached under ``var/bench/``) and replicated under new ids
past that size; then publishes the FAISS and keyword indexes as ``rebuild_index``
does.

Serves it with gunicorn (``searchsite/gunicorn.conf.py``; ``--config`` is workers x
threads x the model's threads, by default one sync worker per core, one model
thread each, model and indexes loaded as each worker starts) and loads
``GET /api/search`` with wrk, ``--latency-clients`` connections (one: what a search
costs, as the floor is measured, one at a time; the sweep below measures
concurrency), every request a different real query (SciFact + StackFAQ, 925
distinct), each sent once per mode: the query cache (LRU, as configured) never
answers, so every way does the same encoding. gunicorn is restarted between modes
for the same reason.

In turns of ``--block`` queries, so that all three meet a shared machine in the
same state: HTTP; the search service in this process (``faq.search.search``, what
the API calls); and the floor, what the mode cannot do without, on the model
threads of a worker: one query encoding (uncached) and one search of the vector
index for the dense leg's candidates (dense, hybrid), one search of the keyword
index for as many (keyword, hybrid). ``overhead_ratio`` is HTTP p50 over the
floor's p50, ``inprocess_ratio`` the service's, for the product's default mode.

The sweep: for each of ``--configs``, a fresh gunicorn and a closed loop of each of
``--clients`` concurrent clients on distinct queries: searches a second per core.

With ``bench/ann.py`` present (and no ``--skip-ann``) its ``run(n)`` adds the
approximate index at 1M vectors (build time, memory, p50, recall@10).
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import ROOT, cpu_name

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "var" / "bench"
SENTENCE = re.compile(r"(?<=[.!?])\s+")
WRK_SCRIPT = Path(__file__).with_name("search.lua")


def scifact_documents() -> list[tuple[str, str]]:
    """Distinct SciFact (title, abstract sentence) pairs: a document each."""
    found: dict[tuple[str, str], None] = {}
    with (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line in corpus:
            doc = json.loads(line)
            for sentence in SENTENCE.split(doc["text"]):
                if len(sentence.strip()) >= 20:
                    found[doc["title"].strip(), sentence.strip()] = None
    return list(found)


def queries() -> list[str]:
    """Every distinct SciFact and StackFAQ query, in a fixed shuffled order."""
    found: dict[str, None] = {}
    for name in ("scifact", "stackfaq"):
        with (DATA / name / "queries.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                found[" ".join(json.loads(line)["text"].split())] = None
    texts = list(found)
    random.Random(0).shuffle(texts)
    return texts


def vectors_cached(texts: list[str]) -> np.ndarray:
    """The texts' vectors, encoded once per model (by whichever local backend runs
    it first: their cosines agree to about 0.99, and latency does not depend on
    them)."""
    import hashlib

    from embeddings.encoders import get_encoder

    encoder = get_encoder()
    key = f"{encoder.name}\0" + "\0".join(texts)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = CACHE / f"scifact-sentences-{digest}.npy"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        matrix = encoder.encode(texts)
        print(f"encoded {len(texts)} texts in {time.perf_counter() - started:.0f}s")
        np.save(path, matrix)
    return np.load(path)


def site_build(size: int) -> tuple[str, str, float]:
    """A collection of ``size`` one-chunk documents, indexed. Returns its slug,
    its partition and the seconds the build took."""
    from embeddings.chunking import content_hash
    from embeddings.encoders import get_encoder
    from embeddings.models import Chunk
    from embeddings.services import index_rebuild
    from faq.models import Collection, Document

    pairs = scifact_documents()[:size]
    # A document's one chunk, as the chunker writes it: led by the title.
    texts = [f"{title} {body}" for title, body in pairs]
    matrix = vectors_cached(texts)
    started = time.perf_counter()
    encoder = get_encoder()
    collection = Collection.objects.create(
        name="Bench",
        slug=f"bench-{os.getpid()}",
        embedding_model=encoder.name,
        embedding_dimension=encoder.dimension,
    )
    for start in range(0, size, 10_000):
        rows = range(start, min(start + 10_000, size))
        documents = Document.objects.bulk_create(
            Document(
                collection=collection,
                title=pairs[i % len(pairs)][0],
                body=pairs[i % len(pairs)][1],
                external_id=f"s{i}",
            )
            for i in rows
        )
        Chunk.objects.bulk_create(
            Chunk(
                source_type="faq.document",
                source_id=document.pk,
                partition=collection.partition,
                field="body",
                position=0,
                text=texts[i % len(texts)],
                content_hash=content_hash(texts[i % len(texts)]),
                status=Chunk.Status.EMBEDDED,
                vector=matrix[i % len(texts)].tobytes(),
                model_name=encoder.name,
            )
            for i, document in zip(rows, documents, strict=True)
        )
    index_rebuild(collection.partition)
    return collection.slug, collection.partition, time.perf_counter() - started


def floor_encoder(threads: int) -> Any:
    """The product's encoder on ``threads`` threads, as a gunicorn worker runs it."""
    from embeddings.encoders import make_encoder, threads_default_set
    from embeddings.index.dense import limit_threads

    threads_default_set(threads)
    limit_threads(1)  # as searchsite.wsgi: one query, one thread
    encoder = make_encoder()
    encoder.encode(["warm up"])
    return encoder


def floor_run(encoder: Any, texts: list[str], partition: str, mode: str) -> list[float]:
    """Milliseconds per query of what ``mode`` cannot do without: the query's
    encoding (uncached, as ``encode_query`` misses) and the vector index's search
    for the dense leg's candidates (dense and hybrid); the keyword index's search
    for as many (keyword and hybrid)."""
    from django.conf import settings

    from embeddings.index.reader import reader

    k = settings.SEARCH_CANDIDATES
    timings = []
    for text in texts:
        started = time.perf_counter()
        if mode != "keyword":
            vector = encoder.encode([text])[0]
            reader.search(vector, partitions=[partition], k=k)
        if mode != "dense":
            reader.match(text, partitions=[partition], k=k)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def inprocess_run(texts: list[str], mode: str) -> list[float]:
    """Milliseconds per query of the search service itself (``faq.search``), as
    the API calls it, without HTTP: the query cache emptied before each."""
    from embeddings.encoders import encode_query
    from faq.search import SearchQuery, search

    timings = []
    for text in texts:
        encode_query.cache_clear()
        started = time.perf_counter()
        search(SearchQuery(text, mode=mode, cosines=False))  # as the API's default
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_start(env: dict[str, str], port: int, config: "Config") -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "searchsite/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", str(config.workers),
         "--threads", str(config.threads), "searchsite.wsgi"],
        cwd=ROOT, env={**env, "EMBEDDINGS_THREADS": str(config.model_threads)},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            # Every worker loads the model and indexes before it accepts: a reply
            # from each means all of them are ready.
            for n in range(4 * config.workers):
                http_get(port, {"q": f"warm up {n}"})
            follower_settled(deadline)
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("gunicorn did not answer within 180 s")


def follower_settled(deadline: float) -> None:
    """Wait for the first check of a fresh site by the host's index follower (every
    partition's files verified against the database, in a worker's background
    thread): a web host's start-up, not what a search costs."""
    from django.conf import settings

    from embeddings.index import store
    from embeddings.replica import STATE

    while settings.INDEX_FOLLOW and not (store.index_dir() / STATE).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the index follower did not check the site in time")
        time.sleep(0.2)


def http_get(port: int, params: dict[str, str]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/search?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def wrk_run(
    port: int,
    texts: list[str],
    *,
    mode: str,
    connections: int,
    work: Path,
    steady: bool = False,
) -> dict[str, Any]:
    """Every text once, over ``connections`` connections: each request's latency
    (ms), and the seconds from wrk's start to its last answer.

    ``steady``: only while every connection has texts left, until the first runs
    out (the answers so far and the seconds to then). A sync worker serves one
    connection at a time, and a wrk thread that is done still connects once more,
    never to send: with more connections than workers, those would hold workers
    and the others' requests would wait."""
    run = Path(tempfile.mkdtemp(prefix=f"wrk-{mode}-", dir=work))
    paths, finished = run / "paths.txt", run / "finished"
    paths.write_text(
        "".join(
            "/api/search?" + urllib.parse.urlencode({"q": text, "mode": mode}) + "\n"
            for text in texts
        )
    )
    finished.mkdir()
    started = time.time()
    wrk = subprocess.Popen(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", "3600s",
         "--timeout", "30s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}"],
        env={**os.environ, "BENCH_PATHS": str(paths),
             "BENCH_THREADS": str(connections), "BENCH_FINISHED": str(finished)},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    # A wrk thread that has sent its share stops, but wrk itself waits out its
    # duration; each thread leaves a file when done, and SIGINT ends wrk then.
    wanted = 1 if steady else connections
    while len(list(finished.iterdir())) < wanted and wrk.poll() is None:
        time.sleep(0.01)
    wrk.send_signal(signal.SIGINT)
    output, _ = wrk.communicate(timeout=60)
    report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    latencies = [us / 1000 for us in report["latencies_us"]]
    complete = steady or len(latencies) == len(texts)
    if (report["errors"] and not steady) or not complete:
        raise RuntimeError(f"wrk: {output}")
    ends = [f.stat().st_mtime for f in finished.iterdir()]
    last = min(ends) if steady else max(ends)
    return {"latencies_ms": latencies, "seconds": last - started}


@dataclass(frozen=True)
class Config:
    """A gunicorn configuration: processes, threads each, the model's threads each."""

    workers: int
    threads: int
    model_threads: int

    @classmethod
    def parse(cls, text: str) -> "Config":
        workers, threads, model = (int(n) for n in text.split("x"))
        return cls(workers, threads, model)

    def __str__(self) -> str:
        return f"{self.workers}x{self.threads}x{self.model_threads}"


def mode_run(
    env: dict[str, str],
    encoder: Any,
    texts: list[str],
    *,
    partition: str,
    mode: str,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    """HTTP, the search service in this process and the floor in turns, a block
    of queries each, so that all three meet the machine in the same state (a
    shared machine's speed drifts over minutes): each request's milliseconds of
    each, and HTTP's seconds."""
    port = free_port()
    server = server_start(env, port, args.config)
    times: dict[str, list[float]] = {"http": [], "inprocess": [], "floor": []}
    seconds = 0.0
    try:
        for start in range(0, len(texts), args.block):
            block = texts[start : start + args.block]
            times["floor"] += floor_run(encoder, block, partition, mode)
            times["inprocess"] += inprocess_run(block, mode)
            report = wrk_run(
                port, block, mode=mode, connections=args.latency_clients, work=work
            )
            times["http"] += report["latencies_ms"]
            seconds += report["seconds"]
    finally:
        server.terminate()
        server.wait(60)
    return {**times, "seconds": seconds}


def throughput_run(
    env: dict[str, str],
    texts: list[str],
    *,
    mode: str,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, dict[str, float]]:
    """Searches a second per core over HTTP, for each server configuration and
    each number of concurrent clients (a closed loop each: a client sends its next
    query when the last is answered), distinct queries for each client count,
    while all the clients are busy (see ``wrk_run``)."""
    cores = len(os.sched_getaffinity(0))
    share = len(texts) // len(args.clients)
    found: dict[str, dict[str, float]] = {}
    for config in args.configs:
        port = free_port()
        server = server_start(env, port, config)
        try:
            for n, clients in enumerate(args.clients):
                batch = texts[n * share : (n + 1) * share]
                report = wrk_run(
                    port, batch, mode=mode, connections=clients, work=work, steady=True
                )
                answered = len(report["latencies_ms"])
                found.setdefault(str(config), {})[str(clients)] = round(
                    answered / report["seconds"] / cores, 1
                )
        finally:
            server.terminate()
            server.wait(60)
    return found


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ann_run(n: int) -> dict[str, Any] | None:
    """bench/ann.py's figures for the approximate index, if that bench exists."""
    try:
        from bench import ann
    except ImportError:
        return None
    result: dict[str, Any] = ann.run(n)
    return result


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-search-not-a-secret"),
        "LOG_LEVEL": "WARNING",
        "SECURE_SSL_REDIRECT": "false",  # TLS ends at the proxy in front
        # One client at hundreds a second: the limit is counted, never reached.
        "RATE_SEARCH": "100000000/m",
    }


def run(args: argparse.Namespace, var: Path) -> dict[str, Any]:
    from django.conf import settings

    from embeddings.index.reader import reader
    from tests.encoding import encoder_use

    _, partition, build_s = site_build(args.chunks)
    texts = queries()[: args.queries or None]
    # The model on the threads a worker gives it, for the floor and in-process.
    encoder = floor_encoder(args.config.model_threads)
    encoder_use(encoder)
    env = server_env()
    runs = {
        mode: mode_run(
            env, encoder, texts, partition=partition, mode=mode, args=args, work=var
        )
        for mode in args.modes
    }
    cores = len(os.sched_getaffinity(0))
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores",
        "cpu": cpu_name(),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "backend": settings.EMBEDDINGS_BACKEND,
        "model": encoder.name,
        "chunks": reader.size(partition),
        "build_s": round(build_s, 1),
        "queries": len(texts),
        "block": args.block,
        "config": str(args.config),
        "latency_clients": args.latency_clients,
        "workers": args.config.workers,
        "threads_per_worker": args.config.model_threads,
        "default_mode": settings.SEARCH_MODE,
    }
    for mode, measured in runs.items():
        floor = percentile(measured["floor"], 50)
        for name in ("http", "inprocess", "floor"):
            prefix = f"{mode}_" if name == "http" else f"{mode}_{name}_"
            for q in (50, 95, 99):
                result[f"{prefix}p{q}_ms"] = round(percentile(measured[name], q), 2)
        result[f"{mode}_rps"] = round(len(measured["http"]) / measured["seconds"], 1)
        result[f"{mode}_rps_per_core"] = round(result[f"{mode}_rps"] / cores, 1)
        result[f"{mode}_overhead_ratio"] = round(
            percentile(measured["http"], 50) / floor, 2
        )
        result[f"{mode}_inprocess_ratio"] = round(
            percentile(measured["inprocess"], 50) / floor, 2
        )
    default = settings.SEARCH_MODE if settings.SEARCH_MODE in runs else args.modes[0]
    for key in ("p50_ms", "p95_ms", "p99_ms", "rps", "rps_per_core", "overhead_ratio",
                "inprocess_ratio", "inprocess_p50_ms", "floor_p50_ms", "floor_p95_ms",
                "floor_p99_ms"):  # fmt: skip
        result[key] = result[f"{default}_{key}"]
    if args.configs and args.clients:
        result["rps_per_core_by_config"] = throughput_run(
            env, texts, mode=default, args=args, work=var
        )
    if not args.skip_ann:
        ann = ann_run(args.ann_vectors)
        result["ann"] = ann if ann is not None else "bench/ann.py not present"
    return result


def table(result: dict[str, Any], modes: list[str]) -> str:
    lines = [
        f"{result['cpu']} ({result['machine']}); {result['database']}; "
        f"encoder {result['backend']} ({result['model']})",
        f"{result['chunks']:,} chunks (built in {result['build_s']} s); "
        f"{result['queries']} distinct queries per mode; HTTP, in-process and floor "
        f"in turns of {result['block']}; gunicorn {result['config']} "
        f"(workers x threads x model threads), {result['latency_clients']} "
        "client(s)",
        "",
        "| | req/s per core | p50 ms | p95 ms | p99 ms | p50 / floor p50 |",
        "|---|---|---|---|---|---|",
    ]
    for mode in modes:
        default = " (default)" if mode == result["default_mode"] else ""
        lines += [
            f"| HTTP {mode}{default} | {result[f'{mode}_rps_per_core']} "
            f"| {result[f'{mode}_p50_ms']} | {result[f'{mode}_p95_ms']} "
            f"| {result[f'{mode}_p99_ms']} | {result[f'{mode}_overhead_ratio']} |",
            f"| search service, in-process | "
            f"| {result[f'{mode}_inprocess_p50_ms']} "
            f"| {result[f'{mode}_inprocess_p95_ms']} "
            f"| {result[f'{mode}_inprocess_p99_ms']} "
            f"| {result[f'{mode}_inprocess_ratio']} |",
            f"| its floor: encode + index searches | "
            f"| {result[f'{mode}_floor_p50_ms']} | {result[f'{mode}_floor_p95_ms']} "
            f"| {result[f'{mode}_floor_p99_ms']} | 1.0 |",
        ]
    sweep = result.get("rps_per_core_by_config")
    if sweep:
        clients = list(next(iter(sweep.values())))
        lines += [
            "",
            f"{result['default_mode']} searches a second per core, by gunicorn "
            "configuration (workers x threads x model threads) and concurrent clients:",
            "",
            "| configuration | " + " | ".join(f"{c} clients" for c in clients) + " |",
            "|---|" + "---|" * len(clients),
        ]
        lines += [
            f"| {config} | " + " | ".join(str(row[c]) for c in clients) + " |"
            for config, row in sweep.items()
        ]
    ann = result.get("ann")
    if isinstance(ann, dict):
        lines += ["", "| approximate index | |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in ann.items()]
    elif ann:
        lines += ["", f"approximate index: {ann}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--modes", default="hybrid,dense")
    parser.add_argument("--queries", type=int, default=0, help="0: all 925")
    cores = len(os.sched_getaffinity(0))
    parser.add_argument(
        "--config",
        default=f"{cores}x1x1",
        help="gunicorn for the latency runs: workers x threads x model threads",
    )
    parser.add_argument(
        "--latency-clients",
        type=int,
        default=1,
        help="concurrent clients of the latency runs (the floor runs one at a time)",
    )
    parser.add_argument(
        "--configs",
        default=f"{cores}x1x1,1x1x{cores},{cores}x2x1",
        help="the configurations of the throughput sweep (empty: none)",
    )
    parser.add_argument("--clients", default="1,2,8", help="of the throughput sweep")
    parser.add_argument("--ann-vectors", type=int, default=1_000_000)
    parser.add_argument(
        "--block", type=int, default=100, help="queries per turn of HTTP and floor"
    )
    parser.add_argument("--skip-ann", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.modes = args.modes.split(",")
    args.config = Config.parse(args.config)
    args.configs = [Config.parse(c) for c in args.configs.split(",") if c]
    args.clients = [int(c) for c in args.clients.split(",") if c]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    var = Path(tempfile.mkdtemp(prefix="bench-search-"))
    # A fresh database and index; VAR_DIR (where model exports are cached) is kept.
    os.environ["INDEX_DIR"] = str(var / "index")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{var / 'db.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result = run(args, var)
    finally:
        shutil.rmtree(var, ignore_errors=True)
    print(table(result, args.modes))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
