"""The queue path with a real `celery worker` process on the configured broker
(Redis when REDIS_URL is set, else the filesystem transport) and database."""

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from ninja.testing import TestClient

from embeddings.models import Chunk
from faq.models import Collection
from faq.services import api_key_create
from searchsite.api import api
from searchsite.celery import app as celery_app
from tests.processes import celery_worker, database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
client = TestClient(api)


@contextmanager
def worker(name: str, index_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "INDEX_DIR": str(index_dir),
    }
    with celery_worker(env, log, name=name) as process:
        yield process


def wait_until_found(question: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = client.get("/search", query_params={"q": question, "k": 3}).json()[
            "results"
        ]
        if question in [r["title"] for r in results]:
            return
        time.sleep(0.5)
    pytest.fail(
        f"{question!r} never became searchable; worker log:\n{log.read_text()[-3000:]}"
    )


def test_content_posted_to_the_api_is_embedded_by_a_real_worker_and_reconcile_heals(
    tmp_path, index_dir
):
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    Collection.objects.create(name="Help", slug="help")
    key = api_key_create(name="sync", permission="write")[1]
    headers = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "worker.log"

    with worker("first", index_dir, log):
        posted = client.post(
            "/collections/help/faqs",
            json={
                "question": "How do I reset my password?",
                "answer": "Use the reset link.",
            },
            headers=headers,
        )
        assert posted.status_code == 201
        wait_until_found("How do I reset my password?", log)

    # The worker is gone and the message for this one is lost (a broker restart, say).
    client.post(
        "/collections/help/faqs",
        json={"question": "Where are my invoices?", "answer": "Under Billing."},
        headers=headers,
    )
    celery_app.control.purge()
    assert set(
        Chunk.objects.filter(field="question", text__startswith="Where").values_list(
            "status", flat=True
        )
    ) == {"pending"}
    call_command("reconcile")
    with worker("second", index_dir, log):
        wait_until_found("Where are my invoices?", log)
    assert set(Chunk.objects.values_list("status", flat=True)) == {"embedded"}
