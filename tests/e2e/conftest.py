"""Headless Chromium (Debian's, via Playwright) and a page of it, for browser tests."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command

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


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread, and Django then refuses ORM
    # calls from it; the tests' own ORM calls are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1100, "height": 900})


@pytest.fixture
def demo(db):
    call_command("import_content", str(DEMO), "--collection", "webapps")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test's screenshots go: SCREENSHOTS_DIR=docs takes the README's."""
    return Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
