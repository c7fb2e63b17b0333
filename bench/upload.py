"""Rows per second from upload to searchable: 10,000 FAQs as one CSV.

    python -m bench.upload [--rows 10000] [--json]

A real Celery worker process embeds; the upload goes through the same service the
admin and the API call. The baseline, measured in the same run, is the floor:
encoding the same chunk texts with sentence-transformers in one process.
Uses DATABASE_URL / REDIS_URL when set, else a throwaway SQLite and filesystem
broker. Question/answer text comes from SciFact titles and abstracts (evaluation
data, used here only to measure).
"""

import argparse
import csv
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT

SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
FLOOR_SAMPLE = 2000


def faq_rows(count: int) -> list[dict[str, str]]:
    docs = [json.loads(line) for line in SCIFACT.open(encoding="utf-8")]
    rows = []
    for part in range(count // len(docs) + 1):
        for doc in docs:
            sentences = doc["text"].split(". ")
            answer = ". ".join(sentences[part * 2 : part * 2 + 2]) or doc["text"][:300]
            suffix = f" (part {part + 1})" if part else ""
            rows.append(
                {
                    "external_id": f"{doc['_id']}-{part}",
                    "question": doc["title"] + suffix,
                    "answer": answer,
                    "category": "bench",
                }
            )
            if len(rows) == count:
                return rows
    return rows


def as_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    os.environ.setdefault("VAR_DIR", str(var))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    result = run(args.rows, var)
    table = [
        (
            "machine",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        ),
        ("rows", result["rows"]),
        ("chunks", result["chunks"]),
        ("upload to searchable (s)", result["seconds"]),
        ("rows per second", result["rows_per_s"]),
        ("floor: encoding those chunks alone (s)", result["floor_seconds"]),
        ("pipeline over floor", result["ratio_vs_floor"]),
        ("probed questions found in the top 3", result["searchable_probes"]),
    ]
    for name, value in table:
        print(f"{name:>46}  {value}")
    if args.json:
        print(json.dumps(result))


def run(count: int, var: Path) -> dict[str, object]:
    from embeddings.encoders import get_encoder
    from embeddings.models import Chunk
    from faq.models import Collection, Faq, ImportJob
    from faq.search import SearchQuery, search
    from faq.uploads import upload_create, upload_progress

    rows = faq_rows(count)
    data = as_csv(rows)
    collection = Collection.objects.create(name="Bench", slug=f"bench-{os.getpid()}")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "searchsite", "worker",
         "--concurrency", "1", "--loglevel", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    try:
        time.sleep(5)  # the worker loads the model before the clock starts
        started = time.perf_counter()
        job = upload_create(
            collection=collection, files=[("faqs.csv", data)], confirm=True
        )
        while True:
            job = ImportJob.objects.get(pk=job.pk)
            progress = upload_progress(job)
            if progress["finished"]:
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(60)
    assert progress["status"] == "done", progress
    probes = rows[:: max(1, count // 50)]
    found = sum(
        r["question"]
        in [x.title for x in search(SearchQuery(q=r["question"], k=3)).results]
        for r in probes
    )
    texts = list(
        Chunk.objects.filter(partition=collection.partition).values_list(
            "text", flat=True
        )
    )
    # The floor: encoding alone, timed on a sample of the same chunks and scaled.
    sample = texts[:: max(1, len(texts) // FLOOR_SAMPLE)]
    floor_started = time.perf_counter()
    get_encoder().encode(sample)
    floor = (time.perf_counter() - floor_started) * len(texts) / len(sample)
    return {
        "rows": Faq.objects.filter(collection=collection).count(),
        "chunks": len(texts),
        "seconds": round(seconds, 1),
        "rows_per_s": round(count / seconds, 1),
        "floor_seconds": round(floor, 1),
        "ratio_vs_floor": round(seconds / floor, 2),
        "searchable_probes": f"{found}/{len(probes)}",
    }


if __name__ == "__main__":
    main()
