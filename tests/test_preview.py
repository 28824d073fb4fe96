"""The preview app, in process over httpx (Starlette's TestClient)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.compose import compose
from digest.config import Settings, load_settings
from digest.issuefile import dump_issue, write_issue
from digest.preview import create_app
from tests.conftest import SAMPLE, SAMPLE_URL


@pytest.fixture
def issue_path(tmp_path: Path) -> Path:
    issue, path = compose([str(SAMPLE)], Settings(), url=SAMPLE_URL, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=False)
    return path


PUBLIC_CONFIG = "web:\n  base_url: https://news.example.org\n"  # links that work for readers


@pytest.fixture
def client(issue_path: Path) -> Iterator[TestClient]:
    config = issue_path.parent / "config.yaml"
    config.write_text(PUBLIC_CONFIG)
    app = create_app(issue_path, config, watch_interval=0.05)
    with TestClient(app, base_url="http://127.0.0.1:8025") as test_client:
        yield test_client


def wait_for(client: TestClient, condition: object, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get("/state").json()
        if condition(state):  # type: ignore[operator]
            return state  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"state never matched; last: {state}")
        time.sleep(0.05)


def test_state_has_inbox_line_headers_links_text_and_checks(client: TestClient) -> None:
    state = client.get("/state").json()
    assert state["ready"] and state["error"] is None
    assert state["inbox"] == {
        "from_name": "The Conversation Digest",
        "from_address": "digest@example.org",
        "subject": "Can Harbor Cities Hold the Line Against the Sea?",
        "preheader": "With Ana Lúcia Ferreira, Tomás R. Okafor and Selin Aydın",
    }
    headers = dict(state["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert any(link["text"] == "three decades" for link in state["links"])
    assert "Read more:" in state["text"]
    assert state["findings"] == []


def test_html_route_serves_exactly_what_a_send_delivers(
    client: TestClient, issue_path: Path
) -> None:
    from digest.build import build

    response = client.get("/html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    settings = load_settings(issue_path.parent / "config.yaml")
    assert response.text == build(issue_path, settings).sample.html
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_text_eml_and_checks_routes(client: TestClient) -> None:
    assert client.get("/text").text.startswith("THE CONVERSATION DIGEST")
    eml = client.get("/eml")
    assert eml.headers["content-type"] == "message/rfc822"
    assert b"multipart/alternative" in eml.content
    assert client.get("/checks").json() == []


def test_app_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="frame-phone"' in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/static/../__init__.py",
        "/static/%2e%2e%2f__init__.py",
        "/static/",
        "/static/index.html",
        "/../config.yaml",
        "/issues/",
        "/etc/passwd",
    ],
)
def test_nothing_but_the_preview_artefacts_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text


def test_an_edit_re_renders_and_a_broken_edit_keeps_the_last_good_render(
    client: TestClient, issue_path: Path
) -> None:
    original = issue_path.read_text(encoding="utf-8")
    before = client.get("/state").json()["version"]
    issue_path.write_text(
        original.replace("subject: Can Harbor", "subject: Edited - Can Harbor"), encoding="utf-8"
    )
    state = wait_for(client, lambda s: s["version"] > before)
    assert state["inbox"]["subject"] == "Edited - Can Harbor Cities Hold the Line Against the Sea?"

    issue_path.write_text(original.replace("sections:", "sections: [unclosed"), encoding="utf-8")
    broken = wait_for(client, lambda s: s["error"] is not None)
    assert str(issue_path) in broken["error"]
    assert broken["inbox"]["subject"].startswith("Edited - ")  # the last good render stays
    assert client.get("/html").status_code == 200

    issue_path.write_text(original, encoding="utf-8")
    fixed = wait_for(
        client, lambda s: s["error"] is None and not s["inbox"]["subject"].startswith("Edited")
    )
    assert fixed["good_version"] == fixed["version"]


def test_a_template_change_re_renders(tmp_path: Path, issue_path: Path) -> None:
    from digest.render.templates import bundled_templates

    folder = tmp_path / "tpl"
    folder.mkdir()
    for name in ("email.mjml.j2", "email.txt.j2"):
        (folder / name).write_text((bundled_templates() / name).read_text())
    config = tmp_path / "config.yaml"
    config.write_text(f"render:\n  templates: {folder}\n")
    with TestClient(
        create_app(issue_path, config, watch_interval=0.05), base_url="http://127.0.0.1"
    ) as client:
        text = folder / "email.txt.j2"
        text.write_text("EDITED TEMPLATE\n" + text.read_text())
        state = wait_for(client, lambda s: s["text"].startswith("EDITED TEMPLATE"))
        assert state["error"] is None


def test_an_issue_that_never_rendered_reports_503_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("subject: [\n")
    with TestClient(create_app(path, None), base_url="http://localhost") as client:
        state = client.get("/state").json()
        assert state["ready"] is False and "broken.yaml" in state["error"]
        response = client.get("/html")
        assert response.status_code == 503 and "broken.yaml" in response.text


def test_the_preview_shows_a_reader_without_fields_beside_the_sample(issue_path: Path) -> None:
    """Where the templates use subscriber fields, the preview offers the email as a
    subscriber without any gets it, and says what each use gives them."""
    from tests.test_subscriber_fields import templates_with

    folder = templates_with(
        issue_path.parent / "custom",
        html_uses="Hello {{ subscriber.get('city', 'friend') }}.",
        text_uses="",
    )
    config = issue_path.parent / "config.yaml"
    config.write_text(
        PUBLIC_CONFIG + f"render:\n  templates: {folder}\n"
        "audience:\n  fields:\n    city: {type: text}\n  sample: {city: Quito}\n"
    )
    app = create_app(issue_path, config, watch_interval=0.05)
    with TestClient(app, base_url="http://127.0.0.1:8025") as client:
        state = client.get("/state").json()
        assert state["ready"], state["error"]
        assert state["without_fields"] is True
        assert state["field_notes"] == [
            "a subscriber without city gets 'friend' in place of subscriber.city"
        ]
        assert "Hello Quito." in client.get("/html").text
        assert "Hello friend." in client.get("/html?reader=bare").text


def test_an_issue_without_fields_has_no_bare_view(client: TestClient) -> None:
    state = client.get("/state").json()
    assert state["without_fields"] is False and state["field_notes"] == []
    assert client.get("/html?reader=bare").text == client.get("/html").text
