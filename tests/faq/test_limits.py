"""What an anonymous visitor may ask: per-client rates, a budget of model work and
of body bytes, bounded searches; more, with a key, as a job a worker runs."""

import pytest
from django.core.cache import cache
from django.test import Client
from ninja.testing import TestClient

from embeddings import selectors
from faq import jobs
from faq.models import AnalysisJob
from faq.services import api_key_create
from faq.throttles import client_ip, host_slot
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)
TEXTS = ["How do I reset my password?", "I forgot my password", "Opening hours?"]


@pytest.fixture
def fresh_cache():
    """Counts start at zero (the cache is shared by the whole run)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def key() -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key_create(name='k', permission='read')[1]}"}


def test_the_client_is_the_address_the_trusted_proxy_saw(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4, 10.0.0.2")
    request.META["REMOTE_ADDR"] = "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "10.0.0.2"  # the proxy's own entry
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "1.2.3.4"  # what a client writes first is ignored
    settings.TRUSTED_PROXY_COUNT = 5
    assert client_ip(request) == "6.6.6.6"


def test_searches_past_the_rate_get_429_with_retry_after_per_client(
    settings, fresh_cache, make_faq
):
    make_faq("How do I reset my password?", "Use the reset link.")
    # An hour's window: a minute's could end between the third and fourth request
    # and let the fourth through (django-ratelimit's windows are fixed).
    settings.RATE_SEARCH, settings.TRUSTED_PROXY_COUNT = "3/h", 1
    one = Client(headers={"X-Forwarded-For": "1.1.1.1"})  # behind one proxy
    answers = [one.get("/api/search", {"q": "password"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert (
        answers[3]
        .json()["detail"]
        .startswith("Too many requests from your address; try again in")
    )
    assert 1 <= int(answers[3]["Retry-After"]) <= 3600
    other = Client(headers={"X-Forwarded-For": "2.2.2.2"})
    assert other.get("/api/search", {"q": "password"}).status_code == 200
    # The search page counts against the same budget.
    page = one.get("/", {"q": "password"})
    assert page.status_code == 429
    assert "Too many searches from your address" in page.content.decode()


def test_posted_texts_over_the_anonymous_budget_point_to_the_jobs_api(settings):
    settings.PUBLIC_MAX_TOKENS = 12
    small = client.post("/similarity", json={"text": TEXTS[0], "texts": TEXTS[1:2]})
    assert small.status_code == 200, small.content
    large = client.post("/paraphrases", json={"texts": TEXTS * 3})
    assert large.status_code == 413
    detail = large.json()["detail"]
    assert "a request without an API key may ask for at most 12" in detail
    assert detail.endswith("POST /api/jobs/paraphrases.")


def test_a_body_over_the_anonymous_limit_is_refused_before_it_is_read(settings):
    settings.PUBLIC_MAX_BODY_BYTES = 100
    # Not even JSON: had it been parsed, the answer would be 400.
    answer = Client().post(
        "/api/clusters", data=b"x" * 101, content_type="application/json"
    )
    assert answer.status_code == 413
    assert "over 100 (PUBLIC_MAX_BODY_BYTES)" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("similarity", {"text": TEXTS[0], "texts": TEXTS[1:]}),
        ("paraphrases", {"texts": TEXTS, "threshold": 0.5}),
        ("clusters", {"texts": TEXTS * 2, "min_size": 1}),
    ],
)
def test_a_key_runs_a_large_request_as_a_job_with_the_same_answer(
    settings, key, committed, kind, body
):
    settings.PUBLIC_MAX_TOKENS = 5
    assert client.post(f"/{kind}", json=body).status_code == 413
    with committed():  # its task runs here (eager) once the job is committed
        created = client.post(f"/jobs/{kind}", json=body, headers=key)
    assert created.status_code == 202, created.content
    job = created.json()
    assert (job["status"], job["result"]) == ("queued", None)
    done = client.get(f"/jobs/{job['id']}", headers=key).json()
    assert (done["kind"], done["status"], done["progress"]) == (kind, "done", 1.0)
    settings.PUBLIC_MAX_TOKENS = 10_000
    assert done["result"] == client.post(f"/{kind}", json=body).json()


def test_jobs_are_checked_when_posted_and_private_to_their_key(settings, key):
    refused = client.post("/jobs/clusters", json={"texts": ["a", " "]}, headers=key)
    assert refused.status_code == 422
    settings.CLUSTER_MAX_TEXTS = 1  # a limit the schema cannot know: checked too
    refused = client.post("/jobs/clusters", json={"texts": ["a", "b"]}, headers=key)
    assert refused.status_code == 413
    assert refused.json() == {"detail": "At most 1 texts per request; got 2."}
    assert AnalysisJob.objects.count() == 0
    made = client.post("/jobs/similarity", json={"pairs": [TEXTS[:2]]}, headers=key)
    other = {
        "Authorization": f"Bearer {api_key_create(name='o', permission='read')[1]}"
    }
    answer = client.get(f"/jobs/{made.json()['id']}", headers=other)
    assert answer.status_code == 404
    assert client.post("/jobs/similarity", json={"pairs": []}).status_code == 401


def test_a_job_its_worker_died_on_too_often_fails_with_a_message(settings):
    settings.JOB_MAX_ATTEMPTS = 2
    job = AnalysisJob.objects.create(
        kind="clusters",
        params={"texts": TEXTS},
        api_key=api_key_create(name="k", permission="read")[0],
        status=AnalysisJob.Status.RUNNING,
        attempts=2,
    )
    jobs.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == (
        "failed",
        "The worker stopped while running it 2 times.",
    )


def test_a_filter_that_rejects_everything_costs_a_bounded_search(
    settings, make_faq, monkeypatch
):
    for n in range(30):
        make_faq(f"Question number {n} about passwords?", f"Answer {n}.")
    settings.SEARCH_CANDIDATES, settings.SEARCH_MAX_CANDIDATES = 4, 50
    asked: list[int] = []
    search_legs = selectors.chunks_search

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs["k"])
        return search_legs(*args, **kwargs)

    monkeypatch.setattr("faq.search.chunks_search", counted)
    answer = client.get("/search", query_params={"q": "password", "category": "none"})
    assert answer.status_code == 200 and answer.json()["results"] == []
    assert asked == [40, 50]  # 4 x k, then the cap: not all 60 chunks


def test_admin_sign_in_attempts_are_limited(settings, fresh_cache, admin_user):
    settings.RATE_LOGIN = "3/h"  # a window that cannot end mid-test
    browser = Client()
    codes = [
        browser.post(
            "/admin/login/", {"username": "admin", "password": "wrong"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]  # 200: the form again, with its error
    assert browser.get("/admin/login/").status_code == 200  # reading is free


def test_heavy_anonymous_requests_take_one_of_the_hosts_slots(settings, tmp_path):
    settings.VAR_DIR, settings.PUBLIC_ANALYSIS_SLOTS = tmp_path, 1
    with host_slot("analysis"):
        # Another web worker of this host, at the same time: refused at once.
        busy = client.post("/similarity", json={"text": TEXTS[0], "texts": TEXTS[1:]})
        assert busy.status_code == 429
        assert busy["Retry-After"] == "1"
    free = client.post("/similarity", json={"text": TEXTS[0], "texts": TEXTS[1:]})
    assert free.status_code == 200
