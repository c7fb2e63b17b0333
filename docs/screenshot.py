"""Take the README's screenshots of a running site (the demo content loaded):

    python docs/screenshot.py [BASE_URL]

Each is a page or state the browser tests check (tests/e2e): the search page with
results, a second page, no confident answer, the search page on a phone."""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
HERE = Path(__file__).parent
DESKTOP = {"width": 1000, "height": 1100}
PHONE = {"width": 390, "height": 844}
SHOTS = [
    ("search.png", "/?q=how+do+I+save+all+my+emails", DESKTOP, ".result"),
    ("search-page-2.png", "/?q=how+do+I+save+all+my+emails&page=2", DESKTOP, ".pages"),
    ("search-unsure.png", "/?q=the+best+pizza+in+naples", DESKTOP, ".unsure"),
    ("search-phone.png", "/?q=share+a+google+calendar", PHONE, ".result"),
]

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
    for name, path, viewport, ready in SHOTS:
        page = browser.new_page(viewport=viewport, is_mobile=viewport is PHONE)
        page.goto(BASE + path)
        page.wait_for_selector(ready)
        page.screenshot(path=str(HERE / name))
        page.close()
    browser.close()
