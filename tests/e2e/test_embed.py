"""The search box on another site (static/js/embed.js): one tag on a page of another
origin searches this site, within the origins allowed and the public rates."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command

from faq.models import Collection, Faq
from tests.e2e.axe import serious

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
DEMO = Path(__file__).resolve().parents[2] / "faq" / "demo" / "webapps.jsonl"
CONTACT = "https://example.com/contact"
LABEL = "Search the help center"
# The host page's own styles, which must not reach the box (nor the box's the page).
HOST_CSS = "body { color: rgb(200, 0, 0); font-family: serif; } a { color: red; }"
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop</title>
<link rel="stylesheet" href="/host.css"></head>
<body><main><h1>Help with your order</h1>
<script src="{site}/static/js/embed.js" data-collection="{collection}" async></script>
</main></body></html>"""


@pytest.fixture
def host(live_server) -> Iterator[str]:
    """Another site's origin (127.0.0.1 and a port of its own; the live server is
    localhost) whose page embeds the box, under a strict policy of its own: scripts
    and requests to the help site only, no inline style, Trusted Types."""
    page = HOST_PAGE.format(site=live_server.url, collection="webapps").encode()
    policy = (
        f"default-src 'none'; script-src {live_server.url}; "
        f"connect-src {live_server.url}; style-src 'self'; "
        "require-trusted-types-for 'script'"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            css = self.path == "/host.css"
            self.send_response(200)
            self.send_header("Content-Type", "text/css" if css else "text/html")
            self.send_header("Content-Security-Policy", policy)
            self.end_headers()
            self.wfile.write(HOST_CSS.encode() if css else page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def demo(db) -> None:
    call_command("import_content", str(DEMO), "--collection", "webapps")
    Collection.objects.filter(slug="webapps").update(contact_url=CONTACT)


def complaints(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What the page says went wrong (errors, refusals, warnings), as it happens."""
    said: list[str] = []

    def heard(message) -> None:  # type: ignore[no-untyped-def]
        if message.type in ("error", "warning"):
            said.append(message.text)

    page.on("console", heard)
    page.on("pageerror", lambda error: said.append(str(error)))
    return said


def test_a_page_elsewhere_searches_the_site_with_one_tag(
    live_server, page, host, demo, settings
):
    from playwright.sync_api import expect

    settings.CORS_ALLOWED_ORIGINS = [host]
    said = complaints(page)
    page.goto(host + "/")
    box = page.get_by_label(LABEL)
    box.fill("cross out words in a github comment")  # searched as one types
    first = page.locator("li").first
    link = first.get_by_role("link")
    expect(link).to_have_text("Strikethrough with GitHub Markdown")
    assert (link.get_attribute("href") or "").startswith("https://")  # absolute
    # The snippet, its query words marked, the rest text (never markup).
    expect(first.locator(".snippet")).to_contain_text("</del> successfully on GitHub")
    expect(first.locator("mark")).to_have_text("GitHub")
    box.press("ArrowDown")
    expect(link).to_be_focused()
    link.press("ArrowUp")
    expect(box).to_be_focused()
    # Neither page's styles reach the other.
    assert first.locator(".snippet").evaluate("e => getComputedStyle(e).color") == (
        "rgb(51, 58, 72)"
    )
    assert page.locator("h1").evaluate("e => getComputedStyle(e).color") == (
        "rgb(200, 0, 0)"
    )

    box.fill("how do I save all my emails")  # found by a question: its answer shown
    expect(first.get_by_role("link")).to_have_text(
        "How can I back up all emails stored in my Gmail account?"
    )
    expect(first.locator(".snippet")).not_to_contain_text("How can I back up")

    box.fill("the best pizza in naples")
    expect(page.get_by_text("No confident answer.")).to_be_visible()
    expect(page.get_by_role("link", name="ask us")).to_have_attribute("href", CONTACT)
    assert said == []


def test_a_page_of_an_origin_not_allowed_says_so_and_shows_nothing(
    live_server, page, host, settings
):
    from playwright.sync_api import expect

    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    Faq.objects.create(
        collection=Collection.objects.create(name="Web apps", slug="webapps"),
        question="How do I reset my password?",
        answer="Use the link on the sign-in page.",
    )
    said = complaints(page)
    page.goto(host + "/")
    page.get_by_label(LABEL).fill("reset my password")
    expect(page.get_by_text("The search is not available here")).to_be_visible()
    assert page.locator("li").count() == 0
    # The browser refused the answer; nothing was thrown into the host page.
    refused = [s for s in said if "blocked by CORS policy" in s]
    assert refused and all(s in refused or "net::ERR_FAILED" in s for s in said), said


def test_searches_from_another_site_count_against_the_visitors_rate(
    live_server, page, host, settings
):
    from playwright.sync_api import expect

    settings.CORS_ALLOWED_ORIGINS = [host]
    settings.RATE_SEARCH = "1/h"
    Collection.objects.create(name="Web apps", slug="webapps")
    cache.clear()  # counts start at zero
    try:
        page.goto(host + "/")
        box = page.get_by_label(LABEL)
        box.fill("reset my password")
        expect(
            page.get_by_text("No answers found for “reset my password”")
        ).to_be_visible()
        box.fill("forgot my password")
        expect(
            page.get_by_text("Too many searches from your address; try again in")
        ).to_be_visible()
    finally:
        cache.clear()


def test_axe_finds_nothing_serious_on_a_page_with_the_box(
    live_server, browser, host, demo, settings, tmp_path
):
    settings.CORS_ALLOWED_ORIGINS = [host]
    page = browser.new_context(bypass_csp=True).new_page()  # to inject axe-core
    page.goto(host + "/")
    page.get_by_label(LABEL).wait_for()
    assert serious(page) == []
    page.get_by_label(LABEL).fill("how do I save all my emails")
    page.locator("li").first.wait_for()
    assert serious(page) == []
    page.screenshot(path=str(tmp_path / "embed.png"), full_page=True)
