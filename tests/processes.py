"""Child processes the tests start (Celery workers, gunicorn instances), run as the
README says to run them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def process_stop(process: subprocess.Popen[bytes]) -> None:
    """Ask it to stop (SIGTERM: a warm shutdown), and kill it after a minute."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(settings_dict: dict[str, object]) -> str:
    """The URL of the database a test runs on, for the processes it starts."""
    if str(settings_dict["ENGINE"]).endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user, host, port = (settings_dict[k] for k in ("USER", "HOST", "PORT"))
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@contextmanager
def gunicorn(
    env: dict[str, str], port: int, log: Path, *, workers: int = 1, timeout: int = 600
) -> Iterator[subprocess.Popen[bytes]]:
    """A gunicorn process of the site (the README's command), once it answers."""
    command = [
        sys.executable, "-m", "gunicorn", "-c", "searchsite/gunicorn.conf.py",
        "searchsite.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--timeout", str(timeout),
    ]  # fmt: skip
    with started(command, env, log) as process:
        wait_for(f"http://127.0.0.1:{port}", process, log)
        yield process


@contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` run from the repository's root, its output in ``log``; asked to
    stop (then killed) when the block ends."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process_stop(process)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/health/live", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} never answered:\n{log.read_text()[-3000:]}")


@contextmanager
def celery_worker(
    env: dict[str, str], log: Path, *, name: str = "w", beat: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker of one pool child (the README's command)."""
    command = [
        sys.executable, "-m", "celery", "-A", "searchsite", "worker",
        "--concurrency", "1", "--loglevel", "info", "--hostname", f"{name}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    env = {k: v for k, v in env.items() if k != "CELERY_TASK_ALWAYS_EAGER"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process_stop(process)


def deployed_env(**extra: str) -> dict[str, str]:
    """``site_env`` for a site deployed as its users run it (gunicorn, Celery
    workers and beat, tasks through the broker), on a test's time scale: plain
    HTTP (no TLS proxy in front), no per-client rates (one address sends it all),
    figures never cached, and healing every few seconds: reconcile every 5 s,
    pending chunks and stalled uploads queued again after 10 s, failed chunks
    after 5 (docs/reliability.md)."""
    env = site_env(
        SECURE_SSL_REDIRECT="false",
        RATE_SEARCH="",
        RATE_ANALYSIS="",
        METRICS_CACHE_SECONDS="0",
        HEALTH_CACHE_SECONDS="0",
        RECONCILE_INTERVAL="5",
        RECONCILE_PENDING_SECONDS="10",
        UPLOAD_STALE_SECONDS="10",
        EMBEDDINGS_RETRY_SECONDS="5",
        **extra,
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def site_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child, with production's DEBUG (off) and
    a single model thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMBEDDINGS_THREADS": "1"}
    env.pop("DEBUG", None)
    env.update(extra)
    return env


# --- HTTP to the processes ------------------------------------------------------------

BOUNDARY = "searchsite-boundary"


def http(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    key: str = "",
    timeout: int = 120,
) -> tuple[int, Any]:
    """One request, with a JSON ``body`` or bytes as multipart (``upload_body``):
    (status, the answer's JSON, or its text when it is not JSON)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if isinstance(body, bytes):
        data = body
        headers["Content-Type"] = f"multipart/form-data; boundary={BOUNDARY}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


def upload_body(name: str, rows: list[dict[str, Any]]) -> bytes:
    """A multipart body of one JSON Lines file of ``rows``, as a browser sends it."""
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def logs_tail(root: Path, chars: int = 4000) -> str:
    """The end of every process's log under ``root``, for a failure's message."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
        for p in sorted(root.glob("*.log"))
    )
