"""The search page in headless Chromium, driven by Playwright, as a visitor uses it."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
DEMO = Path(__file__).resolve().parents[2] / "faq" / "demo" / "webapps.jsonl"


def test_a_visitor_finds_an_answer_by_meaning(live_server, page, tmp_path):
    from playwright.sync_api import expect

    call_command("import_content", str(DEMO), "--collection", "webapps")
    page.goto(live_server.url + "/")
    expect(page.get_by_text("Ask in your own words")).to_be_visible()
    # Typing searches as you type (htmx); no word of the matching question is used.
    page.get_by_label("Question").fill("cross out words in a github comment")
    first = page.locator(".result").first
    expect(first.locator("h2")).to_have_text("Strikethrough with GitHub Markdown")
    expect(first.locator(".badge")).to_have_text("FAQ")
    expect(page).to_have_url(
        re.compile(r"q=cross(\+|%20)out(\+|%20)words")
    )  # shareable
    # Filters work as a plain GET form, without JavaScript.
    page.goto(live_server.url + "/?q=back+up+my+email&kind=document")
    expect(page.locator(".result .badge").first).to_have_text("Document")
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)


def test_the_pages_break_no_rule_of_their_content_security_policy(
    live_server, page, admin_user
):
    """The browser enforces the policy: nothing inline it refuses, nothing from
    another origin, on the search page (with htmx at work), the admin and the
    API's Swagger UI."""
    from playwright.sync_api import expect

    refused: list[str] = []
    elsewhere: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url)
            if not request.url.startswith((live_server.url, "data:"))
            else None
        ),
    )
    page.goto(live_server.url + "/")
    page.get_by_label("Question").fill("reset my password")
    page.wait_for_load_state("networkidle")
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    expect(page.get_by_text("Site administration")).to_be_visible()
    page.goto(live_server.url + "/admin/faq/faq/add/")
    page.goto(live_server.url + "/api/docs")
    expect(page.locator(".swagger-ui .title").first).to_be_visible()
    assert refused == [] and elsewhere == []
