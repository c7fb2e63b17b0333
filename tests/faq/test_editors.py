"""Editors' tools: private collections, synonyms for the keyword leg, and pinned
answers."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from faq.access import EVERY
from faq.models import Collection, Faq, PinnedAnswer, SearchLog
from faq.search import SearchQuery, search
from faq.services import api_key_create
from faq.suggestions import suggestions


@pytest.fixture
def private(db, committed):
    staff = Collection.objects.create(name="Staff handbook", slug="staff", private=True)
    with committed():
        secret = Faq.objects.create(
            collection=staff,
            question="How are salary bands decided?",
            answer="By the pay committee, each spring.",
            category="Pay",
        )
    return staff, secret


@pytest.fixture
def public(make_faq):
    return make_faq("How do I reset my password?", "Use the reset link.")


def test_a_private_collection_is_never_shown_to_anonymous_visitors(private, public):
    staff, secret = private
    anonymous = Client()
    page = anonymous.get("/", {"q": "salary bands"}).content.decode()
    assert "salary bands decided" not in page and "Staff handbook" not in page
    assert ">Pay<" not in page  # nor its categories
    refused = anonymous.get("/", {"q": "salary", "collection": "staff"})
    assert refused.status_code == 400 and "decided" not in refused.content.decode()
    api = anonymous.get("/api/search", {"q": "salary bands"}).json()
    assert all(r["collection"] != "staff" for r in api["results"])
    named = anonymous.get("/api/search", {"q": "salary", "collection": "staff"})
    assert (
        named.status_code == 404 and "no collection 'staff'" in named.json()["detail"]
    )
    assert anonymous.get(f"/faq/{secret.pk}/").status_code == 404
    similar = anonymous.get(f"/api/items/{secret.pk}/similar", {"kind": "faq"})
    assert similar.status_code == 404
    assert suggestions("How are", collection=None) == []
    assert (
        anonymous.get(
            "/api/suggest", {"q": "salary", "collection": "staff"}
        ).status_code
        == 404
    )


def test_it_is_searched_by_permitted_users_and_by_its_keys(private, public):
    staff, secret = private
    editor = User.objects.create_user("editor", password="pw")
    signed_in = Client()
    signed_in.force_login(editor)
    assert (
        "salary bands decided"
        not in signed_in.get("/", {"q": "salary bands"}).content.decode()
    )
    editor.user_permissions.add(Permission.objects.get(codename="search_private"))
    signed_in.force_login(User.objects.get(pk=editor.pk))
    page = signed_in.get("/", {"q": "salary bands"}).content.decode()
    assert "decided?" in page and "Staff handbook" in page
    assert signed_in.get(f"/faq/{secret.pk}/").status_code == 200
    # Its searches are marked: no suggestion of them to others.
    assert SearchLog.objects.latest("pk").private
    assert suggestions("salary", collection=None) == []

    key = api_key_create(name="intranet", permission="read", collection=staff)[1]
    other = Collection.objects.create(name="Other", slug="other")
    elsewhere = api_key_create(name="other", permission="read", collection=other)[1]
    api = Client()
    found = api.get(
        "/api/search", {"q": "salary bands"}, HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert found.json()["results"][0]["id"] == secret.pk
    refused = api.get(
        "/api/search",
        {"q": "salary bands", "collection": "staff"},
        HTTP_AUTHORIZATION=f"Bearer {elsewhere}",
    )
    assert refused.status_code == 404


def test_synonyms_let_the_keyword_leg_match_the_words_editors_say_are_the_same(
    collection, make_faq
):
    faq = make_faq("How do I sign in with my badge?", "Hold it to the reader.")
    keyword = SearchQuery(q="login badge", mode="keyword", access=EVERY)
    assert [r.id for r in search(keyword).results] == [faq.pk]  # badge alone
    before = search(keyword).results[0].keyword_score
    assert search(SearchQuery(q="login", mode="keyword")).results == []
    Collection.objects.filter(pk=collection.pk).update(
        synonyms="login, log in, sign in\nfoo, bar"
    )
    found = search(keyword)
    assert found.results[0].id == faq.pk and found.results[0].keyword_score > before
    assert "sign" in found.terms  # and the synonym is highlighted
    # "login" alone: nothing but its synonym "sign in" is in the FAQ.
    alone = search(SearchQuery(q="login", mode="keyword"))
    assert [r.id for r in alone.results] == [faq.pk]


def test_a_pinned_answer_comes_first_for_its_query_and_its_paraphrases(
    collection, make_faq
):
    reset = make_faq("How do I reset my password?", "Use the reset link.")
    sso = make_faq("Can I use single sign-on?", "Yes: ask your admin to turn on SAML.")
    assert search(SearchQuery(q="I forgot my password")).results[0].id == reset.pk
    pin = PinnedAnswer(
        collection=collection, query="I forgot my password", faq=sso, similarity=0.85
    )
    pin.full_clean()
    pin.save()
    assert Collection.objects.get(pk=collection.pk).pinned == 1
    exact = search(SearchQuery(q="i forgot my  password"))
    assert [(r.id, r.pinned) for r in exact.results[:2]] == [
        (sso.pk, True),
        (reset.pk, False),
    ]
    paraphrase = search(SearchQuery(q="I have forgotten my password"))
    assert paraphrase.results[0].id == sso.pk
    unrelated = search(SearchQuery(q="Where are my invoices?"))
    assert all(not r.pinned for r in unrelated.results)
    later = search(SearchQuery(q="I forgot my password", offset=1))
    assert not any(r.pinned for r in later.results)  # the first page's only
    pin.delete()
    assert Collection.objects.get(pk=collection.pk).pinned == 0
    assert search(SearchQuery(q="I forgot my password")).results[0].id == reset.pk


def test_a_pin_of_another_collections_faq_is_a_form_error(collection, make_faq, db):
    other = Collection.objects.create(name="Other", slug="other")
    faq = make_faq("Elsewhere?", "Yes.", collection=other)
    with pytest.raises(Exception, match="Pin an FAQ of this collection"):
        PinnedAnswer(collection=collection, query="x", faq=faq).full_clean()
