from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.pages import PageServer

pytest_plugins = ["tests.pg"]  # the PostgreSQL server fixtures

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = ROOT.parent / "shared" / "seeds" / "000_c71eace4698afc48.txt"
SEED_URL = "https://www.chinafile.com/conversation/whats-stake-blinken-heads-beijing"
SAMPLE = ROOT / "samples" / "harbor-cities.md"
SAMPLE_URL = "https://example.org/harbor/hold-the-line"


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (never Playwright's own download);
    the tests that use it are skipped, with the package named, where it is missing."""
    api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium package is not installed (apt-get install -y chromium)")
    with api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from the current renderer instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def seed_path() -> Path:
    if not SEED.is_file():
        pytest.skip(f"the seed conversation is not at {SEED}")
    return SEED


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run in an empty folder, so no ./config.yaml or issues/ of the repo is used."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def run(*args: str) -> Result:
    """`digest ARGS…` in process, as a user would type it."""
    from digest.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def issue_file(in_tmp: Path) -> Path:
    """The bundled sample composed into issues/ of an empty working folder."""
    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    return Path(result.stdout.strip().splitlines()[-1])


# Generated-input tests explore new examples on every run of a developer's machine; CI
# runs a fixed set (derandomized), so a landing never depends on what chance found.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any outgoing connection or name lookup fails the test that asked for this fixture
    (and is listed, for the test to assert none happened)."""
    import socket

    attempts: list[object] = []

    def refuse(self_or_host: object, address: object = None, *args: object) -> None:
        attempts.append(address if address is not None else self_or_host)
        raise AssertionError(f"tried to connect to {address or self_or_host!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
