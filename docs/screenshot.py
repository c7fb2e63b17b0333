"""Take the README's screenshots of a running site (the demo content loaded):

    python docs/screenshot.py [BASE_URL]

Each is a page or state the browser tests check (tests/e2e): the search page with
results, a second page, no confident answer, the search page on a phone, and the
search box on a page of another site (served here, from EMBED_HOST: run the site
with EMBED_ORIGINS=http://127.0.0.1:8001)."""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
EMBED_HOST = ("127.0.0.1", 8001)
EMBED_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop</title></head>
<body style="font: 17px/1.6 Georgia, serif; max-width: 44rem; margin: 2rem auto">
<h1>Help with your order</h1>
<p>Ask in your own words: our help center answers by meaning.</p>
<script src="{BASE}/static/js/embed.js" data-collection="webapps" async></script>
</body></html>""".encode()


class HostPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(EMBED_PAGE)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
    for name, path, viewport, ready in SHOTS:
        page = browser.new_page(viewport=viewport, is_mobile=viewport is PHONE)
        page.goto(BASE + path)
        page.wait_for_selector(ready)
        page.screenshot(path=str(HERE / name))
        page.close()
    host = ThreadingHTTPServer(EMBED_HOST, HostPage)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto("http://{}:{}/".format(*EMBED_HOST))
    page.get_by_label("Search the help center").fill("how do I save all my emails")
    page.wait_for_selector("li")
    page.screenshot(path=str(HERE / "embed.png"))
    host.shutdown()
    browser.close()
