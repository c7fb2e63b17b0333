"""Two instances of the site: B embeds through A's /v1 as its remote provider.

A and B are real gunicorn processes, each with its own VAR_DIR and SQLite
database; B imports content with its own ``import_content`` (Celery eager). Then
A is stopped: B's embedding retries the provider and falls back to its local copy
of the same model, and its content stays searchable.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.encoders import make_encoder
from tests.processes import free_port, gunicorn, process_stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
MODEL = "all-MiniLM-L6-v2"
FIRST = [
    ("How do I reset my password?", "Use the reset link on the sign-in page."),
    ("Where can I find my invoices?", "Under Billing, in your account settings."),
    ("Can I export my contacts?", "Yes: Contacts, then Export, as CSV."),
]
SECOND = [
    ("How do I delete my account?", "Settings, Privacy, then Delete account."),
    ("Why was my card declined?", "Your bank refused the payment; call them."),
]


def site_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """An instance's environment: its own files and database, nothing shared."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EMBEDDINGS_", "DATABASE_", "REDIS_", "INDEX_DIR"))
    }
    env.update(
        VAR_DIR=str(var_dir),
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="INFO",
        OMP_NUM_THREADS="1",
        EMBEDDINGS_THREADS="1",
        # The reference backend: its vectors do not depend on the batch they are
        # encoded in (int8's activation scales do), so they compare at 1e-5.
        EMBEDDINGS_BACKEND="torch",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"manage.py {args}:\n{done.stdout}\n{done.stderr}"
    return done


def get_json(url: str, **headers: str) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def search_titles(url: str, q: str) -> list[str]:
    query = urllib.parse.urlencode({"q": q, "collection": "help", "k": 3})
    return [r["title"] for r in get_json(f"{url}/api/search?{query}")["results"]]


def write_faqs(path: Path, faqs: list[tuple[str, str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in faqs)
    )
    return path


def stored_chunks(database: Path) -> list[tuple[str, str, str, bytes]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT text, status, model_name, vector FROM embeddings_chunk ORDER BY id"
        ).fetchall()


def assert_vectors_are_the_local_models(chunks: list[Any]) -> None:
    texts = [text for text, *_ in chunks]
    stored = np.vstack([np.frombuffer(vector, np.float32) for *_, vector in chunks])
    np.testing.assert_allclose(stored, make_encoder("torch").encode(texts), atol=1e-5)
    assert {(status, model) for _, status, model, _ in chunks} == {("embedded", MODEL)}


def key_usage(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT requests_count, tokens_used FROM faq_apikey WHERE name = 'b'"
        ).fetchone()
    return int(row[0]), int(row[1])


def test_an_instance_embeds_through_another_and_falls_back_when_it_stops(
    tmp_path: Path,
) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_env = site_env(a_dir, EMBEDDINGS_API_RATE="")
    migrations = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=site_env(d),
            stdout=subprocess.DEVNULL,
        )
        for d in (a_dir, b_dir)
    ]
    assert [m.wait(timeout=600) for m in migrations] == [0, 0]
    key = manage(a_env, "create_api_key", "b", "--permission", "embeddings")
    a_port, b_port = free_port(), free_port()
    b_env = site_env(
        b_dir,
        EMBEDDINGS_BACKEND="openai",
        EMBEDDINGS_REMOTE_URL=f"http://127.0.0.1:{a_port}/v1",
        EMBEDDINGS_REMOTE_KEY=key.stdout.strip(),
        EMBEDDINGS_REMOTE_MODEL=MODEL,
        EMBEDDINGS_REMOTE_RETRIES="2",
        EMBEDDINGS_FALLBACK="torch",
    )
    first = write_faqs(tmp_path / "first.jsonl", FIRST)
    second = write_faqs(tmp_path / "second.jsonl", SECOND)
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"

    b = f"http://127.0.0.1:{b_port}"
    with gunicorn(a_env, a_port, a_log) as a, gunicorn(b_env, b_port, b_log):
        # While A is up, B's vectors are A's: the same model's, to float precision.
        imported = manage(b_env, "import_content", str(first), "--collection", "help")
        assert "3 created" in imported.stdout
        assert "fallback" not in imported.stderr
        assert "Retrying" not in imported.stderr
        requests, tokens = key_usage(a_dir / "db.sqlite3")
        assert requests >= 1 and tokens > 0  # A served them
        chunks = stored_chunks(b_dir / "db.sqlite3")
        assert len(chunks) == 6  # a question chunk and an answer chunk each
        assert_vectors_are_the_local_models(chunks)
        assert search_titles(b, "I forgot my password")[0] == FIRST[0][0]
        assert key_usage(a_dir / "db.sqlite3")[0] > requests  # the query went to A

        # A stops. B retries it, then embeds with its local copy of the model.
        process_stop(a)
        started = time.monotonic()
        imported = manage(b_env, "import_content", str(second), "--collection", "help")
        took = time.monotonic() - started
        assert "2 created" in imported.stdout
        log = imported.stderr
        assert "(retry 1 of 2)" in log and "(retry 2 of 2)" in log
        assert (
            f"embedding provider http://127.0.0.1:{a_port}/v1 failed after 3 "
            "attempts (APIConnectionError: Connection error.); embedding 4 inputs "
            f"with the local torch fallback ({MODEL})"
        ) in log, log[-3000:]
        chunks = stored_chunks(b_dir / "db.sqlite3")
        assert len(chunks) == 10
        assert_vectors_are_the_local_models(chunks)
        # B's web process embeds queries the same way, and everything is found.
        assert search_titles(b, "remove my account for good")[0] == SECOND[0][0]
        assert search_titles(b, "I forgot my password")[0] == FIRST[0][0]
    served = b_log.read_text()
    assert "(retry 2 of 2)" in served
    assert "failed after 3 attempts (APIConnectionError" in served
    print(f"B's import with A stopped took {took:.1f} s (retries, then fallback)")
