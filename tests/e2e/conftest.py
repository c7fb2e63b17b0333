"""Headless Chromium (Debian's, via Playwright) and a page of it, for browser tests."""

import os
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from embeddings.encoders import get_encoder

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "faq" / "demo" / "webapps.jsonl"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(autouse=True)
def plain_static_names(settings):
    """The live server serves static files from the apps' folders (Django's
    StaticFilesHandler), which hold no hashed copies: pages link plain names here.
    Hashed names under gunicorn and WhiteNoise: tests/test_serving.py."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }


@pytest.fixture(scope="module")
def browser():
    """One Chromium for a module's tests; each test's pages open in a context of
    their own (``browser.new_page``), so no cookie or storage crosses tests."""
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread, and Django then refuses ORM
    # calls from it; the tests' own ORM calls are plain synchronous ones.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    yield page
    page.context.close()


# The model's vector of each text, computed once for every browser test: they load
# the same demo content again and again, and what a page shows does not depend on
# which batch a text was embedded in (the encoders' own tests check that).
_VECTORS: dict[tuple[str, str], np.ndarray] = {}


@pytest.fixture(autouse=True)
def vectors_kept(monkeypatch):
    encoder = get_encoder()
    encode = encoder.encode

    def kept(texts):
        texts = list(texts)
        new = [t for t in dict.fromkeys(texts) if (encoder.name, t) not in _VECTORS]
        if new:
            keys = [(encoder.name, t) for t in new]
            _VECTORS.update(zip(keys, encode(new), strict=True))
        if not texts:
            return encode(texts)
        return np.stack([_VECTORS[encoder.name, t] for t in texts])

    monkeypatch.setattr(encoder, "encode", kept)


@pytest.fixture
def demo(db):
    call_command("import_content", str(DEMO), "--collection", "webapps")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test's screenshots go: SCREENSHOTS_DIR=docs takes the README's."""
    return Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
