"""Staff upload a CSV in the admin, watch it import, and find it on the search page."""

import os
import re
import shutil
from pathlib import Path

import pytest

from faq.models import Collection

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "faqs.csv"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_staff_upload_a_csv_and_its_questions_become_searchable(
    live_server, page, admin_user, tmp_path
):
    from playwright.sync_api import expect

    Collection.objects.create(name="Help center", slug="help")
    page.goto(live_server.url + "/admin/login/?next=/admin/faq/importjob/add/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    page.select_option("#id_collection", label="Help center")
    page.set_input_files("#id_uploads", str(SAMPLE))
    page.click("text=Read the files")
    expect(page.locator(".status")).to_have_text("ready to import")
    expect(page.locator("table").first).to_be_visible()

    page.click("input[value^='Import ']")
    embedding = page.locator("progress#embedding")
    expect(page.get_by_text("every item is searchable")).to_be_visible(timeout=60_000)
    assert embedding.get_attribute("value") == embedding.get_attribute("max")
    page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
    if os.environ.get("SAVE_SCREENSHOTS"):
        shutil.copy(tmp_path / "upload.png", DOCS / "upload.png")

    first_question = SAMPLE.read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    page.goto(live_server.url + "/?q=" + first_question.replace(" ", "+"))
    expect(page.locator(".result h2").first).to_have_text(
        re.compile(re.escape(first_question))
    )
