"""The search path does per request only what the request needs: a few SQL queries
whatever ``k``, nothing loaded or built that the process already holds, and a web
process loads the model and the indexes when it starts, not on a first search."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix

from embeddings import encoders, services
from embeddings.index import keywords, store
from embeddings.index.keywords import TantivyKeywords
from faq.exceptions import NotFound
from faq.models import Collection, Document, Faq
from faq.search import MODES, SearchQuery, search
from faq.selectors import collections_searched, items_published

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def indexed(create: Callable[[], object]) -> None:
    """Create content, then embed and index it in one batch (not a task per item)."""
    with services.tasks_held():
        create()
    services.chunks_index(services.pending_ids())


@pytest.fixture
def faqs(collection):
    indexed(
        lambda: [
            Faq.objects.create(
                collection=collection,
                question=f"How do I reset the password of account {n}?",
                answer=f"Open the login page of account {n} and use the reset link.",
            )
            for n in range(12)
        ]
    )


@pytest.fixture
def documents(collection):
    indexed(
        lambda: [
            Document.objects.create(
                collection=collection,
                title=f"Password guide, part {n}",
                body=f"Part {n}: a forgotten password is reset from the login page.",
            )
            for n in range(6)
        ]
    )


def queries_of(query: SearchQuery) -> list[str]:
    """The SQL a search runs, the response used as a page would use it included."""
    with CaptureQueriesContext(connection) as captured:
        response = search(query)
        used = [(r.item.collection.slug, r.snippet, r.url) for r in response.results]
        assert len(used) == len(response.results) and response.confident in (1, 0)
    # Each query's table: ... FROM "faq_faq" ...
    return [
        re.search(r'FROM "(\w+)"', q["sql"]).group(1) for q in captured.captured_queries
    ]


@pytest.mark.parametrize("mode", MODES)
def test_search_runs_the_same_three_queries_whatever_k(faqs, mode):
    # The collections, the results that pass the filters, and the chunks they are
    # shown by. Which source each candidate chunk belongs to is kept beside the
    # index: no query for the hundreds of candidates.
    expected = ["faq_collection", "faq_faq", "embeddings_chunk"]
    for k in (1, 5, 12):
        query = SearchQuery(q="reset my password", k=k, mode=mode)
        assert queries_of(query) == expected, k


def test_search_hydrates_each_kind_in_one_query(faqs, documents):
    query = SearchQuery(q="reset my password", k=18)
    assert queries_of(query) == [
        "faq_collection",
        "faq_faq",
        "faq_document",
        "embeddings_chunk",
    ]
    assert len(search(query).results) == 18


def test_filters_reach_past_the_best_candidates_when_they_fail(faqs, collection):
    # Only the two least alike pass: the first k candidates fail the filter and
    # the next, larger batches are loaded until k pass.
    Faq.objects.filter(question__endswith=" 10?").update(category="billing")
    Faq.objects.filter(question__endswith=" 11?").update(category="billing")
    Faq.objects.filter(question__endswith=" 3?").update(published=False)
    query = SearchQuery(q="reset the password of account 3", k=2, category="billing")
    assert sorted(r.title for r in search(query).results) == [
        "How do I reset the password of account 10?",
        "How do I reset the password of account 11?",
    ]
    titles = [r.title for r in search(SearchQuery(q="account 3", k=12)).results]
    assert len(titles) == 11
    assert "How do I reset the password of account 3?" not in titles


def test_snippets_come_from_the_chunk_each_result_was_found_by(faqs, documents):
    results = search(SearchQuery(q="forgotten password guide part 3", k=3)).results
    assert [(r.title, r.matched, r.snippet) for r in results[:1]] == [
        (
            "Password guide, part 3",
            "body",
            "Part 3: a forgotten password is reset from the login page.",
        )
    ]
    faq = next(r for r in search(SearchQuery(q="account 7 login page", k=3)).results)
    assert (faq.title, faq.matched, faq.snippet) == (
        "How do I reset the password of account 7?",
        "answer",
        "Open the login page of account 7 and use the reset link.",
    )


def test_an_index_published_without_sources_is_searched_through_the_database(faqs):
    query = SearchQuery(q="reset my password", k=5)
    expected = [(r.title, r.matched, r.snippet) for r in search(query).results]
    (partition,) = store.partitions()
    # As an index published before sources were kept beside its vectors.
    path = store.partition_dir(partition) / store.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "sources": ""}))
    assert queries_of(query)[:2] == ["faq_collection", "embeddings_chunk"]
    assert [(r.title, r.matched, r.snippet) for r in search(query).results] == expected
    # The next sync (a change, or the periodic reconcile) adds them.
    services.index_sync(partition)
    assert store.read_manifest(partition).sources
    assert queries_of(query) == ["faq_collection", "faq_faq", "embeddings_chunk"]


def test_results_load_published_items_of_the_category_without_deferred_fields(
    collection,
):
    def document(title: str, **fields: object) -> int:
        return Document.objects.create(
            collection=collection, title=title, body="A long body.", **fields
        ).pk

    pks = [
        document("shown", category="billing"),
        document("draft", category="billing", published=False),
        document("elsewhere", category="account"),
    ]
    loaded = list(
        items_published(Document, pks, category="billing", deferred=("body",))
    )
    assert [(d.title, d.category, d.collection) for d in loaded] == [
        ("shown", "billing", collection)
    ]
    assert loaded[0].get_deferred_fields() == {"body"}
    everything = items_published(Document, pks)
    assert sorted(d.title for d in everything) == ["elsewhere", "shown"]


def test_loaded_items_and_collections_hold_what_the_orm_would_load(faqs, collection):
    # The selectors convert the database's values themselves (booleans, aware
    # datetimes on SQLite): each field must equal what the ORM gives.
    pks = list(Faq.objects.values_list("pk", flat=True))
    fields = [f.attname for f in Faq._meta.concrete_fields]
    loaded = {f.pk: f for f in items_published(Faq, pks)}
    for faq in Faq.objects.filter(pk__in=pks):
        assert [getattr(loaded[faq.pk], f) for f in fields] == [
            getattr(faq, f) for f in fields
        ]
    assert loaded[pks[0]].published is True
    other = Collection.objects.create(name="Another", slug="another")
    assert collections_searched(None) == list(Collection.objects.order_by("name"))
    assert [
        (c.created_at, c.confidence_threshold) for c in collections_searched("another")
    ] == [(other.created_at, other.confidence_threshold)]
    with pytest.raises(NotFound):
        collections_searched("nowhere")


def test_item_urls_are_what_reverse_gives_under_any_script_prefix():
    try:
        for prefix in ("/", "/help/"):
            set_script_prefix(prefix)
            for kind, model in (("faq", Faq), ("document", Document)):
                assert model(pk=42).get_absolute_url() == reverse(
                    "faq:item", args=[kind, 42]
                )
                assert model(pk=42).get_absolute_url().startswith(f"{prefix}{kind}/")
    finally:
        set_script_prefix("/")


def test_without_snippets_no_chunk_text_is_read(faqs):
    query = SearchQuery(q="reset my password", snippets=False)
    with CaptureQueriesContext(connection) as captured:
        results = search(query).results
    assert {r.snippet for r in results} == {""}
    assert not any('"text"' in q["sql"] for q in captured.captured_queries)


def test_a_search_builds_nothing_the_process_already_holds(faqs, monkeypatch):
    query = SearchQuery(q="I forgot the password of my account")
    expected = [r.title for r in search(query).results]
    encoders.encode_query.cache_clear()  # the model must encode it again

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("built again on a request")

    # Loading an index, opening the keyword index, building the analyzer, making
    # the encoder: each happens once per process, never per request.
    monkeypatch.setattr(store, "load_published", refuse)
    monkeypatch.setattr(TantivyKeywords, "open", refuse)
    monkeypatch.setattr(keywords, "analyzer", refuse)
    monkeypatch.setattr(encoders, "make_encoder", refuse)
    assert [r.title for r in search(query).results] == expected
    assert encoders.encode_query.cache_info().misses == 1


@pytest.mark.slow
def test_a_web_process_loads_the_model_and_indexes_when_it_starts(
    faqs, index_dir, tmp_path
):
    # Importing the WSGI application is what gunicorn does in each worker.
    code = (
        "import json, searchsite.wsgi\n"
        "from embeddings import encoders\n"
        "from embeddings.index.reader import reader\n"
        "print(json.dumps({'encoded': encoders.encode_query.cache_info().currsize,"
        " 'partitions': sorted(reader._loaded)}))\n"
    )
    env = {**os.environ, "INDEX_DIR": str(index_dir), "VAR_DIR": str(tmp_path)}
    env.pop("EMBEDDINGS_PRELOAD", None)
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    partitions = store.partitions()
    assert len(partitions) == 1
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded == {"encoded": 1, "partitions": partitions}
