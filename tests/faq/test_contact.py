"""With no confident answer, the search says where to ask: the collection's page."""

import pytest
from django.test import Client
from ninja.testing import TestClient

from faq.models import Collection
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)
CONTACT = "https://example.com/contact"


@pytest.fixture
def asked(collection, make_faq):
    Collection.objects.filter(pk=collection.pk).update(contact_url=CONTACT)
    make_faq("How do I reset my password?", "Use the reset link.")


def test_no_confident_answer_links_to_the_collections_contact_page(asked):
    unsure = client.get("/search", query_params={"q": "volcano eruption forecast"})
    assert unsure.json()["confident"] is False
    assert unsure.json()["contact_url"] == CONTACT
    sure = client.get("/search", query_params={"q": "I forgot my password"}).json()
    assert sure["confident"] is True and sure["contact_url"] is None
    page = Client().get("/", {"q": "volcano eruption forecast"}).content.decode()
    assert f'<a href="{CONTACT}">ask us</a>' in page


def test_no_result_at_all_in_a_collection_still_links_to_its_contact_page(asked):
    found = client.get(
        "/search",
        query_params={"q": "password", "collection": "help", "min_score": 0.99},
    ).json()
    assert found["results"] == [] and found["contact_url"] == CONTACT


def test_a_collection_takes_a_contact_page_that_is_a_web_address(settings):
    from faq.services import api_key_create

    secret = api_key_create(name="w", permission="write")[1]
    auth = {"Authorization": f"Bearer {secret}"}
    made = client.post(
        "/collections",
        json={"name": "Billing", "slug": "billing", "contact_url": CONTACT},
        headers=auth,
    )
    assert made.status_code == 201 and made.json()["contact_url"] == CONTACT
    bad = client.post(
        "/collections",
        json={"name": "X", "slug": "x", "contact_url": "javascript:alert(1)"},
        headers=auth,
    )
    assert bad.status_code == 422
