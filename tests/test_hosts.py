"""Many hosts: the site as the README's *Many hosts* deploys it, each host a network
namespace of its own (``tests/netns.py``) with its own address, files and
``INDEX_DIR``: one host for PostgreSQL and Redis, two web hosts running gunicorn
alone, two worker hosts running Celery (one of them beat too). No host shares a
disk with another but the code and the encoder's built files (``MODELS_DIR``,
as an image would hold them). Each test prints the figures bench/RESULTS.md
records.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.netns import Host, network
from tests.processes import (
    ROOT,
    deployed_env,
    http,
    logs_tail,
    started,
    upload_body,
    wait_for,
)
from tests.servers import Postgres, Redis, postgres, redis

pytestmark = [pytest.mark.slow, pytest.mark.services]
BIN = Path(sys.executable).parent
PORT = 8000


class Site:
    def __init__(
        self, hosts: dict[str, Host], db: Postgres, broker: Redis, root: Path
    ) -> None:
        self.hosts, self.db, self.root = hosts, db, root
        self.common = deployed_env(
            DATABASE_URL=db.url,
            REDIS_URL=broker.url,
            ALLOWED_HOSTS=",".join(h.address for h in hosts.values()),
            MODELS_DIR=str(settings.MODELS_DIR),  # built once, as an image holds it
            INDEX_FOLLOW="true",
        )
        self.key = ""

    def env(self, host: Host) -> dict[str, str]:
        here = self.root / host.name
        return {
            **self.common,
            "VAR_DIR": str(here / "var"),
            "INDEX_DIR": str(here / "index"),
        }

    def log(self, host: Host) -> Path:
        return self.root / f"{host.name}.log"

    def logs(self) -> str:
        return logs_tail(self.root, 3000)

    def manage(self, host: Host, *args: str) -> str:
        done = subprocess.run(
            [*host.prefix, str(BIN / "python"), "manage.py", *args],
            cwd=ROOT, env=self.env(host), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # --- the README's commands, one per role ----------------------------------------

    @contextmanager
    def web(self, host: Host) -> Iterator[subprocess.Popen[bytes]]:
        env = {**self.env(host), "GUNICORN_BIND": f"0.0.0.0:{PORT}"}
        command = [str(BIN / "gunicorn"), "-c", "searchsite/gunicorn.conf.py",
                   "searchsite.wsgi"]  # fmt: skip
        with started([*host.prefix, *command], env, self.log(host)) as process:
            wait_for(self.url(host), process, self.log(host))
            yield process

    @contextmanager
    def worker(self, host: Host) -> Iterator[subprocess.Popen[bytes]]:
        command = [str(BIN / "celery"), "-A", "searchsite", "worker",
                   "--loglevel", "info"]  # fmt: skip
        with started([*host.prefix, *command], self.env(host), self.log(host)) as p:
            yield p

    @contextmanager
    def beat(self, host: Host) -> Iterator[subprocess.Popen[bytes]]:
        command = [str(BIN / "celery"), "-A", "searchsite", "beat",
                   "--loglevel", "info"]  # fmt: skip
        log = self.root / f"{host.name}-beat.log"
        with started([*host.prefix, *command], self.env(host), log) as process:
            yield process

    # --- HTTP -----------------------------------------------------------------------

    def url(self, host: Host) -> str:
        return f"http://{host.address}:{PORT}"

    def call(
        self, host: Host, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        return http(self.url(host) + path, method, body, key=self.key, timeout=60)

    def found(self, host: Host, query: str, slug: str) -> list[int]:
        params = urllib.parse.urlencode({"q": query, "collection": slug, "k": 5})
        status, answer = self.call(host, "GET", f"/api/search?{params}")
        return [r["id"] for r in answer["results"]] if status == 200 else []

    def vectors(self, host: Host) -> int:
        """Vectors host serves, as its readiness report counts them."""
        status, report = self.call(host, "GET", "/api/health/ready")
        return int(report["index"]["vectors"]) if isinstance(report, dict) else -1

    def upload(self, host: Host, slug: str, rows: list[dict[str, Any]]) -> None:
        body = upload_body("notes.jsonl", rows)
        status, job = self.call(host, "POST", f"/api/collections/{slug}/uploads", body)
        assert status == 202, job

    def chunks(self) -> dict[str, int]:
        rows = self.db.sql("SELECT status, count(*) FROM embeddings_chunk GROUP BY 1")
        return {str(status): int(n) for status, n in rows}


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, site: Site
) -> float:
    started_at = time.monotonic()
    while time.monotonic() - started_at < timeout:
        if check():
            return time.monotonic() - started_at
        time.sleep(0.1)
    pytest.fail(f"not within {timeout} s: {what}\n{site.logs()}")


def host_kill(host: Host) -> int:
    """Every process on the host SIGKILLed at once: the machine lost."""
    found = subprocess.run(
        ["ip", "netns", "pids", host.name], capture_output=True, text=True
    ).stdout.split()
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    return len(found)


TOPICS = """refunds passwords invoices calendars exports printers languages backups
signatures folders""".split()  # noqa: SIM905
NAMES = ["ss-db", "ss-web-a", "ss-web-b", "ss-work-1", "ss-work-2"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hosts")
    with network(NAMES) as hosts:
        db_host = hosts["ss-db"]
        with (
            postgres(db_host.address, db_host.prefix) as db,
            redis(db_host.address, db_host.prefix) as broker,
        ):
            site = Site(hosts, db, broker, root)
            web_a = hosts["ss-web-a"]
            site.manage(web_a, "migrate", "--no-input", "-v", "0")
            site.manage(web_a, "prepare_encoder")
            made = site.manage(
                web_a, "create_api_key", "hosts", "--permission", "write"
            )
            site.key = made.strip()
            yield site


def documents(count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"kind": "document", "title": f"{tag} {i}", "body": f"note {i} of {tag}."}
        for i in range(count)
    ]


def written_then_found(site: Site, web_a: Host, web_b: Host, topic: str) -> float:
    """Seconds from a FAQ's creation through A until B's search finds it."""
    status, faq = site.call(
        web_a, "POST", "/api/collections/help/faqs",
        {"question": f"How do I manage {topic}?",
         "answer": f"Open the {topic} page in settings."},
    )  # fmt: skip
    assert status == 201, faq
    return wait_until(
        lambda: faq["id"] in site.found(web_b, f"manage {topic}", "help"),
        60, f"{topic} found on web host B", site,
    )  # fmt: skip


def test_content_written_through_one_web_host_is_found_on_the_other(site):
    """FAQs created one at a time through web host A's API, each searched for on
    web host B until it is found there: B learns of it from the change feed
    alone (it shares no disk with the workers or with A)."""
    web_a, web_b = site.hosts["ss-web-a"], site.hosts["ss-web-b"]
    work_1, work_2 = site.hosts["ss-work-1"], site.hosts["ss-work-2"]
    with site.web(web_a), site.web(web_b), site.worker(work_1), site.worker(work_2):
        help_desk = {"name": "Help", "slug": "help"}
        assert site.call(web_a, "POST", "/api/collections", help_desk)[0] == 201
        lags = [written_then_found(site, web_a, web_b, topic) for topic in TOPICS]
    assert (site.root / "ss-web-b" / "index" / "feed.json").exists()  # it followed
    assert not (site.root / "ss-work-1" / "index" / "feed.json").exists()
    lags.sort()
    print(
        f"written on A, found on B: p50 {lags[len(lags) // 2]:.2f} s, "
        f"max {lags[-1]:.2f} s over {len(lags)} FAQs"
    )


def test_a_worker_host_lost_mid_import_loses_nothing_and_an_emptied_web_host_rebuilds(
    site,
):
    """10,000 documents uploaded through A; worker host 1 is lost (every process
    on it killed) while they are embedded. Worker host 2 and reconcile embed them
    all; B serves every one. Then B restarts with an empty INDEX_DIR and serves
    them all again from the stored vectors."""
    web_a, web_b = site.hosts["ss-web-a"], site.hosts["ss-web-b"]
    work_1, work_2 = site.hosts["ss-work-1"], site.hosts["ss-work-2"]
    with site.web(web_a), site.worker(work_2), site.beat(work_2):
        site.call(web_a, "POST", "/api/collections", {"name": "Bulk", "slug": "bulk"})
        with site.web(web_b):
            with site.worker(work_1):
                site.upload(web_a, "bulk", documents(10_000, "bulk"))
                wait_until(lambda: site.chunks().get("embedded", 0) > 2_000, 600,
                           "embedding under way", site)  # fmt: skip
                killed = host_kill(work_1)
            total = sum(site.chunks().values())
            took = wait_until(
                lambda: site.chunks() == {"embedded": total}
                and site.vectors(web_b) == total,
                600, "every chunk embedded and served on B", site,
            )  # fmt: skip
        assert total >= 10_000
        shutil.rmtree(site.root / "ss-web-b" / "index")
        started_at = time.monotonic()
        with site.web(web_b):
            wait_until(lambda: site.vectors(web_b) == total, 120, "B rebuilt", site)
            rebuilt = time.monotonic() - started_at  # from its start, model and all
            assert site.found(web_b, "note 1234 of bulk", "bulk")
    print(
        f"worker host lost ({killed} processes killed) mid-import: 0 lost, all "
        f"{total} chunks embedded and on B {took:.1f} s later; B restarted with an "
        f"empty INDEX_DIR served all {total} {rebuilt:.1f} s after it was started"
    )


def test_a_web_host_cut_off_from_the_database_serves_its_replica_and_catches_up(
    site,
):
    """B cannot reach the database host for 30 s while content is written through
    A: B goes on answering searches from its replica (the indexes and its copy of
    the content), never a 500, and once the database is back serves what was
    written within seconds, with no restart."""
    web_a, web_b = site.hosts["ss-web-a"], site.hosts["ss-web-b"]
    db_host, work_2 = site.hosts["ss-db"], site.hosts["ss-work-2"]
    with site.web(web_a), site.web(web_b), site.worker(work_2):
        site.call(web_a, "POST", "/api/collections", {"name": "Cut", "slug": "cut"})
        status, harbour = site.call(
            web_a, "POST", "/api/collections/cut/faqs",
            {"question": "Where is the harbour?", "answer": "Below the old town."},
        )  # fmt: skip
        assert status == 201
        wait_until(lambda: harbour["id"] in site.found(web_b, "harbour", "cut"),
                   60, "B has the harbour", site)  # fmt: skip
        web_b.cut_from(db_host)
        searches, statuses = [], set()
        try:
            status, faq = site.call(
                web_a, "POST", "/api/collections/cut/faqs",
                {"question": "Where is the lighthouse?", "answer": "On the cliff."},
            )  # fmt: skip
            assert status == 201
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                params = urllib.parse.urlencode({"q": "harbour", "collection": "cut"})
                status, answer = site.call(web_b, "GET", f"/api/search?{params}")
                ids = [r["id"] for r in answer["results"]] if status == 200 else []
                searches.append((status, harbour["id"] in ids))
                statuses.add(site.call(web_b, "GET", "/api/health/live")[0])
                time.sleep(0.5)
        finally:
            web_b.join_again(db_host)
        took = wait_until(
            lambda: faq["id"] in site.found(web_b, "lighthouse", "cut"),
            60, "B caught up", site,
        )  # fmt: skip
    assert statuses == {200}, statuses  # alive throughout
    assert searches and all(s == (200, True) for s in searches), searches
    print(
        f"B cut off from the database for 30 s: {len(searches)} searches on B, all "
        f"200 with the answer, from its replica; what A wrote meanwhile was found on "
        f"B {took:.1f} s after it was back"
    )
