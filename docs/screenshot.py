"""Take the README's screenshot of a running site: python docs/screenshot.py [URL]."""

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
DEFAULT = "http://127.0.0.1:8000/?q=how+do+I+save+all+my+emails"

url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    page.goto(url)
    page.wait_for_selector(".result")
    page.screenshot(path=str(Path(__file__).with_name("search.png")))
    browser.close()
