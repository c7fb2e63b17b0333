"""In the browser: a visitor says whether an answer helped (and why not), opens a
result, and staff read it on the analytics page, which axe-core finds nothing
serious on; a private collection stays out of an anonymous visitor's page."""

import pytest
from django.contrib.auth.models import User

from faq.models import Click, Collection, Faq, Feedback, SearchLog
from tests.e2e.axe import serious

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_a_vote_asks_why_not_and_a_click_is_counted(live_server, page, demo, shots):
    page.goto(live_server.url + "/?q=cross+out+words+in+a+github+comment")
    first = page.locator(".result").first
    first.get_by_role("button", name="No").click()
    first.get_by_label("Out of date").check()
    page.screenshot(path=str(shots / "search-feedback.png"))
    first.get_by_role("button", name="Send").click()
    first.get_by_text("Thanks for telling us").wait_for()
    vote = Feedback.objects.get()
    assert (vote.helpful, vote.reason, vote.position) == (False, "outdated", 1)
    assert vote.search.query == "cross out words in a github comment"
    second = page.locator(".result").nth(1)
    second.get_by_role("button", name="Yes").click()
    second.get_by_text("glad it helped").wait_for()
    assert Feedback.objects.filter(helpful=True, position=2).count() == 1
    # Demo answers link to their Stack Exchange pages, which cannot be reached
    # here: the beacon goes as the browser leaves, wherever it leaves to.
    page.route("https://**", lambda route: route.abort())
    second.locator("h2 a").click(no_wait_after=True)
    for _ in range(50):
        if Click.objects.exists():
            break
        page.wait_for_timeout(100)
    assert list(Click.objects.values_list("position", flat=True)) == [2]


def test_the_analytics_page_with_data_has_nothing_serious_for_axe(
    live_server, browser, demo, shots
):
    for q in ["export my gmail", "export my gmail", "the best pizza in naples"]:
        page = browser.new_page()
        page.goto(live_server.url + "/?" + f"q={q.replace(' ', '+')}")
    User.objects.create_superuser("staff", "staff@example.com", "pw-for-tests")
    page = browser.new_context(
        bypass_csp=True, viewport={"width": 1200, "height": 1000}
    ).new_page()
    page.goto(live_server.url + "/admin/login/?next=/admin/faq/searchlog/analytics/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.wait_for_selector(".analytics .figures")
    assert SearchLog.objects.count() == 3
    assert (
        "export my gmail" in page.locator("#top ~ table, section").all_inner_texts()[2]
    )
    assert page.locator("svg.chart").count() == 3
    page.screenshot(path=str(shots / "analytics.png"), full_page=True)
    assert serious(page) == []


def test_a_private_collection_is_refused_to_an_anonymous_visitor(
    live_server, page, demo, shots
):
    staff = Collection.objects.create(name="Staff handbook", slug="staff", private=True)
    Faq.objects.create(collection=staff, question="Salary bands?", answer="Secret.")
    page.goto(live_server.url + "/")
    options = page.locator("#id_collection option").all_inner_texts()
    assert "Staff handbook" not in options
    page.goto(live_server.url + "/?q=salary+bands&collection=staff")
    assert page.locator(".error").count() == 1
    assert "Secret." not in page.content()
    page.screenshot(path=str(shots / "search-private-refused.png"))
