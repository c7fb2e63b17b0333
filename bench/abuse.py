"""A search prober's latency under anonymous abuse, against the prober alone in
the same run.

    python -m bench.abuse [--seconds 45] [--abusers 8] [--json]

The site as the fault suite deploys it (``tests/test_faults.py``): a private
PostgreSQL and Redis, gunicorn with two sync workers in production settings and
the shipped limits, a Celery worker; 300 documents. Then ``abuse_run`` twice for
``--seconds`` each: the prober alone (the baseline: what a search costs on this
machine as it is now), then beside ``--abusers`` clients posting 1,000-text
clustering and paraphrase requests, heavy similarity and searches whose filters
reject everything, as fast as they can. The target: the prober's p99 under
abuse stays under 1 s. Needs this machine's PostgreSQL and Redis packages
(``make test``'s services).
"""

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import cpu_name
from tests.servers import postgres, redis
from tests.test_faults import ABUSE_LIMITS, Stack, abuse_run, abuse_seed


def cpu() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores"


def run(seconds: float, abusers: int) -> dict[str, Any]:
    # What pytest-env gives the fault suite; TLS is the proxy's, not here.
    os.environ.setdefault("SECRET_KEY", "bench-only-" + os.urandom(16).hex())
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    with (
        tempfile.TemporaryDirectory(prefix="bench-abuse-") as root,
        postgres() as db,
        redis() as broker,
    ):
        stack = Stack(db, broker, Path(root))
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.key = stack.manage("create_api_key", "bench", "--permission", "write")
        stack.key = stack.key.strip()
        with stack.web("web", **ABUSE_LIMITS), stack.workers():
            abuse_seed(stack)
            alone = abuse_run(stack, seconds, abusers=0)
            abused = abuse_run(stack, seconds, abusers=abusers)
    return {"cpu": cpu(), "seconds": seconds, "alone": alone, "abused": abused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--abusers", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.seconds, args.abusers)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['cpu']}; {args.seconds:.0f} s each")
    print("| prober | its searches | p50 (ms) | p99 (ms) | all answers, by status |")
    print("|---|---|---|---|---|")
    for name in ("alone", "abused"):
        row = result[name]
        print(
            f"| {name} | {row['probes']} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} "
            f"| {row['seen']} |"
        )
    verdict = "under" if result["abused"]["p99_ms"] < 1000 else "OVER"
    print(f"p99 under abuse: {verdict} the 1 s target")


if __name__ == "__main__":
    main()
