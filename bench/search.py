"""HTTP search under gunicorn at 100K chunks, against its floor in the same run.

    python -m bench.search [--chunks 100000] [--modes hybrid,dense] [--block 100]
                           [--skip-ann] [--json]

Builds a throwaway site (a fresh SQLite database under a temporary VAR_DIR, or
DATABASE_URL when set): one collection of documents, one chunk each, whose texts
are SciFact title + abstract sentence pairs, embedded once with the product's
encoder (cached under ``var/bench/``) and replicated under new ids to reach the
size; then publishes the FAISS and keyword indexes as ``rebuild_index`` does.

Serves it with gunicorn (``searchsite/gunicorn.conf.py``: one sync worker per core,
one encoder thread each, model and indexes loaded as each worker starts) and loads
``GET /api/search`` with wrk, one connection per worker, every request a different
real query (SciFact + StackFAQ, 925 distinct), each sent once per mode: the query
cache (LRU, as configured) never answers, so HTTP and floor do the same encoding.
gunicorn is restarted between modes for the same reason.

The floor, in this process over the same queries: one query encoding (uncached) +
one search of the vector index (the candidates the dense leg asks for), with the
same thread count as a worker. HTTP and floor take turns, ``--block`` queries each,
so that both meet a shared machine in the same state. ``overhead_ratio`` is HTTP
p50 over its floor's p50, for the product's default mode.

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
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
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

    pairs = scifact_documents()
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
    limit_threads(threads)
    encoder = make_encoder()
    encoder.encode(["warm up"])
    return encoder


def floor_run(encoder: Any, texts: list[str], partition: str) -> list[float]:
    """Milliseconds per query: one encoding (what ``encode_query`` does uncached)
    and one search of the vector index for the dense leg's candidates."""
    from django.conf import settings

    from embeddings.index.reader import reader

    timings = []
    for text in texts:
        started = time.perf_counter()
        vector = encoder.encode([text])[0]
        reader.search(vector, partitions=[partition], k=settings.SEARCH_CANDIDATES)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_start(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "searchsite/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "searchsite.wsgi"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            # Every worker loads the model and indexes before it accepts: a reply
            # from each means all of them are ready.
            for n in range(4 * workers):
                http_get(port, {"q": f"warm up {n}"})
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("gunicorn did not answer within 180 s")


def http_get(port: int, params: dict[str, str]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/search?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def wrk_run(
    port: int, texts: list[str], *, mode: str, connections: int, work: Path
) -> dict[str, Any]:
    """Every text once, over ``connections`` connections: each request's latency
    (ms), and the seconds from wrk's start to its last answer."""
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
    while len(list(finished.iterdir())) < connections and wrk.poll() is None:
        time.sleep(0.05)
    wrk.send_signal(signal.SIGINT)
    output, _ = wrk.communicate(timeout=60)
    report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    latencies = [us / 1000 for us in report["latencies_us"]]
    if report["errors"] or len(latencies) != len(texts):
        raise RuntimeError(f"wrk: {output}")
    last = max(f.stat().st_mtime for f in finished.iterdir())
    return {"latencies_ms": latencies, "seconds": last - started}


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
    """HTTP and its floor in turns, a block of queries each, so that both meet the
    machine in the same state (a shared machine's speed drifts over minutes):
    each request's milliseconds over HTTP and of the floor, and HTTP's seconds."""
    port = free_port()
    server = server_start(env, port, args.workers)
    http: list[float] = []
    floor: list[float] = []
    seconds = 0.0
    try:
        for start in range(0, len(texts), args.block):
            block = texts[start : start + args.block]
            floor += floor_run(encoder, block, partition)
            report = wrk_run(
                port, block, mode=mode, connections=args.connections, work=work
            )
            http += report["latencies_ms"]
            seconds += report["seconds"]
    finally:
        server.terminate()
        server.wait(60)
    return {"http": http, "floor": floor, "seconds": seconds}


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
    }


def run(args: argparse.Namespace, var: Path) -> dict[str, Any]:
    from django.conf import settings

    from embeddings.encoders import encoder_threads
    from embeddings.index.reader import reader

    _, partition, build_s = site_build(args.chunks)
    texts = queries()[: args.queries or None]
    # Each worker's share of the cores, as searchsite/gunicorn.conf.py gives it.
    encoder = floor_encoder(max(1, len(os.sched_getaffinity(0)) // args.workers))
    env = server_env()
    runs = {
        mode: mode_run(
            env, encoder, texts, partition=partition, mode=mode, args=args, work=var
        )
        for mode in args.modes
    }
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "backend": settings.EMBEDDINGS_BACKEND,
        "model": encoder.name,
        "chunks": reader.size(partition),
        "build_s": round(build_s, 1),
        "queries": len(texts),
        "repeats": 0,
        "block": args.block,
        "workers": args.workers,
        "threads_per_worker": encoder_threads(),
        "connections": args.connections,
        "default_mode": settings.SEARCH_MODE,
    }
    for mode, measured in runs.items():
        http, floor = measured["http"], measured["floor"]
        for name, values in (("", http), ("floor_", floor)):
            for q in (50, 95, 99):
                result[f"{mode}_{name}p{q}_ms"] = round(percentile(values, q), 2)
        result[f"{mode}_rps"] = round(len(http) / measured["seconds"], 1)
        result[f"{mode}_overhead_ratio"] = round(
            percentile(http, 50) / percentile(floor, 50), 2
        )
    default = settings.SEARCH_MODE if settings.SEARCH_MODE in runs else args.modes[0]
    for key in ("p50_ms", "p95_ms", "p99_ms", "rps", "overhead_ratio"):
        result[key] = result[f"{default}_{key}"]
    for q in (50, 95, 99):
        result[f"floor_p{q}_ms"] = result[f"{default}_floor_p{q}_ms"]
    if not args.skip_ann:
        ann = ann_run(args.ann_vectors)
        result["ann"] = ann if ann is not None else "bench/ann.py not present"
    return result


def table(result: dict[str, Any], modes: list[str]) -> str:
    lines = [
        f"machine {result['machine']}; {result['database']}; "
        f"encoder {result['backend']} ({result['model']})",
        f"{result['chunks']:,} chunks (built in {result['build_s']} s); "
        f"{result['queries']} distinct queries per mode, {result['repeats']} repeats, "
        f"HTTP and floor in turns of {result['block']}; "
        f"gunicorn {result['workers']} workers x 1 thread, "
        f"{result['threads_per_worker']} encoder thread each; "
        f"wrk {result['connections']} connections",
        "",
        "| | req/s | p50 ms | p95 ms | p99 ms | p50 / floor p50 |",
        "|---|---|---|---|---|---|",
    ]
    for mode in modes:
        default = " (default)" if mode == result["default_mode"] else ""
        lines += [
            f"| HTTP {mode}{default} | {result[f'{mode}_rps']} "
            f"| {result[f'{mode}_p50_ms']} | {result[f'{mode}_p95_ms']} "
            f"| {result[f'{mode}_p99_ms']} | {result[f'{mode}_overhead_ratio']} |",
            f"| its floor: encode + index search, in-process | "
            f"| {result[f'{mode}_floor_p50_ms']} | {result[f'{mode}_floor_p95_ms']} "
            f"| {result[f'{mode}_floor_p99_ms']} | 1.0 |",
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
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ann-vectors", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=0, help="0: workers")
    parser.add_argument(
        "--block", type=int, default=100, help="queries per turn of HTTP and floor"
    )
    parser.add_argument("--skip-ann", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.modes = args.modes.split(",")
    args.connections = args.connections or args.workers
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
