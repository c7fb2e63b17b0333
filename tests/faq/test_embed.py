"""Cross-origin reads for the embeddable search box: search and suggest only, GET
only, no cookies, for the origins in EMBED_ORIGINS, within the public rates."""

import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.com"
ALLOW = "Access-Control-Allow-Origin"
SHOW_ORIGINS = "from searchsite import settings; print(settings.CORS_ALLOWED_ORIGINS)"


@pytest.fixture(autouse=True)
def embedded(settings, make_faq):
    settings.CORS_ALLOWED_ORIGINS = [SHOP]
    make_faq("How do I reset my password?", "Use the reset link.")


def test_it_lets_an_allowed_origin_read_search_and_suggest():
    browser = Client(headers={"Origin": SHOP})
    found = browser.get("/api/search", {"q": "forgot my password"})
    assert found.status_code == 200
    assert found.json()["results"][0]["title"] == "How do I reset my password?"
    assert found[ALLOW] == SHOP
    assert "Access-Control-Allow-Credentials" not in found
    assert "origin" in found["Vary"].lower()  # caches keep one answer per origin
    suggested = browser.get("/api/suggest", {"q": "reset"})
    assert suggested.status_code == 200 and suggested[ALLOW] == SHOP


def test_it_answers_a_preflight_for_get_only_and_no_api_key():
    preflight = Client().options(
        "/api/search",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight[ALLOW] == SHOP
    assert preflight["Access-Control-Allow-Methods"] == "GET"
    assert preflight["Access-Control-Allow-Headers"] == ""  # no Authorization


def test_it_lets_no_other_origin_read():
    found = Client(headers={"Origin": "https://elsewhere.example"}).get(
        "/api/search", {"q": "password"}
    )
    assert found.status_code == 200 and ALLOW not in found


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/collections"),
        ("get", "/api/health"),
        ("get", "/api/openapi.json"),
        ("get", "/"),
        ("post", "/api/similarity"),
        ("post", "/api/collections"),
        ("post", "/v1/embeddings"),
        ("options", "/api/collections"),
        ("options", "/v1/embeddings"),
    ],
)
def test_no_other_endpoint_is_readable_from_another_origin(method, path):
    browser = Client(headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"})
    answer = getattr(browser, method)(path, content_type="application/json")
    assert ALLOW not in answer


def test_searches_from_another_site_count_against_the_visitors_address(settings):
    settings.RATE_SEARCH = "2/h"
    cache.clear()
    try:
        there = Client(headers={"Origin": SHOP}, REMOTE_ADDR="7.7.7.7")
        here = Client(REMOTE_ADDR="7.7.7.7")
        other = Client(headers={"Origin": SHOP}, REMOTE_ADDR="8.8.8.8")
        assert here.get("/api/search", {"q": "password"}).status_code == 200
        assert there.get("/api/search", {"q": "password"}).status_code == 200
        refused = there.get("/api/search", {"q": "password"})
        assert refused.status_code == 429
        # Readable there, with how long to wait: the box says so.
        assert refused[ALLOW] == SHOP
        assert "Retry-After" in refused["Access-Control-Expose-Headers"]
        assert other.get("/api/search", {"q": "password"}).status_code == 200
    finally:
        cache.clear()


@pytest.mark.parametrize(
    ("value", "origins"),
    [("", []), (f"{SHOP}, http://localhost:3000", [SHOP, "http://localhost:3000"])],
)
def test_the_origins_come_from_embed_origins(value, origins):
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_ORIGINS],
        env={**os.environ, "EMBED_ORIGINS": value},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == repr(origins)
