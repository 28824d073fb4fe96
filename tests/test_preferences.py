"""The subscription page every message links to (issue 27): GET shows the reader's
name and newsletters and changes nothing; POST saves their choices, leaves one
newsletter or all; a suppressed address cannot resubscribe itself; the signup form
offers the newsletters and a confirmed signup gets the ones ticked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.config import Delivery, Settings, Unsubscribe
from digest.store.sqlite import SQLiteStore
from digest.tokens import make_token
from digest.web import create_app

KEY = b"serve-test-key-0123456789"
NEWSLETTERS = {"alerts": {"name": "Harbor Alerts", "description": "One email per conversation"}}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers(
        [("ann@example.org", "Ann", {})], resubscribe=False, newsletters=("main", "alerts")
    )
    store.upsert_subscribers([("bob@example.org", None, {})], resubscribe=False)
    settings = Settings(
        newsletters=NEWSLETTERS,
        unsubscribe=Unsubscribe(url="https://news.example.org/u/{token}"),
        delivery=Delivery(database=str(tmp_path / "digest.sqlite3")),
    )
    with TestClient(create_app(settings, (KEY,))) as client:
        yield client, store


def link(store: SQLiteStore, email: str, newsletter: str | None = None) -> str:
    sub = store.get_subscriber(email)
    assert sub is not None
    query = f"?newsletter={newsletter}" if newsletter else ""
    return f"/u/{make_token(KEY, store.list_identity(), sub.uid)}{query}"


def on(store: SQLiteStore, email: str) -> dict[str, str]:
    store.apply_inbox()  # what the app's background loop does within a second
    sub = store.get_subscriber(email)
    assert sub is not None
    found = store.subscriptions_of(sub.uid)
    assert found is not None
    return found[1]


def ticked(page: str) -> list[str]:
    return re.findall(r'name="newsletter" value="([a-z-]+)" checked', page)


def test_the_page_shows_name_and_newsletters_and_a_get_changes_nothing(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    page = client.get(link(store, "ann@example.org", "alerts"))
    assert page.status_code == 200
    assert "<h1>Unsubscribe from Harbor Alerts</h1>" in page.text
    assert 'id="manage"' in page.text and "For ann@example.org." in page.text
    assert 'value="Ann"' in page.text
    assert ticked(page.text) == ["main", "alerts"]
    assert "One email per conversation" in page.text
    client.head(link(store, "ann@example.org", "alerts"))
    assert on(store, "ann@example.org") == {"main": "subscribed", "alerts": "subscribed"}
    assert store.count_subscribers() == {"active": 2}


def test_saving_choices_changes_the_name_and_the_newsletters(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    saved = client.post(
        link(store, "ann@example.org"),
        data={"action": "save", "name": "Ann Lee", "newsletter": ["alerts"]},
    )
    assert saved.status_code == 200 and "Your choices are saved" in saved.text
    assert "<li>Harbor Alerts</li>" in saved.text
    assert on(store, "ann@example.org") == {"main": "unsubscribed", "alerts": "subscribed"}
    sub = store.get_subscriber("ann@example.org")
    assert sub is not None and sub.name == "Ann Lee" and sub.status == "active"
    page = client.get(link(store, "ann@example.org"))
    assert ticked(page.text) == ["alerts"]


def test_one_click_from_an_alert_leaves_the_alerts_only(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    client.post(link(store, "ann@example.org", "alerts"), content=b"List-Unsubscribe=One-Click")
    assert on(store, "ann@example.org") == {"main": "subscribed", "alerts": "unsubscribed"}
    assert store.count_subscribers() == {"active": 2}


def test_leave_all_and_then_come_back_from_the_same_page(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    left = client.post(link(store, "ann@example.org"), data={"action": "leave_all"})
    assert "You are unsubscribed" in left.text and "any of our other newsletters" in left.text
    assert on(store, "ann@example.org") == {"main": "unsubscribed", "alerts": "unsubscribed"}
    assert store.count_subscribers() == {"active": 1, "unsubscribed": 1}
    page = client.get(link(store, "ann@example.org"))
    assert "not subscribed to any of our newsletters" in page.text and ticked(page.text) == []
    client.post(link(store, "ann@example.org"), data={"action": "save", "newsletter": "main"})
    assert on(store, "ann@example.org") == {"main": "subscribed", "alerts": "unsubscribed"}
    assert store.count_subscribers() == {"active": 2}


def test_a_suppressed_address_cannot_resubscribe_itself(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    store.set_status("bob@example.org", "bounced")
    page = client.get(link(store, "bob@example.org"))
    assert "delivery problem or a spam report" in page.text
    assert 'name="newsletter"' not in page.text and "sign up again" in page.text
    client.post(
        link(store, "bob@example.org"),
        data={"action": "save", "name": "Bob", "newsletter": ["main", "alerts"]},
    )
    assert on(store, "bob@example.org") == {"main": "subscribed"}  # as it was
    sub = store.get_subscriber("bob@example.org")
    assert sub is not None and sub.status == "bounced" and sub.name == "Bob"


def test_a_forged_token_shows_nothing_about_anyone(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    genuine = link(store, "ann@example.org")
    forged = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    page = client.get(forged)
    assert page.status_code == 400 and "ann@example.org" not in page.text
    client.post(forged, data={"action": "leave_all"})
    assert store.count_subscribers() == {"active": 2}


def test_the_signup_form_offers_each_newsletter_and_confirming_subscribes_to_the_ticked(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    form = client.get("/subscribe").text
    assert ticked(form) == ["main"]  # the default newsletter, ticked; the alerts offered
    assert 'value="alerts"' in form
    client.post("/subscribe", data={"email": "cy@example.org", "newsletter": ["alerts"]})
    store.apply_inbox()
    [signup] = [s for s in store.signups() if s.email == "cy@example.org"]
    store.request_confirm(signup.uid)
    assert on(store, "cy@example.org") == {"alerts": "subscribed"}


def test_manage_your_subscription_opens_the_page_at_the_choices(
    served: tuple[TestClient, SQLiteStore],
) -> None:
    client, store = served
    page = client.get(link(store, "ann@example.org", "alerts") + "&manage=1").text
    assert '<h1 id="manage">Manage your subscription</h1>' in page
    assert page.index('name="newsletter"') < page.index("<h2>Unsubscribe from Harbor Alerts</h2>")
    stranger = client.get(link(store, "ann@example.org")[:-2] + "xx?manage=1")
    assert stranger.status_code == 400 and "Manage your subscription" not in stranger.text
