"""The API answers exactly as its OpenAPI documents say: schemathesis, with every
check, against both documents (``/api`` and ``/v1``), with a key and without, on a
gunicorn process of the site in production settings (DEBUG off)."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from faq.models import Collection, Document, Faq
from faq.services import api_key_create
from tests.processes import ROOT, database_url, free_port, gunicorn, site_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
]
CONFIG = Path(__file__).resolve().parent / "contract" / "schemathesis.toml"
EXAMPLES = "25"  # per operation and phase: minutes in all, not tens of them


def schemathesis(url: str, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG),
        "run", url, "--checks", "all", "--generation-deterministic",
        "--max-examples", EXAMPLES, "--no-color",
    ]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900
    )


def test_both_openapi_documents_hold_with_and_without_keys(
    tmp_path, index_dir, committed
):
    collection = Collection.objects.create(name="Help", slug="help")
    with committed():  # embedded here, eagerly, into the index the site reads
        Faq.objects.create(
            collection=collection,
            question="How do I reset my password?",
            answer="Use the reset link on the sign-in page.",
            external_id="kb-1",
        )
        Document.objects.create(
            collection=collection, title="Shipping", body="Parcels take 3 days."
        )
    writer = api_key_create(name="w", permission="write")[1]
    embedder = api_key_create(name="e", permission="embeddings")[1]
    port = free_port()
    env = site_env(
        DATABASE_URL=database_url(connection.settings_dict),
        INDEX_DIR=str(index_dir),
        VAR_DIR=str(tmp_path / "var"),
        RATE_SEARCH="",
        RATE_ANALYSIS="",
        EMBEDDINGS_API_RATE="",
    )
    site = f"http://127.0.0.1:{port}"
    runs = {
        "/api with a write key": (f"{site}/api/openapi.json", writer),
        "/api without a key": (f"{site}/api/openapi.json", ""),
        "/v1 with an embeddings key": (f"{site}/v1/openapi.json", embedder),
        "/v1 without a key": (f"{site}/v1/openapi.json", ""),
    }
    failed = {}
    with gunicorn(env, port, tmp_path / "site.log", workers=2):
        for name, (url, key) in runs.items():
            headers = [f"Authorization: Bearer {key}"] if key else []
            done = schemathesis(url, *headers)
            print(f"{name}:\n{done.stdout[-2500:]}")
            if done.returncode != 0:
                failed[name] = done.stdout[-6000:] + done.stderr[-2000:]
    assert not failed, "\n\n".join(f"== {k}\n{v}" for k, v in failed.items())
