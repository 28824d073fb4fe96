"""A real PostgreSQL server for the tests: started once per session in a temporary folder
on 127.0.0.1 with initdb/pg_ctl from Debian's `postgresql` package (as the `postgres`
user when the tests run as root, which initdb refuses), one fresh database per test.
Without the binaries or psycopg, the tests that need it are skipped with a message."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

MISSING = "PostgreSQL's server binaries are not installed (apt-get install -y postgresql)"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


class Server:
    def __init__(self) -> None:
        bindir = _binaries()
        if bindir is None:
            pytest.skip(MISSING)
        pytest.importorskip(
            "psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')"
        )
        self.folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        self.pg_ctl = str(bindir / "pg_ctl")
        run = {"check": True, "capture_output": True, "timeout": 120}
        subprocess.run(
            _as_server_user(
                [str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "digest",
                 "-E", "UTF8", "--no-sync"]
            ),
            **run,  # type: ignore[arg-type]
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        subprocess.run(
            _as_server_user(
                [self.pg_ctl, "-D", str(self.data), "-o", options, "-l",
                 str(self.folder / "server.log"), "-w", "-t", "60", "start"]
            ),
            **run,  # type: ignore[arg-type]
        )  # fmt: skip
        self.base = f"postgresql://digest@127.0.0.1:{self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"d{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return f"{self.base}/{name}"

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    server = Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """A fresh, empty database on the session's server, with the digest schema."""
    from digest.store.postgres import PostgresStore

    url = postgres_server.new_database()
    PostgresStore(url, migrate=True).close()
    return url
