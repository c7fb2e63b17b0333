import pytest

pytestmark = pytest.mark.django_db


def test_the_search_page_works_without_javascript(client, make_faq):
    make_faq(
        "How do I reset my password?",
        "Use the reset link on the login page.",
        category="Account",
    )
    page = client.get("/", {"q": "I forgot my password"})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<form id="search" class="search" method="get"' in html
    assert "How do I reset my <mark>password</mark>?" in html
    assert "Use the reset link on the login page." in html
    assert '<option value="Account">Account (1)</option>' in html  # its results
    assert '<option value="keyword">By keywords</option>' in html
    assert 'class="score"' in html


def test_the_page_explains_itself_before_any_query(client):
    html = client.get("/").content.decode()
    assert "Ask in your own words" in html


def test_no_results_is_a_clear_empty_state(client, make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    html = client.get("/", {"q": "password", "min_score": "0.99"}).content.decode()
    assert "No answers found" in html
    assert "above a score of 0.99" in html


def test_bad_input_is_a_form_error_not_a_500(client):
    response = client.get("/", {"q": "x" * 600})
    assert response.status_code == 400
    assert "The query is too long" in response.content.decode()
    response = client.get("/", {"q": "hi", "min_score": "lots"})
    assert response.status_code == 400
    assert "Enter a number." in response.content.decode()


def test_stored_text_is_escaped(client, make_faq):
    make_faq(
        '<script>alert("q")</script> scripts?', '<img src=x onerror="alert(1)"> & more'
    )
    html = client.get("/", {"q": "scripts"}).content.decode()
    assert "<script>alert" not in html
    assert (
        "&lt;<mark>script</mark>&gt;alert(&quot;q&quot;)&lt;/<mark>script</mark>&gt; "
        "<mark>scripts</mark>?" in html
    )
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in html


def test_htmx_requests_get_only_the_results(client, make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    html = client.get(
        "/", {"q": "password"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "How do I reset my <mark>password</mark>?" in html
    assert "<html" not in html


def test_an_item_has_its_own_page(client, make_faq):
    faq = make_faq("How do I reset my password?", "Use the reset link.")
    html = client.get(f"/faq/{faq.pk}/").content.decode()
    assert "Use the reset link." in html
    assert client.get("/video/1/").status_code == 404
