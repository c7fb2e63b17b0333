"""The search page for everyone: axe-core finds nothing serious or critical on the
search and answer pages, it fits a phone's width, and it works without JavaScript.

axe-core comes from npm (``make browser`` installs it into ``node_modules``); the
pages' Content Security Policy would refuse it as an injected script, so these
pages are opened in a context that bypasses it (the policy itself has its own
test in test_search_page.py)."""

import pytest

from faq.models import Collection, Faq, item_url
from tests.e2e.axe import serious

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_axe_finds_nothing_serious_on_the_search_and_answer_pages(
    live_server, browser, demo
):
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(live_server.url + "/")
    assert serious(page) == []
    page.goto(live_server.url + "/?q=cross+out+words+in+a+github+comment")
    page.wait_for_selector(".result")
    assert page.locator("h1").count() == 1
    assert serious(page) == []
    page.goto(live_server.url + "/?q=zzzz+qqqq+xxxx&min_score=0.99")  # nothing found
    assert serious(page) == []
    page.goto(live_server.url + "/?q=email&page=2")  # a second page
    page.wait_for_selector(".pages")
    assert serious(page) == []
    faq = Faq.objects.filter(published=True).first()  # an answer page of its own
    page.goto(live_server.url + item_url("faq", faq.pk))
    page.wait_for_selector("article.item")
    assert page.locator("h1").count() == 1
    assert serious(page) == []


def test_the_page_fits_a_phone(live_server, browser, demo, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(live_server.url + "/?q=how+do+I+save+all+my+emails")
    page.wait_for_selector(".result")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width} px wide"
    box = page.locator(".result").first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_search_filters_and_pages_work_without_javascript(
    live_server, browser, demo, shots
):
    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(live_server.url + "/")
    page.get_by_label("Question").fill("email")
    page.get_by_label("Kind").select_option("faq")
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector(".result")
    assert "kind=faq" in page.url
    assert page.locator(".result .badge").first.inner_text() == "FAQ"
    first = page.locator(".result h2").first.inner_text()
    page.get_by_role("link", name="Next →").click()
    page.wait_for_selector(".result")
    assert "page=2" in page.url and "kind=faq" in page.url
    assert page.locator(".result h2").first.inner_text() != first
    assert page.get_by_role("link", name="← Previous").count() == 1
    page.screenshot(path=str(shots / "search-no-javascript.png"))


def test_arrow_keys_move_through_the_results_and_long_answers_fold(
    live_server, browser, demo
):
    from playwright.sync_api import expect

    long = " ".join(["Open Settings, then Privacy, then choose who sees it."] * 12)
    Faq.objects.create(
        collection=Collection.objects.get(slug="webapps"),
        question="Who can see my profile photo?",
        answer=long,
    )
    page = browser.new_page()
    page.goto(live_server.url + "/?q=who+can+see+my+profile+photo")
    page.wait_for_selector(".result")
    links = page.locator(".result h2 a")
    page.locator("#id_q").focus()
    page.keyboard.press("ArrowDown")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#id_q")).to_be_focused()

    folded = page.locator(".result").first.locator("details.long")
    expect(folded.locator(".more")).to_be_visible()
    expect(folded.locator("div")).to_be_hidden()  # the whole answer, folded
    folded.locator("summary").click()
    expect(folded.locator("div")).to_be_visible()
    expect(folded.locator(".less")).to_be_visible()


def test_questions_are_suggested_as_one_types(live_server, browser, demo):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(live_server.url + "/")
    page.get_by_label("Question").press_sequentially("gmail", delay=30)
    options = page.locator("#suggestions option")
    expect(options.first).to_be_attached()
    texts = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert texts and all("gmail" in (text or "").lower() for text in texts), texts
