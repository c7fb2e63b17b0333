"""gunicorn settings for production: ``gunicorn -c searchsite/gunicorn.conf.py
searchsite.wsgi``.

One sync worker per core (``WEB_CONCURRENCY`` to change), one request at a time
each, the model running on the worker's share of the cores: encoding a query is
CPU-bound, so more threads than cores only queue behind each other
(``python -m bench.search`` measures it). Workers import the app after the fork
(no ``preload_app``): torch's and FAISS's OpenMP pools do not survive a fork, so
each worker loads the model and every index itself, in ``searchsite.wsgi``, before
it accepts its first request.
"""

import os
import tempfile
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or len(os.sched_getaffinity(0)))
threads = 1
preload_app = False
timeout = 120  # seconds; also the most a worker may take to load the model at start
# Each worker counts its requests in files here; /metrics sums them. Emptied when
# the server starts: the files of a previous server's workers are not ours.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"searchsite-metrics-{os.getpid()}"),
)


def on_starting(server: Any) -> None:
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):  # prometheus-client's files, and only those
            os.unlink(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server: Any, worker: Any) -> None:
    """Each worker's model takes its share of the cores (``EMBEDDINGS_THREADS``
    wins); FAISS searches on one thread (``searchsite.wsgi``)."""
    from embeddings.encoders import threads_default_set

    threads_default_set(max(1, len(os.sched_getaffinity(0)) // server.cfg.workers))
