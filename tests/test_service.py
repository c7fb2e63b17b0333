"""The site as a service: production settings, readiness, metrics, the search log
that never holds a search up."""

import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client, override_settings
from django.utils import timezone

from embeddings import services
from embeddings.models import Chunk
from faq import searchlog
from faq.models import SearchLog

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_the_deployment_checks_pass_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "a-production-like-key-" + "x" * 40,
        "ALLOWED_HOSTS": "help.example.com",
    }
    env.pop("SECURE_SSL_REDIRECT", None)  # the production default, not the tests'
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_is_sent_to_https_but_health_checks_are_answered():
    browser = Client()
    answer = browser.get("/?q=x")
    assert (answer.status_code, answer["Location"]) == (301, "https://testserver/?q=x")
    assert browser.get("/api/health/live").status_code == 200
    # Behind the TLS proxy, which says so in X-Forwarded-Proto.
    proxied = browser.get("/api/health/live", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=31536000" in proxied["Strict-Transport-Security"]


def test_pages_carry_a_policy_that_allows_this_site_only():
    answer = Client().get("/")
    policy = answer["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["X-Content-Type-Options"] == "nosniff"
    html = answer.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", html)  # none inline


def test_the_api_docs_load_swagger_from_this_site():
    html = Client().get("/api/docs").content.decode()
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert scripts and all(url.startswith("/static/") for url in scripts), scripts


# --- readiness --------------------------------------------------------------------


def test_liveness_touches_nothing_and_readiness_names_a_stalled_worker(make_faq):
    browser = Client()
    with services.tasks_held():
        make_faq("Where are my invoices?", "Under Billing.")  # queued: never embedded
    assert browser.get("/api/health/ready").status_code == 200  # waiting briefly
    Chunk.objects.update(created_at=timezone.now() - timedelta(hours=1))
    ready = browser.get("/api/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["worker"]) == ("unavailable", "stalled")
    assert body["reasons"] == [
        "chunks have waited 60 minutes to be embedded and no worker has embedded "
        "any in the last 15: is a Celery worker running, and does it reach the "
        "broker?"
    ]
    assert browser.get("/api/health/live").json() == {"status": "alive"}


def test_readiness_reads_no_whole_table(django_assert_max_num_queries, make_faq):
    make_faq("Where are my invoices?", "Under Billing.")
    from searchsite.health import health_report

    with connection.execute_wrapper(_no_count), django_assert_max_num_queries(3):
        assert health_report()["status"] == "ok"


def _no_count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
    assert "COUNT(" not in sql.upper(), sql
    return execute(sql, params, many, context)


# --- metrics ----------------------------------------------------------------------


def test_metrics_count_requests_chunks_and_the_index(make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    browser = Client()
    browser.get("/api/search", {"q": "password"})
    text = browser.get("/metrics").content.decode()
    partition = Chunk.objects.first().partition
    for line in (
        f'searchsite_chunks{{partition="{partition}",state="embedded"}} 2.0',
        f'searchsite_index_vectors{{partition="{partition}"}} 2.0',
        f'searchsite_index_lag_chunks{{partition="{partition}"}} 0.0',
        f'searchsite_index_damaged{{partition="{partition}"}} 0.0',
        'searchsite_uploads{state="parsing"} 0.0',
        "searchsite_ready 1.0",
    ):
        assert line in text, line
    assert re.search(r'searchsite_searches_total\{mode="hybrid"\} [1-9]', text)
    assert re.search(
        r'searchsite_http_request_duration_seconds_count\{method="GET",'
        r'route="api/search"\} [1-9]',
        text,
    )


def test_metrics_need_the_token_or_a_scrape_from_this_machine(settings):
    browser = Client()
    assert browser.get("/metrics").status_code == 200  # 127.0.0.1, no proxy
    assert (
        browser.get("/metrics", headers={"X-Forwarded-For": "1.2.3.4"}).status_code
        == 403
    )
    settings.METRICS_TOKEN = "s3cret"
    assert browser.get("/metrics").status_code == 403
    scrape = browser.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert scrape.status_code == 200


# --- the search log ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_search_does_not_wait_for_the_search_log(settings, make_faq):
    """Another connection holds the log's table locked (on SQLite, the database's
    one write lock, as a worker storing vectors does): the page answers all the
    same, and the entry is written once the lock is released."""
    make_faq("How do I reset my password?", "Use the reset link.")
    settings.SEARCH_LOG_BACKGROUND = True
    locker = connections.create_connection("default")
    with locker.cursor() as cursor:
        if locker.vendor == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("BEGIN")
            cursor.execute(f"LOCK TABLE {SearchLog._meta.db_table} IN EXCLUSIVE MODE")
        answered = threading.Event()
        thread = threading.Thread(
            target=lambda: Client().get("/", {"q": "reset password"}) and answered.set()
        )
        thread.start()
        thread.join(timeout=60)
        assert answered.is_set()  # while the lock is still held
        cursor.execute("COMMIT")
    locker.close()
    assert searchlog.writer.flush(timeout=60)
    assert list(SearchLog.objects.values_list("query", flat=True)) == ["reset password"]


def test_the_database_away_is_a_503_that_says_so(monkeypatch):
    from django.db import OperationalError

    def away(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("connection refused")

    monkeypatch.setattr("faq.views.search", away)
    monkeypatch.setattr("faq.api.search", away)
    page = Client().get("/", {"q": "password"})
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "The database is not answering" in page.content.decode()
    answer = Client().get("/api/search", {"q": "password"})
    assert (answer.status_code, answer.json()) == (
        503,
        {"detail": "The database is not answering; try again in a moment."},
    )
