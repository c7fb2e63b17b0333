"""The remote encoder against a real OpenAI-shaped HTTP server in a thread.

The server answers with the real local model's vectors (scaled, as a provider
that does not normalise would), and can be told to answer errors first, to
shrink its vectors (another model), or be stopped.
"""

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from ninja.testing import TestClient

from embeddings import encoders, services
from embeddings.encoders import Encoder, EncoderUnavailable, get_encoder
from embeddings.models import Chunk
from embeddings.provenance import ModelMismatch
from embeddings.remote import RemoteEncoder, remote_batches
from faq.models import Collection, Faq
from searchsite.api import api
from tests.encoding import encoder_use

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "How do I reset my password?",
    "Export all my emails to a file",
    "Strikethrough text in a GitHub comment",
    "Where are my invoices?",
    "Change the language of the interface",
]


class Provider(ThreadingHTTPServer):
    """``POST /v1/embeddings`` in OpenAI's shape, from a local encoder."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.encoder = encoder
        self.failures: list[int] = []  # statuses to answer, one per request, first
        self.dimension = 0  # > 0: cut vectors to this size (another model's)
        self.bodies: list[dict[str, Any]] = []  # every request received

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.bodies.append(body)
        if self.failures:
            status = self.failures.pop(0)
            return status, {"error": {"message": f"try later ({status})"}}
        inputs = body["input"]
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        if isinstance(inputs[0], str):
            matrix = self.encoder.encode(inputs)
        else:
            matrix = self.encoder.encode_ids(inputs)
        if self.dimension:
            matrix = matrix[:, : self.dimension]
        data = [
            {"object": "embedding", "index": i, "embedding": (3 * row).tolist()}
            for i, row in enumerate(matrix)
        ]
        data.reverse()  # order by "index", not by position
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return 200, {"object": "list", "data": data, "model": body["model"], **usage}


class _Handler(BaseHTTPRequestHandler):
    server: Provider

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, answer = self.server.answer(body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Retry-After-Ms", "10")  # keeps the client's backoff short
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local() -> Encoder:
    encoder = encoders.make_encoder("torch")
    encoder.encode(["load the model now, not inside a request the client times"])
    return encoder


@pytest.fixture
def provider(local: Encoder) -> Iterator[Provider]:
    server = Provider(local)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def remote_settings(settings, provider):  # type: ignore[no-untyped-def]
    settings.EMBEDDINGS_BACKEND = "openai"
    settings.EMBEDDINGS_REMOTE_URL = provider.url
    settings.EMBEDDINGS_REMOTE_KEY = "sk-test"
    settings.EMBEDDINGS_REMOTE_MODEL = MODEL
    settings.EMBEDDINGS_REMOTE_DIMENSION = 0
    settings.EMBEDDINGS_REMOTE_RETRIES = 2
    settings.EMBEDDINGS_REMOTE_COOLDOWN = 30.0
    settings.EMBEDDINGS_FALLBACK = ""
    return settings


@pytest.fixture(autouse=True)
def restore_encoder() -> Iterator[None]:
    before = get_encoder()
    yield
    encoder_use(before)


# --- embedding through the provider ---------------------------------------------------


def test_it_embeds_as_the_local_model_does_with_unit_vectors(
    remote_settings, provider, local
):
    remote = RemoteEncoder()
    vectors = remote.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (5, 384)
    np.testing.assert_allclose(vectors, local.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert provider.bodies == [
        {
            "model": MODEL,
            "input": TEXTS,
            "encoding_format": "float",
        }
    ]
    assert (remote.name, remote.dimension, remote.max_tokens) == (MODEL, 384, 256)


def test_it_passes_the_encoder_contract(remote_settings, local):
    """The points of the local backends' contract (tests/embeddings/test_encoders.py)
    that a remote backend can meet."""
    remote = RemoteEncoder()
    assert (remote.encode([]).shape, remote.encode_ids([]).shape) == ((0, 384),) * 2
    assert remote.encode([]).dtype == np.float32
    assert remote.token_ids(TEXTS) == local.token_ids(TEXTS)
    assert remote.token_spans(TEXTS[0]) == local.token_spans(TEXTS[0])
    assert (remote.max_tokens, remote.content_tokens) == (256, 254)
    # Token ids go as OpenAI's token arrays; the provider here shares the tokenizer.
    by_ids = remote.encode_ids(remote.token_ids(TEXTS))
    np.testing.assert_allclose(by_ids, remote.encode(TEXTS), atol=1e-5)
    # A long input: ids are cut to the window here, text by the provider's model.
    long = " ".join(f"word{i}" for i in range(2000))
    ids = remote.token_ids([long])[0]
    read = local.encode_ids([ids[:254]])
    np.testing.assert_allclose(remote.encode_ids([ids]), read, atol=1e-5)
    np.testing.assert_allclose(remote.encode([long]), read, atol=1e-5)


def test_it_learns_the_dimension_from_the_first_answer(remote_settings, provider):
    remote = RemoteEncoder()
    assert provider.bodies == []
    assert remote.dimension == 384
    assert len(provider.bodies) == 1


def test_it_batches_by_the_providers_limits(settings, remote_settings, provider):
    settings.EMBEDDINGS_REMOTE_BATCH = 2
    RemoteEncoder().encode(TEXTS)
    assert [body["input"] for body in provider.bodies] == [
        TEXTS[0:2],
        TEXTS[2:4],
        TEXTS[4:5],
    ]


def test_batches_hold_at_most_the_inputs_and_about_the_tokens_allowed():
    batches = remote_batches([5, 5, 5, 40, 5, 5, 5], size=3, tokens=20)
    assert [list(b) for b in batches] == [[0, 1], [2], [3], [4, 5], [6]]
    assert [list(b) for b in remote_batches([1] * 7, size=3, tokens=1000)] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    assert list(remote_batches([], size=3, tokens=10)) == []


# --- retries, fallback, and the circuit breaker ---------------------------------------


def test_it_retries_429_and_503_then_succeeds(remote_settings, provider, local):
    provider.failures = [429, 503]
    vectors = RemoteEncoder().encode(TEXTS[:2])
    np.testing.assert_allclose(vectors, local.encode(TEXTS[:2]), atol=1e-5)
    assert len(provider.bodies) == 3
    assert provider.failures == []


def test_it_falls_back_to_the_same_local_model_and_then_skips_the_provider(
    settings, remote_settings, provider, local, caplog
):
    settings.EMBEDDINGS_FALLBACK = "torch"
    provider.failures = [503] * 10
    remote = RemoteEncoder()
    with caplog.at_level(logging.WARNING, logger="embeddings.remote"):
        first = remote.encode(TEXTS[:2])
        second = remote.encode(TEXTS[2:])
    np.testing.assert_allclose(first, local.encode(TEXTS[:2]), atol=1e-5)
    np.testing.assert_allclose(second, local.encode(TEXTS[2:]), atol=1e-5)
    # Three attempts (two retries) for the first batch; the second skips the
    # provider while it cools down instead of waiting out the retries again.
    assert len(provider.bodies) == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"embedding provider {provider.url} failed after 3 attempts (HTTP 503: "
        "try later (503)); embedding 2 inputs with the local torch fallback "
        f"({MODEL})",
        f"embedding provider {provider.url} is skipped (it failed less than 30 s "
        f"ago); embedding 3 inputs with the local torch fallback ({MODEL})",
    ]


def test_a_provider_that_is_down_is_retried_then_left_to_the_fallback(
    settings, remote_settings, provider, local, caplog
):
    settings.EMBEDDINGS_FALLBACK = "torch"
    settings.EMBEDDINGS_REMOTE_RETRIES = 1
    remote = RemoteEncoder()
    provider.shutdown()
    provider.server_close()
    with caplog.at_level(logging.INFO):
        vectors = remote.encode(TEXTS[:1])
    np.testing.assert_allclose(vectors, local.encode(TEXTS[:1]), atol=1e-5)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Retrying request" in m for m in messages) == 1
    assert (
        f"embedding provider {provider.url} failed after 2 attempts "
        "(APIConnectionError: Connection error.); embedding 1 inputs with the local "
        f"torch fallback ({MODEL})"
    ) in messages


def test_a_fallback_of_another_model_is_never_used(settings, remote_settings, provider):
    settings.EMBEDDINGS_FALLBACK = "torch"
    settings.EMBEDDINGS_REMOTE_MODEL = "text-embedding-3-small"
    provider.failures = [503] * 3
    with pytest.raises(EncoderUnavailable) as raised:
        RemoteEncoder().encode(TEXTS[:1])
    assert str(raised.value) == (
        f"embedding provider {provider.url} failed after 3 attempts (HTTP 503: try "
        "later (503)); the fallback 'torch' is not used: it is another model than "
        "text-embedding-3-small"
    )


def test_it_refuses_settings_it_cannot_work_with(settings, remote_settings):
    settings.EMBEDDINGS_FALLBACK = "openai"
    with pytest.raises(ImproperlyConfigured, match="EMBEDDINGS_FALLBACK='openai'"):
        RemoteEncoder()
    settings.EMBEDDINGS_REMOTE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="needs EMBEDDINGS_REMOTE_URL"):
        RemoteEncoder()


# --- chunks are never lost ------------------------------------------------------------


def add_faq(collection: Collection, question: str, answer: str) -> list[int]:
    """Save a FAQ without queueing tasks; return its chunk ids."""
    with services.tasks_held():
        faq = Faq.objects.create(
            collection=collection, question=question, answer=answer
        )
    return list(
        Chunk.objects.filter(source_id=faq.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_without_a_fallback_chunks_wait_for_the_provider(
    settings, remote_settings, provider, collection, local
):
    encoder_use(RemoteEncoder())
    ids = add_faq(collection, "Where are my invoices?", "Under Billing.")
    provider.failures = [503] * 3
    with pytest.raises(EncoderUnavailable):
        services.chunks_index(ids)
    # The provider's outage is not the chunks' fault: no attempt is spent on it.
    assert (
        list(Chunk.objects.values_list("status", "attempts", "last_error"))
        == [
            (
                "pending",
                0,
                f"EncoderUnavailable: embedding provider {provider.url} failed after 3 "
                "attempts (HTTP 503: try later (503))",
            )
        ]
        * 2
    )
    settings.EMBEDDINGS_REMOTE_COOLDOWN = 0  # the provider is tried again at once
    services.chunks_index(ids)
    assert set(Chunk.objects.values_list("status", "model_name")) == {
        ("embedded", MODEL)
    }
    collection.refresh_from_db()
    assert (collection.embedding_model, collection.embedding_dimension) == (MODEL, 384)


# --- provenance: one model per collection ---------------------------------------------


@pytest.mark.django_db
def test_a_collection_refuses_another_models_vectors_until_re_embedded(
    settings, remote_settings, provider, collection, client
):
    first = add_faq(collection, "How do I reset my password?", "Use the reset link.")
    services.chunks_index(first)  # the local model
    collection.refresh_from_db()
    assert (collection.embedding_model, collection.embedding_dimension) == (MODEL, 384)

    # The site moves to a provider's smaller model.
    settings.EMBEDDINGS_REMOTE_MODEL = "small-model"
    provider.dimension = 128
    encoder_use(RemoteEncoder())
    second = add_faq(collection, "Where are my invoices?", "Under Billing.")
    with pytest.raises(ModelMismatch) as raised:
        services.chunks_index(second)
    fix = f"manage.py rebuild_index --reembed --partition {collection.partition}"
    assert str(raised.value) == (
        f"{collection.partition} holds vectors of {MODEL} (384 dimensions), which "
        "this process does not load (it embeds with small-model, 128 dimensions), "
        "and vectors of two models cannot be compared. Name all-MiniLM-L6-v2 in "
        f"EMBEDDINGS_MODELS to go on with it, or re-embed the partition: {fix}"
    )
    assert set(Chunk.objects.filter(pk__in=second).values_list("status")) == {
        ("pending",)
    }
    with pytest.raises(ModelMismatch):
        services.index_sync(collection.partition)

    answer = TestClient(api).get("/search", query_params={"q": "invoices"})
    assert answer.status_code == 409
    assert answer.json() == {
        "detail": f"The collection 'help' was embedded with {MODEL}, which this site "
        "does not load (it embeds with small-model), so it cannot be searched: name "
        f"{MODEL} in EMBEDDINGS_MODELS, or re-embed it: {fix}",
        "collection": "help",
        "embedding_model": MODEL,
    }
    page = client.get("/", {"q": "invoices"})
    assert page.status_code == 409
    assert "so it cannot be searched" in page.content.decode()

    call_command("rebuild_index", "--reembed", "--partition", collection.partition)
    collection.refresh_from_db()
    assert (collection.embedding_model, collection.embedding_dimension) == (
        "small-model",
        128,
    )
    assert set(Chunk.objects.values_list("status", "model_name")) == {
        ("embedded", "small-model")
    }
    results = TestClient(api).get("/search", query_params={"q": "invoices"}).json()
    assert [r["title"] for r in results["results"]][:1] == ["Where are my invoices?"]


@pytest.mark.django_db
def test_rebuilding_with_another_model_without_re_embedding_is_refused(
    settings, remote_settings, provider, collection
):
    services.chunks_index(add_faq(collection, "Where are my invoices?", "In Billing."))
    settings.EMBEDDINGS_REMOTE_MODEL = "small-model"
    provider.dimension = 128
    encoder_use(RemoteEncoder())
    with pytest.raises(CommandError, match="holds vectors of all-MiniLM-L6-v2"):
        call_command("rebuild_index")
    with pytest.raises(CommandError, match="There is no partition 'nope'"):
        call_command("rebuild_index", "--partition", "nope")


@pytest.mark.django_db
def test_search_while_the_provider_is_down_is_a_503(
    settings, remote_settings, provider, collection
):
    services.chunks_index(add_faq(collection, "Where are my invoices?", "In Billing."))
    encoder_use(RemoteEncoder())
    provider.failures = [503] * 3
    answer = TestClient(api).get("/search", query_params={"q": "my bills"})
    assert answer.status_code == 503
    assert answer.json() == {
        "detail": "Search cannot embed the question right now (the embedding "
        "provider is unavailable); try again in a minute."
    }


@pytest.mark.django_db
def test_health_reports_a_provider_that_is_away(remote_settings, provider):
    encoder_use(RemoteEncoder())  # no fallback, no configured dimension: it must ask
    provider.failures = [503] * 3
    answer = TestClient(api).get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["dimension"], body["model"]) == (
        "unavailable",
        0,
        MODEL,
    )
    assert body["reasons"] == [
        "the embedding provider does not answer: no query can be embedded"
    ]
    assert provider.url not in answer.content.decode()  # no error text for callers
