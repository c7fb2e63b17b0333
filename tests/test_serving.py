"""The site under gunicorn as deployed (DEBUG off): its static files answer, from the
site itself, compressed and cached; its pages load nothing from elsewhere."""

import re
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.processes import database_url, free_port, gunicorn, site_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, dict(answer.headers), answer.read()


def test_static_files_answer_under_gunicorn_and_pages_load_only_this_site(
    tmp_path: Path, index_dir: Path
) -> None:
    port = free_port()
    env = site_env(
        DATABASE_URL=database_url(connection.settings_dict),
        INDEX_DIR=str(index_dir),
        VAR_DIR=str(tmp_path / "var"),
    )
    site = f"http://127.0.0.1:{port}"
    with gunicorn(env, port, tmp_path / "site.log"):
        pages = {
            path: fetch(site + path)[2].decode()
            for path in ("/", "/admin/login/", "/api/docs", "/v1/docs")
        }
        plain = fetch(f"{site}/static/css/site.css")
        hashed, compressed = [], []
        for path, html in pages.items():
            links = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
            assert links, path
            assert all(link.startswith("/static/") for link in links), (path, links)
            for link in links:
                status, headers, _ = fetch(site + link, **{"Accept-Encoding": "br"})
                assert status == 200, link
                hashed.append("max-age=315360000" in headers.get("Cache-Control", ""))
                compressed.append(headers.get("Content-Encoding") == "br")
    assert plain[0] == 200 and b"body" in plain[2]
    assert all(hashed)  # every linked file has a hashed name, cached for good
    assert any(compressed)  # the text ones come brotli-compressed
