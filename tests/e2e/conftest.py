"""A headless Chromium page for browser tests (Debian's chromium, via Playwright)."""

import pytest

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
def page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread, and Django then refuses ORM
    # calls from it; the tests' own ORM calls are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport={"width": 1100, "height": 900})
        browser.close()
