"""Signed unsubscribe tokens and the public one-click unsubscribe endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from digest.config import Delivery, Settings, Unsubscribe
from digest.store.sqlite import SQLiteStore
from digest.tokens import make_token, read_token
from digest.web import create_app

KEY = b"serve-test-key-0123456789"
LIST = "0123456789abcdef0123456789abcdef"


def test_a_token_verifies_only_unaltered_in_its_list_and_with_the_right_key() -> None:
    uid = "Zx3_k-9aQm2LrT4w"
    token = make_token(KEY, LIST, uid)
    assert read_token([KEY], LIST, token) == uid
    ident, signature = token.split(".")
    forged = [
        f"{ident}.{signature[:-1]}",  # truncated
        f"{ident}x.{signature}",  # another subscriber
        f"{ident[:-1]}.{signature}",
        token.replace(".", ""),
        "",
        ".",
        f"{ident}.{'A' * len(signature)}",
        make_token(b"some-other-key-000000000", LIST, uid),
        "../../etc/passwd",
        "zzzzzzzzzzzzzzzzzzzz.abc",
    ]
    assert [read_token([KEY], LIST, f) for f in forged] == [None] * len(forged)
    assert read_token([KEY], "f" * 32, token) is None  # another list


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers(
        [("ann@example.org", "Ann", {}), ("bob@example.org", "Bob", {})], resubscribe=False
    )
    settings = Settings(
        unsubscribe=Unsubscribe(url="https://news.example.org/u/{token}"),
        delivery=Delivery(database=str(tmp_path / "digest.sqlite3")),
    )
    with TestClient(create_app(settings, (KEY,))) as client:
        yield client, store
    store.apply_inbox()


def token_for(store: SQLiteStore, email: str) -> str:
    sub = store.get_subscriber(email)
    assert sub is not None
    return make_token(KEY, store.list_identity(), sub.uid)


def settled(store: SQLiteStore) -> SQLiteStore:
    store.apply_inbox()  # what the app's background task does within a second
    return store


def test_get_shows_a_confirmation_page_and_changes_nothing(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    page = client.get(f"/u/{token_for(store, 'ann@example.org')}")
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "<button" in page.text
    assert "set-cookie" not in page.headers
    assert store.count_subscribers() == {"active": 2}


def test_one_click_post_unsubscribes_at_once_and_twice_is_harmless(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    url = f"/u/{token_for(store, 'ann@example.org')}"
    for _ in range(2):
        response = client.post(
            url,
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and "You are unsubscribed" in response.text
    ann = settled(store).get_subscriber("ann@example.org")
    bob = store.get_subscriber("bob@example.org")
    assert ann is not None and ann.status == "unsubscribed"
    assert bob is not None and bob.status == "active"


def test_a_bounced_subscriber_stays_bounced(served: tuple[TestClient, SQLiteStore]) -> None:
    client, store = served
    store.set_status("bob@example.org", "bounced")
    client.post(f"/u/{token_for(store, 'bob@example.org')}", content="List-Unsubscribe=One-Click")
    bob = settled(store).get_subscriber("bob@example.org")
    assert bob is not None and bob.status == "bounced"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_forged_altered_or_truncated_tokens_get_400_and_reveal_nothing(
    served: tuple[TestClient, SQLiteStore], method: str
) -> None:
    client, store = served
    good = token_for(store, "ann@example.org")
    bodies = set()
    for token in (
        good[:-2],
        good + "x",
        make_token(b"attacker-key-00000000000", store.list_identity(), "abcdefgh12345678"),
        "1.abc",
        "nope",
    ):
        response = client.request(method, f"/u/{token}", content="List-Unsubscribe=One-Click")
        assert response.status_code == 400
        assert "ann@" not in response.text and "Ann" not in response.text
        bodies.add(response.text)
    assert len(bodies) == 1  # every refusal looks the same
    assert settled(store).count_subscribers() == {"active": 2}


def test_a_genuine_token_for_a_forgotten_subscriber_looks_like_success(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    token = token_for(store, "bob@example.org")
    store.forget("bob@example.org")
    assert client.post(f"/u/{token}").status_code == 200


def test_unsubscribe_answers_at_the_configured_path_and_the_base_urls_path_only(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    token = token_for(store, "ann@example.org")
    assert client.get(f"/u/{token}").status_code == 200
    assert client.get(f"/unsubscribe/{token}").status_code == 200  # <web.base_url>/unsubscribe/
    assert client.get(f"/other/{token}").status_code == 404
    assert client.get(f"/u/{token}/more").status_code == 404


def test_the_app_shuts_down_even_when_a_cancellation_is_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy machine, Python 3.11's asyncio.wait_for can swallow the cancellation that
    arrives as its timeout fires (CI hung there once, for ever, in the app's shutdown).
    The background loop must end anyway."""
    import asyncio
    import threading

    import digest.web.state as state

    real = asyncio.wait_for

    async def swallowing(awaitable: Any, timeout: float | None) -> Any:
        try:
            return await real(awaitable, timeout)
        except asyncio.CancelledError:
            return None  # what the race does: the cancellation is lost

    monkeypatch.setattr(state.asyncio, "wait_for", swallowing)
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.close()
    settings = Settings(delivery=Delivery(database=str(tmp_path / "digest.sqlite3")))
    finished = threading.Event()

    def run() -> None:
        with TestClient(create_app(settings, (KEY,))) as client:
            assert client.get("/healthz").status_code in (200, 404)
        finished.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert finished.wait(30), "the app never finished shutting down"
