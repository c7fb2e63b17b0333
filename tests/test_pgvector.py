"""``VECTOR_BACKEND=pgvector``: the site's dense leg in PostgreSQL, end to end.

A PostgreSQL with the vector extension of the tests' own (``pgvector_bin``), the
site migrated on it, content imported and embedded; then a web process serves
searches whose vectors come from the table, not from a FAISS file, and a deleted
FAQ leaves the table at the next sync.
"""

import json
import subprocess
import sys
import urllib.parse
import urllib.request

import numpy as np
import pytest

from tests.processes import ROOT, free_port, gunicorn, site_env
from tests.servers import pgvector_bin, postgres

pytestmark = [pytest.mark.slow, pytest.mark.services]

FAQS = [
    {"kind": "faq", "question": q, "answer": a}
    for q, a in [
        ("How do I get a refund?", "Ask billing within 30 days of the charge."),
        ("How do I reset my password?", "Use the forgotten-password link."),
        ("Can I export my contacts?", "Download them as CSV from the address book."),
        ("Where do I change the language?", "Open settings, then language."),
    ]
]


def test_searches_read_the_vectors_from_postgresql(tmp_path, another_model):
    with postgres(bin=pgvector_bin()) as db:
        env = site_env(
            DATABASE_URL=db.url,
            VECTOR_BACKEND="pgvector",
            VAR_DIR=str(tmp_path / "var"),
            INDEX_DIR=str(tmp_path / "index"),
            CELERY_TASK_ALWAYS_EAGER="true",  # the import embeds as it goes
            SECURE_SSL_REDIRECT="false",
            RATE_SEARCH="",
            EMBEDDINGS_MODELS=another_model,
        )
        env.pop("REDIS_URL", None)

        def manage(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        manage("migrate", "--no-input", "-v", "0")
        content = tmp_path / "faqs.jsonl"
        content.write_text("".join(json.dumps(row) + "\n" for row in FAQS))
        manage("import_content", str(content), "--collection", "help")
        ((chunks,),) = db.sql("SELECT count(*) FROM embeddings_chunk")
        ((rows,),) = db.sql("SELECT count(*) FROM embeddings_vector")
        assert rows == chunks == 8  # a question and an answer chunk each
        assert not list((tmp_path / "index").glob("*/vectors-*.faiss"))

        port = free_port()
        with gunicorn(env, port, tmp_path / "web.log", workers=1):
            results = search(port, "money back")
            assert results[0]["title"] == "How do I get a refund?"
            assert results[0]["score"] > 0.3

            manage(
                "shell", "-c",
                "from faq.models import Faq; "
                "Faq.objects.get(question__startswith='How do I get').delete()",
            )  # fmt: skip
            ((rows,),) = db.sql("SELECT count(*) FROM embeddings_vector")
            assert rows == 6

            # Another model: the table's rows replaced in the switch's transaction,
            # and the web process encodes the query with the model they are of.
            manage("rebuild_index", "--reembed", "--model", another_model)
            assert db.sql(
                "SELECT DISTINCT model_name, next_vector IS NULL FROM embeddings_chunk"
            ) == [(another_model, True)]
            rows = db.sql(
                "SELECT c.vector, v.embedding::text FROM embeddings_vector v "
                "JOIN embeddings_chunk c ON c.id = v.chunk_id"
            )
            assert len(rows) == 6
            for stored, searched in rows:
                vector = np.frombuffer(bytes(stored), dtype=np.float32)
                np.testing.assert_allclose(vector, json.loads(searched), atol=1e-6)
            results = search(port, "I forgot my login")
            assert results[0]["title"] == "How do I reset my password?"
            assert results[0]["score"] > 0.3  # a query of the old model: near 0


def search(port: int, q: str) -> list[dict[str, object]]:
    query = urllib.parse.urlencode({"q": q, "mode": "dense"})
    url = f"http://127.0.0.1:{port}/api/search?{query}"
    with urllib.request.urlopen(url, timeout=60) as answer:
        return list(json.loads(answer.read())["results"])
