"""/v1 through the official ``openai`` client, over real HTTP to a running site."""

import base64
from collections.abc import Callable, Iterator

import numpy as np
import openai
import pytest

from embeddings.encoders import SentenceTransformerEncoder, get_encoder
from faq.models import ApiKey
from faq.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "How do I reset my password?",
    "Export all my emails to a file",
    "Strikethrough text in a GitHub comment",
]


@pytest.fixture
def secret() -> str:
    return api_key_create(name="embedder", permission="embeddings")[1]


@pytest.fixture
def connect(live_server) -> Iterator[Callable[[str], openai.OpenAI]]:  # type: ignore[no-untyped-def]
    """A client per key, closed after the test: an open keep-alive connection
    keeps its server thread, and that thread's database connection, alive."""
    clients: list[openai.OpenAI] = []

    def make(key: str) -> openai.OpenAI:
        # The client retries 408/409/429/5xx by default: tests want the first answer.
        url = f"{live_server.url}/v1"
        clients.append(openai.OpenAI(base_url=url, api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


@pytest.fixture
def client(connect, secret):  # type: ignore[no-untyped-def]
    return connect(secret)


def vectors(response) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([item.embedding for item in response.data], dtype=np.float32)


def tokens(texts: list[str]) -> int:
    window = get_encoder().content_tokens
    return sum(min(len(ids), window) for ids in get_encoder().token_ids(texts))


def error_of(raised) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return raised.value.body


# --- embeddings ---------------------------------------------------------------------


def test_it_embeds_a_string_as_the_local_encoder_does(client):
    response = client.embeddings.create(
        input=TEXTS[0], model=MODEL, encoding_format="float"
    )
    assert response.object == "list"
    assert response.model == MODEL
    assert [(d.object, d.index) for d in response.data] == [("embedding", 0)]
    assert response.usage.prompt_tokens == response.usage.total_tokens == 7
    assert tokens(TEXTS[:1]) == 7
    np.testing.assert_allclose(
        vectors(response), get_encoder().encode(TEXTS[:1]), atol=1e-5
    )


def test_it_embeds_a_list_of_strings_in_order(client):
    response = client.embeddings.create(input=TEXTS, model=MODEL)
    assert [d.index for d in response.data] == [0, 1, 2]
    assert response.usage.prompt_tokens == tokens(TEXTS)
    np.testing.assert_allclose(
        vectors(response), get_encoder().encode(TEXTS), atol=1e-5
    )


def test_it_embeds_token_ids_of_the_models_tokenizer(client):
    ids = get_encoder().token_ids(TEXTS)
    one = client.embeddings.create(input=ids[0], model=MODEL)
    many = client.embeddings.create(input=ids, model=MODEL)
    expected = get_encoder().encode(TEXTS)
    # Alone, as the int8 backend's activation scales depend on the batch.
    np.testing.assert_allclose(vectors(one), get_encoder().encode(TEXTS[:1]), atol=1e-5)
    np.testing.assert_allclose(vectors(many), expected, atol=1e-5)
    assert many.usage.prompt_tokens == sum(len(row) for row in ids)


def test_base64_is_little_endian_float32_as_openai_sends_it(client):
    floats = client.embeddings.create(input=TEXTS, model=MODEL, encoding_format="float")
    raw = client.embeddings.create(input=TEXTS, model=MODEL, encoding_format="base64")
    decoded = np.array(
        [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data]
    )
    assert decoded.shape == (3, 384)
    np.testing.assert_array_equal(decoded, vectors(floats))
    # Without encoding_format the client asks for base64 and decodes it itself.
    default = client.embeddings.create(input=TEXTS, model=MODEL)
    np.testing.assert_array_equal(vectors(default), decoded)


def test_it_embeds_a_batch_of_100_inputs(client):
    texts = [f"question number {i}: where is setting {i * 7}?" for i in range(100)]
    response = client.embeddings.create(input=texts, model=MODEL)
    assert [d.index for d in response.data] == list(range(100))
    assert response.usage.prompt_tokens == tokens(texts)
    np.testing.assert_allclose(
        vectors(response), get_encoder().encode(texts), atol=1e-5
    )


def test_it_accepts_the_sentence_transformers_name_and_native_dimensions(client):
    response = client.embeddings.create(
        input=TEXTS[0], model=f"sentence-transformers/{MODEL}", dimensions=384
    )
    assert response.model == MODEL
    assert len(response.data[0].embedding) == 384


def test_a_long_input_is_truncated_and_the_headers_say_so(client):
    long = "the quick brown fox jumps over the lazy dog " * 60  # 540 word pieces
    raw = client.embeddings.with_raw_response.create(
        input=[long, TEXTS[0]], model=MODEL
    )
    response = raw.parse()
    assert raw.headers["X-Truncated-Inputs"] == "1"
    assert raw.headers["X-Max-Input-Tokens"] == "254"
    assert response.usage.prompt_tokens == 254 + 7
    np.testing.assert_allclose(
        vectors(response), get_encoder().encode([long, TEXTS[0]]), atol=1e-5
    )


def test_a_long_input_is_refused_when_truncation_is_off(client):
    long = "the quick brown fox jumps over the lazy dog " * 60
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.embeddings.create(
            input=[TEXTS[0], long], model=MODEL, extra_body={"truncate": False}
        )
    assert raised.value.status_code == 422
    assert error_of(raised) == {
        "message": "input[1] has 540 tokens and this model reads at most 254: "
        "shorten it, or allow truncation.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }


# --- usage --------------------------------------------------------------------------


def test_usage_is_counted_on_the_key_and_shown_in_the_admin(client, admin_client):
    client.embeddings.create(input=TEXTS, model=MODEL)
    client.embeddings.create(input=TEXTS[0], model=MODEL)
    key = ApiKey.objects.get(name="embedder")
    assert (key.requests_count, key.tokens_used) == (2, tokens(TEXTS) + 7)
    assert key.last_used_at is not None
    page = admin_client.get("/admin/faq/apikey/").content.decode()
    assert "Requests" in page and "Tokens used" in page
    assert '<td class="field-requests_count">2</td>' in page
    assert f'<td class="field-tokens_used">{key.tokens_used}</td>' in page


def test_a_refused_request_is_not_counted(client):
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(input="", model=MODEL)
    key = ApiKey.objects.get(name="embedder")
    assert (key.requests_count, key.tokens_used) == (0, 0)


# --- models -------------------------------------------------------------------------


def test_it_lists_and_retrieves_the_served_models(client):
    models = client.models.list()
    assert [(m.id, m.object, m.owned_by) for m in models.data] == [
        (MODEL, "model", "sentence-transformers")
    ]
    assert client.models.retrieve(f"sentence-transformers/{MODEL}").id == MODEL
    assert client.models.retrieve("sentence-transformers/all-minilm-l6-v2").id == MODEL
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("text-embedding-3-small")
    assert error_of(raised)["code"] == "model_not_found"


def test_it_serves_another_sentence_transformers_model_under_its_own_name(
    client, settings
):
    path = get_encoder().path  # type: ignore[attr-defined]
    settings.EMBEDDINGS_API_MODELS = [f"minilm-copy={path}"]
    assert [m.id for m in client.models.list().data] == [MODEL, "minilm-copy"]
    response = client.embeddings.create(input=TEXTS, model="minilm-copy")
    assert response.model == "minilm-copy"
    expected = SentenceTransformerEncoder(path).encode(TEXTS)
    np.testing.assert_allclose(vectors(response), expected, atol=1e-5)


# --- errors -------------------------------------------------------------------------


def test_it_refuses_a_request_without_a_key(client):
    with pytest.raises(openai.AuthenticationError) as raised:
        client.embeddings.create(
            input="x", model=MODEL, extra_headers={"Authorization": openai.Omit()}
        )
    assert raised.value.status_code == 401
    assert error_of(raised)["code"] == "missing_api_key"
    assert error_of(raised)["type"] == "invalid_request_error"


def test_it_refuses_an_unknown_or_revoked_key(connect, secret):
    with pytest.raises(openai.AuthenticationError) as raised:
        connect("sk-not-a-key").embeddings.create(input="x", model=MODEL)
    assert error_of(raised)["code"] == "invalid_api_key"
    ApiKey.objects.update(revoked=True)
    with pytest.raises(openai.AuthenticationError) as raised:
        connect(secret).embeddings.create(input="x", model=MODEL)
    assert error_of(raised)["code"] == "invalid_api_key"


def test_it_refuses_a_content_key(connect):
    for permission in ("read", "write"):
        key = api_key_create(name=permission, permission=permission)[1]
        with pytest.raises(openai.PermissionDeniedError) as raised:
            connect(key).embeddings.create(input="x", model=MODEL)
        assert error_of(raised) == {
            "message": f"This API key has the {permission} permission; /v1 needs a "
            "key with the embeddings permission.",
            "type": "invalid_request_error",
            "param": None,
            "code": "insufficient_permissions",
        }


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.embeddings.create(input="x", model="text-embedding-3-small")
    assert error_of(raised) == {
        "message": "The model 'text-embedding-3-small' does not exist; GET /v1/models "
        "lists the models served here.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_other_dimensions_are_refused(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(input="x", model=MODEL, dimensions=128)
    assert error_of(raised) == {
        "message": "all-MiniLM-L6-v2 makes 384-dimensional embeddings and cannot "
        "shorten them; omit dimensions or send 384.",
        "type": "invalid_request_error",
        "param": "dimensions",
        "code": None,
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "input[0] is an empty string"),
        ([], "input must be a non-empty string or array"),
        (["a", ""], "input[1] is an empty string"),
        ([[1996], []], "input[1] is an empty array of tokens"),
        (
            ["a", 1996],
            "input must be a string, an array of strings, an array of "
            "token ids (integers) or an array of such arrays, not a mix",
        ),
        (
            [1996, 30522],
            "input[0] has token id 30522; this model's tokenizer has ids 0 to 30521",
        ),
        (
            [[1996], [-1]],
            "input[1] has token id -1; this model's tokenizer has ids 0 to 30521",
        ),
    ],
)
def test_invalid_input_is_refused_as_openai_does(client, value, reason):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(input=value, model=MODEL)
    assert error_of(raised) == {
        "message": f"'$.input' is invalid: {reason}.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }


def test_an_invalid_encoding_format_is_refused(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(input="x", model=MODEL, encoding_format="hex")  # type: ignore[arg-type]
    assert error_of(raised)["param"] == "encoding_format"


def test_requests_over_the_limits_are_too_large(client, settings):
    settings.EMBEDDINGS_API_MAX_INPUTS = 2
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(input=TEXTS, model=MODEL)
    assert raised.value.status_code == 413
    assert error_of(raised) == {
        "message": "3 inputs in one request; the limit is 2.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "request_too_large",
    }
    settings.EMBEDDINGS_API_MAX_INPUTS, settings.EMBEDDINGS_API_MAX_TOKENS = 2048, 10
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(input=TEXTS, model=MODEL)
    assert raised.value.status_code == 413
    assert "the limit is 10 per request" in error_of(raised)["message"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(input="word " * 300, model=MODEL)
    assert raised.value.status_code == 413


def test_a_key_over_its_rate_is_told_when_to_retry(client, settings):
    # Per day, so that no window ends while the test runs.
    settings.EMBEDDINGS_API_RATE = "2/d"
    for _ in range(2):
        client.embeddings.create(input="x", model=MODEL)
    with pytest.raises(openai.RateLimitError) as raised:
        client.embeddings.create(input="x", model=MODEL)
    assert raised.value.status_code == 429
    assert 1 <= int(raised.value.response.headers["Retry-After"]) <= 86400
    wait = raised.value.response.headers["Retry-After"]
    assert error_of(raised) == {
        "message": "Rate limit reached for this API key: 2/d requests "
        f"(EMBEDDINGS_API_RATE). Try again in {wait}s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert ApiKey.objects.get(name="embedder").requests_count == 2


def test_a_malformed_body_gets_the_openai_envelope(client, secret):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    from django.test import Client

    browser = Client()
    bad_json = browser.post(
        "/v1/embeddings", "{not json", content_type="application/json", **auth
    )
    no_model = browser.post(
        "/v1/embeddings", {"input": "x"}, content_type="application/json", **auth
    )
    unknown = browser.get("/v1/engines", **auth)
    assert (bad_json.status_code, no_model.status_code, unknown.status_code) == (
        400,
        400,
        404,
    )
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert no_model.json()["error"]["param"] == "model"
    assert unknown.json()["error"]["message"] == "Invalid URL (GET /v1/engines)"
