"""Uploads survive what goes wrong around them: a database away, a worker killed on
a file, a message lost; a broker away never turns a committed write into a 500.
And the review's findings: permissions, sizes before reading, bytes purged."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from ninja.testing import TestClient

from embeddings import tasks as embedding_tasks
from embeddings.models import Chunk
from faq import tasks, uploads
from faq.models import Faq, ImportFile, ImportJob
from faq.services import api_key_create
from searchsite.api import api
from searchsite.celery import app as celery_app

pytestmark = pytest.mark.django_db
client = TestClient(api)
CSV = b"question,answer\nHow do I reset my password?,Use the reset link.\n"


def job_of(collection, **fields) -> ImportJob:  # type: ignore[no-untyped-def]
    job = ImportJob.objects.create(collection=collection, **fields)
    ImportFile.objects.create(job=job, name="faqs.csv", size=len(CSV), data=CSV)
    return job


def test_a_database_error_while_reading_is_retried_not_failed(collection, monkeypatch):
    job = job_of(collection)
    real = uploads._read

    def away(job):  # type: ignore[no-untyped-def]
        raise OperationalError("the database went away")

    monkeypatch.setattr(uploads, "_read", away)
    with pytest.raises(OperationalError):
        tasks.upload_parse.run(job.pk)  # Celery's autoretry takes it from here
    job.refresh_from_db()
    assert (job.status, job.error) == ("parsing", "")
    monkeypatch.setattr(uploads, "_read", real)
    tasks.upload_parse.run(job.pk)
    job.refresh_from_db()
    assert job.status == "ready"


def test_a_file_that_kills_the_worker_each_time_fails_its_upload(settings, collection):
    settings.UPLOAD_MAX_ATTEMPTS = 3
    job = job_of(collection, attempts=3)  # three deliveries began and died
    uploads.upload_parse(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("Reading the files stopped the worker 3 times")
    assert bytes(ImportFile.objects.get().data) == CSV  # kept for a fixed worker


def test_the_sweep_queues_a_step_whose_message_was_lost(
    settings, collection, committed
):
    job = job_of(collection, confirm=True)  # its task's message never arrived
    ImportJob.objects.filter(pk=job.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    fresh = job_of(collection)  # queued a moment ago: left alone
    with committed():
        assert uploads.uploads_sweep() == 1
    job.refresh_from_db()
    assert (job.status, Faq.objects.count()) == ("done", 1)
    assert ImportJob.objects.get(pk=fresh.pk).status == "parsing"
    # Imported: the bytes are gone, the names and sizes stay.
    stored = ImportFile.objects.get(job=job)
    assert (stored.name, stored.size, bytes(stored.data)) == ("faqs.csv", len(CSV), b"")


def test_an_import_delivered_twice_imports_once(collection, committed):
    job = job_of(collection)
    with committed():
        uploads.upload_parse(job_id=job.pk)
        assert uploads.upload_confirm(job=job)
    uploads.upload_apply(job_id=job.pk)  # the same message again
    assert Faq.objects.count() == 1


def test_a_broker_away_after_the_commit_still_answers_the_write(
    collection, monkeypatch, committed
):
    secret = api_key_create(name="w", permission="write", collection=collection)[1]
    celery_app.conf.task_always_eager = False  # the conftest fixture restores it

    def refuse(*args: object) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(embedding_tasks.embed_chunks, "delay", refuse)
    with committed():
        answer = client.post(
            "/collections/help/faqs",
            json={"question": "Where are my invoices?", "answer": "Under Billing."},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert answer.status_code == 201, answer.content
    # Kept, pending: reconcile queues it once the broker is back.
    assert set(Chunk.objects.values_list("status", flat=True)) == {"pending"}


def test_an_api_upload_over_the_limit_is_refused_before_it_is_read(
    settings, collection
):
    settings.UPLOAD_MAX_REQUEST_BYTES = 1000
    secret = api_key_create(name="w", permission="write", collection=collection)[1]
    answer = Client().post(
        "/api/collections/help/uploads",
        data=b"-" * 2000,  # not even multipart: it is never parsed
        content_type="multipart/form-data; boundary=x",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 413
    assert "over 1000 (UPLOAD_MAX_REQUEST_BYTES)" in answer.json()["detail"]


def test_uploads_are_shown_only_to_staff_allowed_to_see_them(collection):
    job = job_of(collection)
    staff = User.objects.create_user("editor", password="pw", is_staff=True)
    browser = Client()
    browser.force_login(staff)
    for url in (
        f"/admin/faq/importjob/{job.pk}/change/",
        f"/admin/faq/importjob/{job.pk}/progress/",
    ):
        assert browser.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_importjob"))
    browser.force_login(User.objects.get(pk=staff.pk))
    assert browser.get(f"/admin/faq/importjob/{job.pk}/progress/").status_code == 200


def test_an_embeddings_key_cannot_list_collections():
    secret = api_key_create(name="e", permission="embeddings")[1]
    answer = client.get("/collections", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 403
    assert answer.json() == {"detail": "This API key cannot read."}
