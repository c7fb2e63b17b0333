"""Uploads through the admin and the content API, bulk upsert and export."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from ninja.testing import TestClient

from embeddings.models import Chunk
from faq.exports import csv_cell, csv_uncell
from faq.models import Document, Faq, ImportJob
from faq.services import api_key_create
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)
ROWS = [
    {"question": "How do I reset my password?", "answer": "Use the reset link."},
    {"kind": "document", "title": "Shipping", "body": "Parcels take 3 days."},
]


def jsonl(rows: list[object]) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


@pytest.fixture
def writer(collection) -> dict[str, str]:
    secret = api_key_create(name="w", permission="write", collection=collection)[1]
    return {"Authorization": f"Bearer {secret}"}


def test_an_admin_upload_is_previewed_then_imported(
    admin_client, collection, committed
):
    upload = SimpleUploadedFile("content.jsonl", jsonl(ROWS))
    with committed():
        response = admin_client.post(
            "/admin/faq/importjob/add/",
            {"collection": collection.pk, "uploads": [upload]},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/faq/importjob/{job.pk}/change/"
    assert job.status == "ready"
    assert Faq.objects.count() == 0  # nothing before confirming
    page = admin_client.get(response["Location"]).content.decode()
    assert "How do I reset my password?" in page
    assert "Import 2 items" in page
    with committed():
        admin_client.post(f"/admin/faq/importjob/{job.pk}/confirm/")
    job.refresh_from_db()
    assert job.status == "done"
    assert (Faq.objects.count(), Document.objects.count()) == (1, 1)
    progress = admin_client.get(f"/admin/faq/importjob/{job.pk}/progress/")
    html = progress.content.decode()
    assert "Embedded 3 of 3 chunks: every item is searchable." in html
    assert "hx-trigger" not in html  # finished: the page stops polling


def test_an_upload_with_a_bad_row_is_refused_whole(admin_client, collection, committed):
    upload = SimpleUploadedFile("content.jsonl", jsonl([*ROWS, '{"question": "?"}']))
    with committed():
        admin_client.post(
            "/admin/faq/importjob/add/",
            {"collection": collection.pk, "uploads": [upload]},
        )
    job = ImportJob.objects.get()
    assert job.status == "refused"
    assert job.report["errors"] == [
        {
            "source": "content.jsonl",
            "line": 3,
            "message": "a FAQ needs a question and an answer",
        }
    ]
    page = admin_client.get(f"/admin/faq/importjob/{job.pk}/change/").content.decode()
    assert "Nothing was imported" in page
    assert "Import 2 items" not in page
    assert (
        admin_client.post(f"/admin/faq/importjob/{job.pk}/confirm/").status_code == 302
    )
    assert Faq.objects.count() == 0


def test_upload_size_limits_are_form_errors(admin_client, collection, settings):
    settings.UPLOAD_MAX_FILE_BYTES = 10
    upload = SimpleUploadedFile("content.jsonl", jsonl(ROWS))
    response = admin_client.post(
        "/admin/faq/importjob/add/", {"collection": collection.pk, "uploads": [upload]}
    )
    assert response.status_code == 200
    assert (
        "content.jsonl is 0.0 MB: files may be at most 0.0 MB."
        in response.content.decode()
    )
    assert ImportJob.objects.count() == 0


def test_the_api_uploads_and_reports_progress(writer, committed):
    with committed():
        response = client.post(
            "/collections/help/uploads",
            FILES=MultiValueDict(
                {"files": [SimpleUploadedFile("c.jsonl", jsonl(ROWS))]}
            ),
            headers=writer,
        )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    progress = client.get(f"/uploads/{job_id}", headers=writer).json()
    assert progress | {"report": None} == {
        "id": job_id,
        "collection": "help",
        "status": "done",
        "files": ["c.jsonl"],
        "rows_parsed": 2,
        "items_to_write": 2,
        "items_written": 2,
        "chunks_total": 3,
        "chunks_embedded": 3,
        "chunks_failed": 0,
        "finished": True,
        "error": "",
        "report": None,
    }


def test_bulk_upsert_is_atomic_and_idempotent(writer, committed):
    with committed():
        first = client.post(
            "/collections/help/bulk", json={"items": ROWS}, headers=writer
        )
    assert first.json() | {"errors": []} == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
        "written": True,
    }
    again = client.post("/collections/help/bulk", json={"items": ROWS}, headers=writer)
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    bad = client.post(
        "/collections/help/bulk",
        json={"items": [{"question": "New?", "answer": "Yes."}, {"title": 5}]},
        headers=writer,
    )
    assert bad.status_code == 422  # off the schema: nothing is read
    twice = [
        {"question": "New?", "answer": "Yes."},
        {"question": "New?", "answer": "No"},
    ]
    clash = client.post("/collections/help/bulk", json={"items": twice}, headers=writer)
    assert clash.status_code == 409
    assert clash.json()["errors"] == [
        {"source": "items", "line": 2, "message": "repeats line 1 (question)"}
    ]
    assert Faq.objects.count() == 1


def test_bulk_has_a_documented_limit(writer, settings):
    settings.BULK_MAX_ITEMS = 1
    response = client.post(
        "/collections/help/bulk", json={"items": ROWS}, headers=writer
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "At most 1 items per request."}


def test_export_round_trips_through_import(writer, committed, collection):
    tricky = {"question": '=HYPERLINK("x")?', "answer": "-1 + @cell", "category": "'=a"}
    with committed():
        client.post(
            "/collections/help/bulk", json={"items": [*ROWS, tricky]}, headers=writer
        )
    exported = client.get("/collections/help/export?format=jsonl", headers=writer)
    assert (
        exported["Content-Disposition"] == 'attachment; filename="help-content.jsonl"'
    )
    body = exported.content
    chunks = set(Chunk.objects.values_list("pk", flat=True))
    with committed():
        response = client.post(
            "/collections/help/uploads",
            FILES=MultiValueDict(
                {"files": [SimpleUploadedFile("help-content.jsonl", body)]}
            ),
            headers=writer,
        )
    again = client.get(f"/uploads/{response.json()['id']}", headers=writer).json()
    assert again["report"]["errors"] == []
    assert again["report"] | {"errors": [], "first_rows": []} == {
        "rows": 3,
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "errors": [],
        "error_count": 0,
        "first_rows": [],
        "written": True,
    }
    assert set(Chunk.objects.values_list("pk", flat=True)) == chunks


def test_csv_cells_that_would_run_as_formulas_are_escaped_reversibly():
    for text in ["=1+1", "+x", "-y", "@z", "\tt", "'=already", "plain", "'quoted"]:
        assert csv_uncell(csv_cell(text)) == text
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("plain") == "plain"


def test_the_admin_exports_one_collection(admin_client, make_faq, collection):
    make_faq("=cmd|' /C calc'!A0", "Formula-looking text.")
    response = admin_client.post(
        "/admin/faq/collection/",
        {"action": "export_faqs_csv", "_selected_action": [collection.pk]},
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines() == [
        "external_id,question,answer,category,url,published",
        ",'=cmd|' /C calc'!A0,Formula-looking text.,,,true",
    ]
