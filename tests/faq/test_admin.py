import re

import pytest

from faq.models import ApiKey, Faq
from faq.search import SearchQuery, search
from faq.services import api_key_hash

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "page",
    [
        "faq/faq/",
        "faq/faq/add/",
        "faq/document/",
        "faq/document/add/",
        "faq/collection/",
        "faq/apikey/",
        "faq/apikey/add/",
        "embeddings/chunk/",
    ],
)
def test_admin_pages_render(admin_client, make_faq, page):
    make_faq("How do I reset my password?", "Use the reset link.")
    response = admin_client.get(f"/admin/{page}")
    assert response.status_code == 200


def test_the_faq_list_shows_each_items_index_status(admin_client, make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    html = admin_client.get("/admin/faq/faq/").content.decode()
    assert '<td class="field-embedding_status">embedded</td>' in html


def test_a_faq_added_in_the_admin_becomes_searchable(
    admin_client, collection, committed
):
    with committed():
        response = admin_client.post(
            "/admin/faq/faq/add/",
            {
                "collection": collection.pk,
                "question": "Can I pay by bank transfer?",
                "answer": "Yes, for annual plans.",
                "published": "on",
            },
        )
    assert response.status_code == 302
    results = search(SearchQuery(q="wire the money from my bank")).results
    assert [r.title for r in results] == ["Can I pay by bank transfer?"]
    assert Faq.objects.get().answer == "Yes, for annual plans."


def test_a_new_api_key_is_shown_once_and_stored_hashed(admin_client):
    response = admin_client.post(
        "/admin/faq/apikey/add/", {"name": "sync", "permission": "write"}
    )
    # Shown in the answer to the POST itself: no redirect, no message, no cookie.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "messages" not in response.cookies
    found = re.search(r'class="api-key-secret">(sk-[\w-]+)<', response.content.decode())
    secret = found.group(1)
    key = ApiKey.objects.get()
    assert key.key_hash == api_key_hash(secret)
    assert (
        secret
        not in admin_client.get(f"/admin/faq/apikey/{key.pk}/change/").content.decode()
    )
