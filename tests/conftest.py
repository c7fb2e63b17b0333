"""Fixtures: a temporary index per test; tasks run eagerly unless a worker runs."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from embeddings.index import reader as reader_module
from embeddings.index.reader import reader
from searchsite.celery import app as celery_app

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences"}


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The embedded pass (``make test-embedded``) runs again only the tests whose
    outcome the database or the broker can change: those that use the database.
    The model's, the parsers' and the other tests of pure code ran in the services
    pass already, against the same code."""
    if os.environ.get("TEST_PASS") != "embedded":
        return
    again = [
        item
        for item in items
        if item.get_closest_marker("django_db")
        or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    config.hook.pytest_deselected(items=[i for i in items if i not in again])
    items[:] = again


@pytest.fixture(autouse=True)
def index_dir(settings, tmp_path: Path) -> Iterator[Path]:
    settings.INDEX_DIR = tmp_path / "index"
    reader.clear()
    reader_module._repairs_asked.clear()
    yield settings.INDEX_DIR
    reader.clear()


@pytest.fixture(autouse=True)
def in_process(settings) -> None:
    """Tests share one address and one cache, so the per-client rates are off
    (tests of the limits set them); the search log is written as the search is."""
    for group in ("SEARCH", "ANALYSIS", "LOGIN", "LOGIN_USER", "FEEDBACK"):
        setattr(settings, f"RATE_{group}", "")
    settings.SEARCH_LOG_BACKGROUND = False
    settings.HEALTH_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def eager_tasks() -> Iterator[None]:
    """Tasks run in the test's process, when the transaction commits."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def committed(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """``with committed():`` runs on-commit hooks (queued tasks) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def collection(db):  # type: ignore[no-untyped-def]
    from faq.models import Collection

    return Collection.objects.create(name="Help", slug="help")


@pytest.fixture
def make_faq(collection, committed):  # type: ignore[no-untyped-def]
    from faq.models import Faq

    def make(question: str, answer: str, **fields: object) -> Faq:
        fields.setdefault("collection", collection)
        with committed():
            return Faq.objects.create(question=question, answer=answer, **fields)

    return make


@pytest.fixture(scope="session")
def another_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Another model's name (its path): the packaged one, permuted (tests.permuted)."""
    from tests.permuted import permuted_model

    return str(permuted_model(tmp_path_factory.mktemp("models")))
